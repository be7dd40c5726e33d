"""The reproduction runs at the paper's protocol (nbs/results/paper, made by tools/repro.sh, read by notebooks
40-43): each committed run is complete and consistent with the protocol, and one run of each task replays from
its committed response cache to the identical log on any machine (no model is loaded: every reply is cached)."""
import json
import math
import shutil
from pathlib import Path

import pytest

from expo_nb.core import PromptDomain
from expo_nb.runner import RunConfig, read_log, run

ROOT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "paper"
RUNS = sorted(p.parent for p in ROOT.glob("**/seed-*/summary.json"))
# group -> (preset task, task settings, iterations, samples, eta)
PROTOCOL = {"linreg": ("linreg", {"w": 2, "b": 30}, 50, 8, 100.0),
            "linreg2": ("linreg", {"w": 36, "b": -1}, 50, 8, 100.0),
            "linreg-handwritten": ("linreg", {"w": 2, "b": 30}, 50, 8, 100.0),
            "linreg-fixed-best": ("linreg", {"w": 2, "b": 30}, 50, 8, 100.0),
            "linreg-all-t1": ("linreg", {"w": 2, "b": 30}, 50, 8, 100.0),
            "tsp10-eta10": ("tsp", {"n": 10}, 100, 8, 10.0),
            "tsp10-eta1000": ("tsp", {"n": 10}, 100, 8, 1000.0),
            "tsp10": ("tsp", {"n": 10}, 100, 8, 100.0),
            "bandit-hard": ("bandit", {"instance": "hard"}, 100, 1, 10.0),
            "bandit-easy": ("bandit", {"instance": "easy"}, 100, 1, 10.0),
            "bandit-hard-bsscd": ("bandit", {"instance": "hard", "reasoning": True}, 100, 1, 10.0)}
ONE_ARM = {"opro", "opro-enhanced"}
DOMAIN_OF = {"tsp10-eta10": "tsp10", "tsp10-eta1000": "tsp10"}   # groups that share another group's domain
MACHINE_FIELDS = ("wall_s", "cached_calls", "prompt_tokens_evaluated", "prompt_tokens_reused")   # differ on a replay

def ids(runs): return [str(p.relative_to(ROOT)) for p in runs]

def test_domains_are_shared_and_complete():
    for domain_json in ROOT.glob("domains/*/domain.json"):
        domain = PromptDomain.load(domain_json.parent)
        assert domain.shape[0] >= 21 and domain.shape[1] >= 21, f"{domain_json}: {domain.shape}"
        assert domain.provenance.get("rephrase_style") == "paper"

@pytest.mark.parametrize("run_dir", RUNS, ids=ids(RUNS))
def test_run_follows_the_protocol(run_dir):
    group = run_dir.relative_to(ROOT).parts[0]
    config = RunConfig.from_json((run_dir / "config.json").read_text())
    task, settings, iterations, samples, eta = PROTOCOL[group]
    assert ((config.task, config.task_settings, config.iterations, config.samples, config.eta)
            == (task, settings, iterations, samples, eta))
    assert (config.llm, config.embedder, config.seed_streams) == ("local:qwen1.5b", "local:minilm", True)
    assert run_dir.name == f"seed-{config.seed}" and run_dir.parent.name == config.method
    if config.method not in ONE_ARM:   # the task's shared domain, or the hand-written variants (open check c)
        shared = DOMAIN_OF.get(group, group)
        assert config.domain in (f"nbs/results/paper/domains/{shared}/domain.json",
                                 f"nbs/results/paper/domains/{shared}/variants.json")
    assert (config.temperatures is not None) == (group == "linreg-all-t1")   # Fig. 14 only: all samples at T = 1
    assert (config.fixed_prompt is not None) == (group == "linreg-fixed-best")   # Fig. 8 only: EXPO's final prompt
    records = read_log(run_dir / "log.jsonl", repair=False)
    assert [r["iteration"] for r in records] == list(range(iterations))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["iterations"] == iterations
            and math.isclose(summary["final_metric"], records[-1]["metric"], abs_tol=1e-12))
    assert set(p.name for p in run_dir.iterdir()) <= {"config.json", "log.jsonl", "summary.json", "cache.sqlite"}

@pytest.fixture
def other_ambient_threads():
    """A run pins torch's thread count itself (RunConfig.torch_threads, 2 like the committed runs), so the count the
    process happens to have must not matter: the replay runs with 1."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

def _one_per_task(runs):
    chosen = {}
    for run_dir in runs:
        group = run_dir.relative_to(ROOT).parts[0]
        if (run_dir / "cache.sqlite").exists() and run_dir.parent.name in ("expo", "opro"):
            chosen.setdefault(group, run_dir)
    return sorted(chosen.values())

@pytest.mark.parametrize("run_dir", _one_per_task(RUNS), ids=ids(_one_per_task(RUNS)))
def test_committed_run_replays_from_its_cache(run_dir, tmp_path, monkeypatch, other_ambient_threads):
    monkeypatch.chdir(ROOT.parents[2])                     # configs name the shared domain relative to the repo
    out = tmp_path / "replay"; out.mkdir()
    shutil.copy(run_dir / "cache.sqlite", out / "cache.sqlite")
    config = RunConfig.from_json((run_dir / "config.json").read_text())
    run(config, out, progress=False)
    strip = lambda records: [{k: v for k, v in r.items() if k not in MACHINE_FIELDS} for r in records]
    assert strip(read_log(out / "log.jsonl")) == strip(read_log(run_dir / "log.jsonl"))

def test_the_handwritten_domain_is_what_its_script_writes(tmp_path):
    "Open check (c) runs EXPO on nbs/results/paper/domains/linreg-handwritten/variants.json, written by a script."
    import subprocess
    import sys
    script = ROOT.parents[2] / "tools" / "handwritten_domain.py"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "v.json")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = json.loads((tmp_path / "v.json").read_text())
    assert written == json.loads((ROOT / "domains" / "linreg-handwritten" / "variants.json").read_text())
    assert [len(set(written[k])) for k in ("descriptions", "instructions")] == [101, 101]   # the rephrased size


def test_the_protocol_lists_every_committed_run(tmp_path):
    "PROTOCOL.md's runs table is what tools/protocol_table.py writes from the committed runs (repro_commit calls it)."
    import importlib.util
    spec = importlib.util.spec_from_file_location("protocol_table", ROOT.parents[2] / "tools" / "protocol_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    text = (ROOT / "PROTOCOL.md").read_text()
    rows = text.split(table.BEGIN)[1].split(table.END)[0]
    assert rows.count("\n| ") == len(RUNS) + 1 - (not RUNS)   # the header, then one row per committed run
    for run_dir in RUNS: assert table.run_row(run_dir, ROOT) in rows
