"Statistics for a claim: known differences are detected, identical samples are inconclusive, seeds pair correctly."
import math

import numpy as np
import pandas as pd
import pytest

from expo_nb.core import ExpoError, make_rng
from expo_nb.stats import (
    Claim,
    bootstrap_ci,
    compare,
    paired_differences,
    seed_values,
    seeds_needed,
    verdict,
    verdict_table,
    wilcoxon_p,
)


def runs_table(effect: float, seeds=range(8), iterations: int = 6, noise: float = 0.2, seed: int = 0,
               methods=("a", "b"), task: str = "toy") -> pd.DataFrame:
    "Trajectories with a shared per-seed level; method 'a' is `effect` higher than 'b' at every iteration."
    rng = make_rng(seed)
    level = {s: rng.normal() * 5 for s in seeds}
    rows = [{"run": f"{m}-{s}", "task": task, "method": m, "seed": s, "iteration": t,
             "metric": level[s] + 10 - t + (effect if m == "a" else 0.0) + noise * rng.normal()}
            for m in methods for s in seeds for t in range(iterations)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("at", ["final", "auc"])
def test_a_known_difference_is_detected(at):
    row = compare(runs_table(effect=-1.0), "a", "b", at=at)
    assert row["verdict"] == "reproduced"
    assert row["ci_low"] < -1.0 < row["ci_high"] < 0
    assert row["mean_difference"] == pytest.approx(-1.0, abs=0.3)
    assert row["p_wilcoxon"] == pytest.approx(2 / 2 ** 8)      # all 8 differences negative: the exact floor
    assert row["seeds_needed"] is None


def test_the_opposite_direction_is_not_reproduced():
    table = runs_table(effect=+1.0)
    assert compare(table, "a", "b", claim_direction="lower")["verdict"] == "not reproduced"
    assert compare(table, "a", "b", claim_direction="higher")["verdict"] == "reproduced"
    assert compare(table, "b", "a", claim_direction="lower")["verdict"] == "reproduced"


def test_identical_samples_give_p_one_and_inconclusive():
    a = runs_table(effect=0.0, methods=("a",))
    row = compare(pd.concat([a, a.assign(method="b")]), "a", "b")
    assert row["p_wilcoxon"] == 1.0
    assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0)
    assert row["verdict"] == "inconclusive at this budget"
    assert row["seeds_needed"] == math.inf


def test_a_small_difference_in_large_noise_is_inconclusive_and_asks_for_more_seeds():
    rng = make_rng(3)
    d = -0.1 + rng.normal(size=5)
    low, high = bootstrap_ci(d)
    assert verdict(low, high) == "inconclusive at this budget"
    needed = seeds_needed(d.mean(), d.std(ddof=1))
    assert needed > 5
    assert needed == math.ceil((1.959964 + 0.841621) ** 2 * (d.std(ddof=1) / abs(d.mean())) ** 2)


def test_seeds_are_paired_and_a_seed_of_one_method_only_is_dropped():
    table = runs_table(effect=-1.0, seeds=range(6))
    # seed 7 only for 'a', with a wild value, and seed 6 only for 'b': neither may be paired with anything
    lonely_a = table[(table.method == "a") & (table.seed == 0)].assign(seed=7, metric=1e6)
    lonely_b = table[(table.method == "b") & (table.seed == 0)].assign(seed=6, metric=-1e6)
    row = compare(pd.concat([table, lonely_a, lonely_b]), "a", "b")
    assert row["n_seeds"] == 6 and row["dropped_seeds"] == [6, 7]
    assert row == compare(table, "a", "b") | {"dropped_seeds": [6, 7]}
    # pairing is by seed label, not by row order: shuffling the rows changes nothing
    shuffled = table.sample(frac=1.0, random_state=1)
    assert compare(shuffled, "a", "b") == compare(table, "a", "b")


def test_paired_differences_are_a_minus_b_per_seed():
    a = pd.Series([1.0, 2.0, 3.0], index=[2, 0, 1])
    b = pd.Series([10.0, 20.0], index=[1, 2])
    assert paired_differences(a, b).to_dict() == {1: 3.0 - 10.0, 2: 1.0 - 20.0}


