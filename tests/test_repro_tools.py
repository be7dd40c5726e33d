"""tools/repro_commit.py: an unfinished run's replies survive the end of a session; the finished run replaces them."""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import repro_commit  # noqa: E402


def make_cache(path: Path, replies: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)", replies.items())
    conn.close()

def cache_keys(path: Path) -> set:
    conn = sqlite3.connect(path)
    keys = {k for (k,) in conn.execute("SELECT key FROM responses")}
    conn.close()
    return keys

@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], check=True)
    return tmp_path

def test_unfinished_finds_runs_and_domains_without_results(repo):
    work = Path("runs/paper")
    make_cache(work / "linreg/opro/seed-0/cache.sqlite", {"a": "{}"})
    make_cache(work / "linreg/expo/seed-0/cache.sqlite", {"b": "{}"})
    (work / "linreg/expo/seed-0/summary.json").write_text("{}")
    make_cache(work / "domains/tsp10/cache.sqlite", {"c": "{}"})
    assert repro_commit.unfinished(work) == [work / "domains/tsp10", work / "linreg/opro/seed-0"]

def test_partial_cache_is_kept_without_vectors_then_replaced_by_the_finished_run(repo):
    work, keep = Path("runs/paper/linreg/opro/seed-0"), Path("results/linreg/opro/seed-0")
    make_cache(work / "cache.sqlite", {"chat": '{"text": "[1, 2]"}', "emb": '{"vector": [0.1]}'})
    paths = repro_commit.keep_partial(work, keep)
    assert paths == [keep / "partial-cache.sqlite"] and cache_keys(paths[0]) == {"chat"}
    repro_commit.commit(paths, "partial")
    assert "partial-cache.sqlite" in subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout
    for name, text in (("config.json", "{}"), ("log.jsonl", json.dumps({"iteration": 0}) + "\n"),
                       ("summary.json", "{}")):
        (work / name).write_text(text)
    paths = repro_commit.copy_compact(work, keep)
    assert not (keep / "partial-cache.sqlite").exists() and (keep / "summary.json").exists()
    repro_commit.commit(paths, "run")
    files = subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout.split()
    assert sorted(files) == sorted(str(keep / n) for n in ("cache.sqlite", "config.json", "log.jsonl", "summary.json"))
    assert repro_commit.keep_partial(work, keep) == []          # a finished run is never kept as partial again

def test_a_finished_run_with_no_earlier_partial_commits(repo):
    work, keep = Path("w"), Path("k")
    make_cache(work / "cache.sqlite", {"chat": "{}"})
    for name in ("config.json", "log.jsonl", "summary.json"): (work / name).write_text("{}")
    repro_commit.commit(repro_commit.copy_compact(work, keep), "run")
    assert len(subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout.split()) == 4
