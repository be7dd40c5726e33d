"Embedded offline LLM + embedder: fast unit checks, a CI end-to-end run on SmolLM2, a slow one on Qwen 1.5B."
import hashlib
import re

import numpy as np
import pytest

from expo_nb.core import ExpoError, batch_requests
from expo_nb.local import LocalChat, assemble_weights, local_model_path
from expo_nb.models import make_chat, make_embedder

PAIR = re.compile(r"\[\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*\]")
TASK = [{"role": "user", "content": "Pairs (w, b) tried so far with their squared error (lower is better):\n"
         "[10, 5] error 4120\n[15, 20] error 1530\n[18, 25] error 310\n"
         "Give a new pair [w, b] with a lower error. Answer with the pair only, e.g. [3, 7]."}]

def test_sha_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    with pytest.raises(ExpoError, match="sha256 mismatch"):
        assemble_weights([tmp_path / "a"], tmp_path / "out" / "m.gguf", "0" * 64)
    assert list((tmp_path / "out").iterdir()) == []

def test_assembly_is_idempotent_and_repairs(tmp_path):
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"x" * 1000); parts[1].write_bytes(b"y" * 7)
    digest = hashlib.sha256(b"x" * 1000 + b"y" * 7).hexdigest()
    target = assemble_weights(parts, tmp_path / "m.gguf", digest)
    stamp = target.stat().st_mtime_ns
    assert assemble_weights(parts, target, digest).stat().st_mtime_ns == stamp
    target.write_bytes(b"truncated")
    assert assemble_weights(parts, target, digest).read_bytes() == b"x" * 1000 + b"y" * 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "m.gguf"]

def test_unknown_specs_list_the_valid_ones():
    with pytest.raises(ExpoError, match="local:qwen1.5b, local:smollm135m"): make_chat("local:nope")
    with pytest.raises(ExpoError, match="local:minilm"): make_embedder("sbert")
    with pytest.raises(ExpoError, match="choose one of"): local_model_path("nope")

@pytest.mark.ci_slow
def test_offline_pipeline_smollm_and_minilm(monkeypatch):
    "SmolLM2-135M is too weak to answer reliably: this asserts only that the offline pipeline returns text and vectors."
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    chat = LocalChat("smollm135m", n_ctx=1024, n_threads=1)
    replies = chat.complete(batch_requests(TASK, [0.0], max_tokens=12, tag="e2e"))
    assert isinstance(replies[0].text, str) and replies[0].text.strip()
    assert 1 <= replies[0].completion_tokens <= 12 and replies[0].prompt_tokens > 50
    vectors = make_embedder("local:minilm").embed([replies[0].text, TASK[0]["content"]])
    assert vectors.shape == (2, 384) and np.isfinite(vectors).all()

@pytest.mark.ci_slow
def test_main_job_path_on_the_default_local_model(tmp_path, monkeypatch):
    """The README's main job in miniature, on the default Qwen model and MiniLM, offline: the model writes the
    rephrased domain, answers the task prompt parseably, and the run directory is complete."""
    import json

    from expo_nb.runner import RunConfig, read_log, run
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = RunConfig(task="linreg", task_settings={"w": 2, "b": 30}, iterations=2, samples=2, k_descriptions=1,
                       k_instructions=1, llm="local:qwen1.5b", embedder="local:minilm", seed=0)
    summary = run(config, tmp_path / "run", progress=False)
    records = read_log(tmp_path / "run" / "log.jsonl")
    assert summary["iterations"] == 2 and summary["domain_shape"] == [2, 2]
    assert sum(r["n_valid"] for r in records) >= 1, "the default model gave no parseable [w, b] pair"
    domain = json.loads((tmp_path / "run" / "domain" / "domain.json").read_text())
    assert domain["descriptions"][1].strip() and domain["descriptions"][1] != domain["descriptions"][0]
    assert (tmp_path / "run" / "metric.png").exists()
    # the batched local path reports its prompt-token reuse in every record, and it adds up to the prompts' size
    assert all(r["prompt_tokens_evaluated"] + r["prompt_tokens_reused"] > 0 for r in records)
    assert all(r["prompt_tokens_evaluated"] + r["prompt_tokens_reused"] <= r["prompt_tokens"] for r in records)
