"""The response cache under concurrent first use: sweep processes that open a fresh cache file at the same moment
must all succeed (SQLite reports the race for the switch to WAL at once instead of waiting for the busy timeout)."""
import multiprocessing as mp
import traceback
from pathlib import Path

from expo_nb.cache import ResponseCache

WRITERS, TRIALS, KEYS = 4, 150, 10

def _writer(path: Path, index: int, results) -> None:
    try:
        cache = ResponseCache(path)
        for j in range(KEYS): cache.put(f"{index}-{j}", {"value": j})
        results.put("")
    except Exception as error:   # reported to the parent, which fails the test with it
        results.put(f"{type(error).__name__}: {error}\n{traceback.format_exc()[-400:]}")

def test_processes_opening_a_fresh_cache_at_once_all_succeed(tmp_path):
    context = mp.get_context("fork")
    for trial in range(TRIALS):
        path, results = tmp_path / f"trial-{trial}" / "cache.sqlite", context.Queue()
        writers = [context.Process(target=_writer, args=(path, i, results)) for i in range(WRITERS)]
        for w in writers: w.start()
        errors = [message for message in (results.get(timeout=60) for _ in writers) if message]
        for w in writers: w.join(timeout=60)
        assert not errors, f"trial {trial}: {errors[0]}"
        assert len(ResponseCache(path)) == WRITERS * KEYS
