"""The committed reproduction runs (nbs/results/repro, read by notebooks 40-43) are complete, self-consistent
and were made with the documented budget: quick presets (4 x 4 domain, 8 iterations, 4 samples; bandit 20
steps), local Qwen2.5-Coder-1.5B and MiniLM embeddings, seeds 0 and 1."""
import json
import math
from pathlib import Path

import pytest

from expo_nb.core import PromptDomain
from expo_nb.plots import load_runs
from expo_nb.runner import RunConfig

ROOT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "repro"
RUNS = sorted(p.parent for p in ROOT.glob("*/*/seed-*/config.json"))
# group directory -> (task, task settings, iterations, samples, eta)
GROUPS = {"linreg": ("linreg", {"w": 2, "b": 30}, 8, 4, 100.0),
          "tsp10": ("tsp", {"n": 10}, 8, 4, 100.0),
          "bandit-easy": ("bandit", {"instance": "easy"}, 20, 1, 10.0)}
SHAPES = {"opro": (1, 1), "opro-enhanced": (1, 1), "expo-d-only": (4, 1), "expo-i-only": (1, 4)}
KEEP = {"config.json", "log.jsonl", "summary.json", "domain/domain.json", "domain/embeddings.npz"}

# the runs notebooks 40-43 read, each with seeds 0 and 1
METHODS = {"linreg": ["expo", "expo-es", "opro", "opro-enhanced", "expo-d-only", "expo-i-only", "neuralucb"],
           "tsp10": ["expo", "opro"], "bandit-easy": ["expo", "opro"]}

def test_there_are_committed_runs():
    assert (ROOT / "linreg" / "expo").is_dir(), f"no committed EXPO linear-regression runs under {ROOT}"
    expected = {f"{group}/{method}/seed-{seed}" for group, methods in METHODS.items() for method in methods
                for seed in (0, 1)}
    found = {str(p.relative_to(ROOT)) for p in RUNS}
    assert expected <= found, f"runs the reproduction notebooks read are missing: {sorted(expected - found)}"

@pytest.mark.parametrize("run_dir", RUNS, ids=[str(p.relative_to(ROOT)) for p in RUNS])
def test_run_is_complete_and_consistent(run_dir):
    group, method, seed_name = run_dir.relative_to(ROOT).parts
    config = RunConfig.from_json((run_dir / "config.json").read_text())
    task, settings, iterations, samples, eta = GROUPS[group]
    assert (config.task, config.task_settings, config.method) == (task, settings, method)
    assert (config.iterations, config.samples, config.eta, config.eta_es) == (iterations, samples, eta, 10.0)
    assert ((config.llm, config.embedder, config.k_descriptions, config.k_instructions)
            == ("local:qwen1.5b", "local:minilm", 3, 3))
    assert seed_name == f"seed-{config.seed}" and config.seed in (0, 1)
    files = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    assert files == KEEP, f"only the compact files are committed, found {sorted(files ^ KEEP)}"

    df = load_runs([run_dir])
    assert list(df["iteration"]) == list(range(iterations))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert ((summary["task"], summary["method"], summary["seed"], summary["iterations"])
            == (task, method, config.seed, iterations))
    assert math.isclose(summary["final_metric"], df["metric"].iloc[-1], rel_tol=0, abs_tol=1e-12)
    assert summary["arms_used"] == df["arm"].nunique()
    assert (summary["prompt_tokens"] == df["prompt_tokens"].sum()
            and summary["completion_tokens"] == df["completion_tokens"].sum())
    steps = df["metric"].diff().dropna()
    if task == "bandit": assert (steps >= -1e-12).all(), "cumulative regret never decreases"
    else: assert (steps <= 1e-12).all(), "the best-so-far metric never increases"
    if task == "tsp": assert (df["metric"] >= 0).all(), "an optimality gap is never negative"

    if method == "expo-es": _check_exemplar_lengths(df)
    else: assert df["n_exemplars"].isna().all(), "only EXPO-ES logs the length of the exemplar sequence it drew"

    domain = PromptDomain.load(run_dir / "domain")
    assert domain.shape == SHAPES.get(method, (4, 4)) and summary["domain_shape"] == list(domain.shape)
    for arm, d, i in zip(df["arm"], df["description"], df["instruction"]):
        assert domain.arm_index(int(d), int(i)) == int(arm)

def _check_exemplar_lengths(df):
    "EXPO-ES shows the whole history until it exceeds the sequence size (20), then sequences of that size."
    lengths = df["n_exemplars"].astype(int)
    history = lengths.iloc[0] + df["n_new"].cumsum().shift(fill_value=0)
    assert (lengths == history.clip(upper=20)).all(), (f"sequence lengths {list(lengths)} contradict the history "
                                                       f"{list(history)}")
