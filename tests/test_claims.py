"The paper's claims as one verdict table: known answers on fake run directories, bandit pairing, no invented numbers."
import json
import math
from pathlib import Path

import numpy as np
import pytest

from expo_nb.claims import (
    ENV_STRIDE,
    NOT_RUN,
    PAPER_CLAIMS,
    claims_markdown,
    claims_table,
    margin_verdict,
    paper_claim,
    paper_runs_table,
)
from expo_nb.config import RunConfig
from expo_nb.core import ExpoError

ROOT = Path(__file__).resolve().parents[1]
PAPER_ROOT = ROOT / "nbs" / "results" / "paper"


def fake_run(root, group, method, seed, metrics, env=None, task="linreg"):
    "A finished run directory (config, log, summary) whose metric per iteration is `metrics`."
    path = Path(root, group, *([f"env-{env}"] if env is not None else []), method, f"seed-{seed}")
    path.mkdir(parents=True)
    config = RunConfig(task=task, method=method, seed=seed, iterations=len(metrics), env_seed=env)
    (path / "config.json").write_text(config.to_json())
    (path / "log.jsonl").write_text("".join(json.dumps({"iteration": t, "metric": float(m)}) + "\n"
                                            for t, m in enumerate(metrics)))
    (path / "summary.json").write_text("{}")
    return path


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    "expo ends 1 below opro on 6 seeds (noise 0.2); expo-es runs exactly opro; opro-enhanced has no runs."
    root, rng = tmp_path_factory.mktemp("runs"), np.random.default_rng(1)
    for s in range(6):
        level, noise = 10 + rng.normal(), 0.2 * rng.normal(size=4)
        fake_run(root, "toy", "opro", s, level + np.arange(4, 0, -1))
        fake_run(root, "toy", "expo-es", s, level + np.arange(4, 0, -1))
        fake_run(root, "toy", "expo", s, level + np.arange(4, 0, -1) - 1.0 + noise)
    fake_run(root, "one", "expo", 0, [3, 2])
    fake_run(root, "one", "opro", 0, [3, 1])
    return root


def claim(a, b, group="toy", **kwargs):
    return paper_claim("Toy", f"{a} vs {b}", group, a, b, "known", **kwargs)


def test_known_answers(toy_root):
    table = claims_table(toy_root, [claim("expo", "opro"), claim("expo-es", "opro"), claim("expo", "opro-enhanced"),
                                    claim("expo", "opro", group="one")], n_resamples=999)
    assert list(table.verdict) == ["reproduced", "inconclusive at this budget", NOT_RUN, "1 seed: no interval"]
    assert list(table.n_seeds) == [6, 6, 0, 1]
    assert table.mean_difference[0] == pytest.approx(-1.0, abs=0.3) and table.ci_high[0] < 0
    assert table.p[0] == pytest.approx(2 / 2 ** 6)
    assert table.seeds_needed[1] == math.inf
    assert math.isnan(table.mean_a[2]) and "toy/opro-enhanced: no finished runs" in table.ours[2]
    assert (table.mean_a[3], table.mean_b[3]) == (2.0, 1.0)       # the values themselves, without an interval
    assert "no interval" in table.ours[3]


def test_bandit_runs_pair_by_environment_and_repetition(tmp_path):
    for env in (0, 1):
        for rep in (0, 1, 2):
            fake_run(tmp_path, "bandit-hard", "expo", rep, [1, 2, 4 + rep], env=env, task="bandit")
            fake_run(tmp_path, "bandit-hard", "opro", rep, [1, 3, 6 + rep + env], env=env, task="bandit")
    runs = paper_runs_table(tmp_path)
    assert set(runs.group) == {"bandit-hard"}
    assert sorted(runs.seed.unique()) == [0, 1, 2, ENV_STRIDE, ENV_STRIDE + 1, ENV_STRIDE + 2]
    row = claims_table(tmp_path, [claim("expo", "opro", group="bandit-hard")], n_resamples=999).iloc[0]
    assert (row.n_seeds, row.mean_difference, row.verdict) == (6, -2.5, "reproduced")


def test_a_variant_group_against_its_base_and_the_margin(tmp_path):
    for s in range(4):
        fake_run(tmp_path, "toy", "opro", s, [20 + s, 10 + s])
        fake_run(tmp_path, "toy-t1", "opro", s, [20 + s, 10.1 + s])          # 1% apart: on par at a 10% margin
        fake_run(tmp_path, "toy-fixed", "opro", s, [20 + s, 5 + s])          # clearly lower
    claims = [claim("opro", "opro", group="toy-t1", group_b="toy", direction="same"),
              claim("opro", "opro", group="toy-fixed", group_b="toy", direction="same"),
              claim("opro", "opro", group="toy-fixed", group_b="toy")]
    table = claims_table(tmp_path, claims, n_resamples=999)
    assert list(table.verdict) == ["reproduced", "not reproduced", "reproduced"]
    assert table.margin[0] == pytest.approx(0.1 * (10.1 + 1.5))
    with pytest.raises(ExpoError, match="compare two run sets"):
        claim("opro", "opro", group="toy")
    assert margin_verdict(-3.0, -2.0, "not lower", 1.0) == "not reproduced"


def test_the_committed_runs_never_get_invented_numbers():
    table = claims_table(ROOT / "nbs" / "results" / "paper", n_resamples=999)
    assert len(table) == len(PAPER_CLAIMS)
    missing = table[table.verdict == NOT_RUN]
    assert missing.mean_a.isna().all() and missing.ci_low.isna().all()
    assert (table.loc[table.n_seeds < 2, "ci_low"]).isna().all()
    text = claims_markdown(table)
    assert text.count("\n| Fig. ") + text.count("\n| Check ") == len(PAPER_CLAIMS)


def test_committed_synthetic_runs_are_what_the_selectors_give():
    "Open checks 1 and 2 read nbs/results/paper/synthetic/runs.csv (tools/synthetic_checks.py): 2 seeds recomputed."
    from expo_nb.claims import committed_synthetic_runs, synthetic_runs_table
    committed = committed_synthetic_runs(PAPER_ROOT)
    assert committed is not None and committed.seed.nunique() == 60 and committed.run.nunique() == 360
    fresh = synthetic_runs_table(seeds=[0, 59])
    kept = committed[committed.seed.isin([0, 59])].reset_index(drop=True)
    assert list(kept.run) == list(fresh.run) and list(kept.iteration) == list(fresh.iteration)
    assert list(kept.metric) == list(fresh.metric)   # exactly: the regret is a seeded computation


def test_open_checks_1_and_2_have_verdicts():
    from expo_nb.claims import OPEN_CHECKS, claims_table
    table = claims_table(PAPER_ROOT, claims=OPEN_CHECKS[:2], n_resamples=999)
    assert list(table.n_seeds) == [60, 60] and not table.verdict.isin(["not run yet"]).any()