def test_a_shorter_run_sets_the_common_budget():
    table = runs_table(effect=-1.0, iterations=6)
    short = table[~((table.method == "b") & (table.seed == 3) & (table.iteration > 3))]
    row = compare(short, "a", "b")
    assert row["last_iteration"] == 3
    by_hand = short[short.iteration == 3].pivot(index="seed", columns="method", values="metric")
    assert row["mean_difference"] == pytest.approx((by_hand["a"] - by_hand["b"]).mean())


def test_final_and_auc_follow_their_definitions():
    table = runs_table(effect=-1.0)
    final = seed_values(table, "a", "final")
    auc = seed_values(table, "a", "auc")
    rows = table[table.method == "a"]
    assert final.to_dict() == rows[rows.iteration == 5].set_index("seed").metric.to_dict()
    assert auc.to_dict() == pytest.approx(rows.groupby("seed").metric.mean().to_dict())


def test_bootstrap_is_seeded_and_covers_the_mean():
    d = make_rng(5).normal(-0.5, 1.0, size=7)
    assert bootstrap_ci(d, seed=1) == bootstrap_ci(d, seed=1)
    low, high = bootstrap_ci(d)
    assert low < d.mean() < high


def test_wilcoxon_matches_scipy_and_is_one_for_all_zero():
    from scipy.stats import wilcoxon
    d = np.array([-0.3, 0.1, -0.8, -0.5, 0.2, -1.1])
    assert wilcoxon_p(d) == pytest.approx(wilcoxon(d).pvalue)
    assert wilcoxon_p(np.zeros(4)) == 1.0


def test_verdict_table_covers_every_claim_and_summary():
    table = pd.concat([runs_table(-1.0, task="t1"), runs_table(+1.0, task="t2", seed=1)])
    claims = [Claim("a beats b on t1", "a", "b", where={"task": "t1"}),
              {"text": "a beats b on t2", "a": "a", "b": "b", "where": {"task": "t2"}}]
    out = verdict_table(table, claims)
    assert list(out.claim) == ["a beats b on t1"] * 2 + ["a beats b on t2"] * 2
    assert list(out["at"]) == ["final", "auc"] * 2
    assert list(out.verdict) == ["reproduced"] * 2 + ["not reproduced"] * 2


@pytest.mark.parametrize("call, message", [
    (lambda t: compare(t, "a", "zzz"), "method 'zzz' not in the runs table"),
    (lambda t: compare(t, "a", "a"), "same method"),
    (lambda t: compare(t, "a", "b", at="best"), "at must be one of"),
    (lambda t: compare(t, "a", "b", claim_direction="better"), "claim_direction must be one of"),
    (lambda t: compare(t.drop(columns="iteration"), "a", "b"), "lacks columns ['iteration']"),
    (lambda t: compare(t.assign(metric=np.nan), "a", "b"), "NaN values"),
    (lambda t: compare(t.assign(metric="x"), "a", "b"), "must be numeric"),
    (lambda t: compare(pd.concat([t, t]), "a", "b"), "several rows per (seed, iteration)"),
    (lambda t: compare(pd.concat([t, t.assign(task="other")]), "a", "b"), "mixes tasks"),
    (lambda t: compare(t[(t.method == "b") | (t.seed == 0)], "a", "b"), "need at least 2 paired seeds, got 1"),
    (lambda t: compare(t.assign(seed=np.where(t.method == "a", t.seed, t.seed + 100)), "a", "b"), "no seed in common"),
    (lambda t: compare(t.to_dict(), "a", "b"), "expected a pandas DataFrame"),
    (lambda t: verdict_table(t, [Claim("x", "a", "b", where={"tsak": "toy"})]), "not a column"),
    (lambda t: verdict_table(t, [Claim("x", "a", "b", where={"task": "tsp"})]), "no rows where"),
    (lambda t: bootstrap_ci([1.0, 2.0], confidence=95), "confidence must be in (0, 1)"),
    (lambda t: seeds_needed(1.0, -1.0), "sd must be a finite number >= 0"),
])
def test_bad_input_gets_one_line_expo_error(call, message):
    with pytest.raises(ExpoError) as error:
        call(runs_table(effect=-1.0, seeds=range(3), iterations=3))
    assert message in str(error.value)
    assert "\n" not in str(error.value)
