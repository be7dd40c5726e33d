"""The real runner against FakeOpenAIServer through the spec strings: the API key is sent, never written anywhere,
and a rerun is served from the cache."""
import json
import logging
import re
import threading
from pathlib import Path

from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.models import make_chat, make_embedder
from expo_nb.runner import RunConfig, run
from expo_nb.testing import FakeOpenAIServer

SECRET = "sk-e2e-QVXJ-never-write-me-7731"

class Agent:
    "Reply function of the fake server: numbered rephrasings for the domain, nudged [w, b] pairs for linreg."
    def __init__(self): self.counter, self.lock = 0, threading.Lock()
    def __call__(self, body):
        text = body["messages"][-1]["content"]
        with self.lock: self.counter += 1; n = self.counter
        if '"""' in text:   # the rephrasing request of expo_nb.domain quotes the text in triple quotes
            original = text.split('"""')[1].strip()
            return f"Sure! Here is version {n}:\n{original} (variant {n})"
        pairs = re.findall(r"w=(-?\d+), b=(-?\d+)", text)
        w, b = map(int, pairs[-1]) if pairs else (15, 15)
        return f"[{w + 1 + n % 3}, {b + 1 + n % 5}]"

def chat_requests(server): return [r for r in server.requests if r["path"].endswith("/chat/completions")]

def run_dir_bytes(out_dir: Path, cache: Path):
    "(path, bytes) of every file of the run directory and of the cache with its -wal/-shm companions."
    paths = [p for p in out_dir.rglob("*") if p.is_file()]
    paths += [p for p in cache.parent.glob(cache.name + "*") if p.is_file()]
    return [(p, p.read_bytes()) for p in paths]

def test_run_over_http_never_writes_the_key_and_rerun_hits_the_cache(tmp_path, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    cache = tmp_path / "shared" / "cache.sqlite"; cache.parent.mkdir()
    with FakeOpenAIServer(reply=Agent(), dimension=8) as server:
        config = RunConfig(task="linreg", task_settings={"w": 2, "b": 30, "top_k": 4}, method="expo",
                           llm=f"{server.url}#fake-agent", embedder=f"{server.url}#fake-embed", iterations=3, samples=3,
                           eta=10.0, domain="llm", k_descriptions=2, k_instructions=2, cache=str(cache), seed=1)
        summary = run(config, tmp_path / "first", progress=True)
        first_chat = len(chat_requests(server))
        chat, embedder = make_chat(config.llm, cache), make_embedder(config.embedder, cache)
        reprs = [repr(chat), repr(chat.inner), repr(embedder), repr(embedder.inner), str(vars(chat.inner)),
                 str(vars(embedder.inner))]
        chat.cache.close()
        n_before = len(server.requests)
        again = run(config, tmp_path / "second", progress=True)
        second = server.requests[n_before:]
    # the run finished and really went over HTTP, with the key in the Authorization header only
    assert summary["iterations"] == 3 and (tmp_path / "first" / "summary.json").exists()
    domain_json = json.loads((tmp_path / "first" / "domain" / "domain.json").read_text())
    assert domain_json["provenance"]["method"] == "llm-rephrasing"
    assert first_chat == 2 + 2 + 3 * 3        # 2 + 2 rephrasings (all unique at once), 3 iterations x 3 samples
    assert all(r["headers"]["authorization"] == f"Bearer {SECRET}" for r in server.requests)
    assert all(SECRET not in json.dumps(r["body"]) for r in server.requests)
    # the rerun of the same config in a new directory makes no request at all: chats and embeddings come from
    # the cache, and so does the dimension of this custom embedding model (no probe request)
    assert second == []
    assert (again["iterations"] == 3 and again["cached_calls"] == 3 * 3
            and again["final_metric"] == summary["final_metric"])
    assert again["prompt_tokens"] == summary["prompt_tokens"]
    # the secret is in no file (run directories, cache and its -wal/-shm), no output, no log, no repr
    files = run_dir_bytes(tmp_path / "first", cache) + run_dir_bytes(tmp_path / "second", cache)
    assert any(p.name == "cache.sqlite" for p, _ in files) and any(p.name == "log.jsonl" for p, _ in files)
    assert [p for p, data in files if SECRET.encode() in data] == []
    out, err = capfd.readouterr()
    assert SECRET not in out and SECRET not in err
    assert (re.search(r"rephrasings domain/description: 100%.*2/2", err)
            and re.search(r"rephrasings domain/instruction: 100%.*2/2", err))
    assert SECRET not in caplog.text and all(SECRET not in text for text in reprs)


def test_cli_openai_without_key_is_one_line_exit_2(tmp_path, monkeypatch):
    "Complements tests/test_runner.py: the key is removed explicitly, and the error is exactly one line."
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["run", "linreg-quick", "--llm", "openai:gpt-4o-mini",
                                      "--out", str(tmp_path / "r")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "OPENAI_API_KEY" in lines[0], result.output
    assert not (tmp_path / "r").exists()
