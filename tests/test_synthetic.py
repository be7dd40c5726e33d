"The synthetic prompt bandit: reward model invariants, reproducibility and errors."
import numpy as np
import pytest
import torch

from expo_nb.core import ExpoError
from expo_nb.synthetic import SyntheticBandit, SyntheticSetting, regret_table, run_synthetic, summarize

torch.set_num_threads(1)


@pytest.mark.parametrize("angle", [30.0, 90.0, 150.0])
def test_switching_directions_have_the_requested_angle(angle):
    bandit = SyntheticBandit(SyntheticSetting("switching", angle=angle, dim=5), seed=3)
    a, b = bandit.directions
    assert np.linalg.norm(a) == pytest.approx(1) and np.linalg.norm(b) == pytest.approx(1)
    assert np.degrees(np.arccos(a @ b)) == pytest.approx(angle)


def test_regret_is_zero_for_an_oracle_and_matches_the_definition():
    setting = SyntheticSetting("switching", switch_every=4)
    bandit = SyntheticBandit(setting, seed=1)
    oracle = sum(bandit.mean_rewards(t).max() - bandit.mean_rewards(t)[bandit.mean_rewards(t).argmax()]
                 for t in range(12))
    assert oracle == 0
    run = run_synthetic(setting, "random", seed=1, iterations=12)
    by_hand = np.cumsum([bandit.mean_rewards(t).max() - bandit.mean_rewards(t)[a] for t, a in enumerate(run["arms"])])
    np.testing.assert_allclose(run["cumulative_regret"], by_hand)


def test_every_method_sees_the_same_noise_sequence():
    # fixed and random play different arms, but the noise draw of iteration t is the same for both
    a = run_synthetic("stationary", "fixed", seed=2, iterations=10)
    b = run_synthetic("stationary", "random", seed=2, iterations=10)
    bandit = SyntheticBandit(SyntheticSetting("stationary"), seed=2)
    noise_a = a["scores"] - bandit.mean_rewards(0)[a["arms"]]
    noise_b = b["scores"] - bandit.mean_rewards(0)[b["arms"]]
    np.testing.assert_allclose(noise_a, noise_b, atol=1e-12)


def test_runs_are_reproducible_and_seed_dependent():
    a = run_synthetic("rising", "NeuralUCB", seed=0, iterations=8)
    b = run_synthetic("rising", "NeuralUCB", seed=0, iterations=8)
    c = run_synthetic("rising", "NeuralUCB", seed=1, iterations=8)
    assert np.array_equal(a["arms"], b["arms"]) and not np.array_equal(a["scores"], c["scores"])


def test_summary_reports_mean_and_standard_error():
    table = regret_table({"s": SyntheticSetting("stationary")}, methods=("fixed", "random"), seeds=range(3),
                         iterations=5)
    out = summarize(table).set_index("method")
    finals = table[table.iteration == 5].groupby("method").cumulative_regret
    assert out.loc["random", "mean"] == pytest.approx(finals.mean()["random"])
    assert out.loc["random", "sem"] == pytest.approx(finals.std()["random"] / np.sqrt(3))


@pytest.mark.parametrize("kwargs, message", [({"kind": "x"}, "kind must be one of"), ({"k1": 0}, "must all be >= 1"),
                                             ({"noise": float("nan")}, "noise must be >= 0")])
def test_bad_settings(kwargs, message):
    with pytest.raises(ExpoError, match=message): SyntheticSetting(**kwargs)

# The comparison itself (EXPO below NeuralUCB in the lifted switching and rising settings) is asserted in
# nbs/15_synthetic.ipynb, which tests/test_notebooks.py runs; repeating its 48 learning runs here would be slow.
