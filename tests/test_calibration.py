"""The score scale b sets EXPO's exploration: under the default b, eta = 100 and eta = 1000 select differently on
the calibration benchmark (a 101 x 101 domain at the embedding similarity and objective noise of the logged runs);
under the old rule (b = the largest warm-start objective) both collapse onto a few arms."""
import numpy as np
import pytest
import torch

from expo_nb.calibration import CalibrationBandit, ObjectiveModel, logged_scale, replay, simulate
from expo_nb.core import ExpoError, make_rng
from expo_nb.tasks import DEFAULT_SCORE_SCALE, prompt_score

torch.set_num_threads(1)
ITERATIONS = 15
SEED = 1   # the notebook shows seed 0


@pytest.fixture(scope="module")
def runs():
    bandit = CalibrationBandit(101, 101, ObjectiveModel(), seed=SEED)
    return {(spec, eta): simulate(bandit, spec, eta, ITERATIONS, seed=SEED)
            for spec in (DEFAULT_SCORE_SCALE, "warm-max") for eta in (100.0, 1000.0)}


def late_entropy(run):
    "Mean entropy (nats) of iterations 6-15, after the start-up."
    return run.entropy.iloc[5:].mean()


def test_default_scale_separates_eta_100_from_eta_1000(runs):
    slow, fast = runs[DEFAULT_SCORE_SCALE, 100.0], runs[DEFAULT_SCORE_SCALE, 1000.0]
    assert (slow.arm.to_numpy() != fast.arm.to_numpy()).mean() > 0.5            # different arms most of the time
    assert late_entropy(slow) - late_entropy(fast) > 4.0                        # different entropy trajectories
    assert slow.distinct_arms.iloc[-1] >= 12                                    # eta = 100 keeps exploring
    assert slow.distinct_arms.iloc[-1] - fast.distinct_arms.iloc[-1] >= 5


def test_old_rule_makes_eta_100_and_1000_alike(runs):
    # the control: with b = the largest warm-start objective both values of eta are greedy after a few iterations
    # (each settles on its own arm, so the arm sequences differ, but the entropy trajectories coincide near 0)
    slow, fast = runs["warm-max", 100.0], runs["warm-max", 1000.0]
    for run in (slow, fast):
        assert run.distinct_arms.iloc[-1] <= 5
        assert late_entropy(run) < 1.0
    assert abs(late_entropy(slow) - late_entropy(fast)) < 1.0


def test_only_eta_over_b_matters_from_the_first_observation():
    bandit = CalibrationBandit(4, 4, seed=0)
    rng = make_rng(5)
    arms = [0, 5, 5, 9, 2, 0, 13]
    objectives = [bandit.pull(a, rng) for a in arms]
    slow = replay(bandit.domain, arms, objectives, scale=3.0, eta=100.0)
    fast = replay(bandit.domain, arms, objectives, scale=30.0, eta=1000.0)
    assert slow.arm.tolist() == arms == fast.arm.tolist()                       # a replay keeps the logged arms
    np.testing.assert_allclose(slow.spread_nats, fast.spread_nats, rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(slow.entropy, fast.entropy, rtol=1e-3, atol=1e-9)
    assert slow.spread_nats[1:].min() > 0                                       # the later iterations do move


def test_labels_without_spread_leave_the_distribution_uniform():
    bandit = CalibrationBandit(4, 4, seed=0)
    tied = replay(bandit.domain, [0, 5, 9, 2], [0.7, 0.7, 0.7, 0.4], scale=1.0, eta=1000.0)
    np.testing.assert_allclose(tied.entropy[:3], np.log(16), rtol=1e-9)          # one label, then ties: uniform
    np.testing.assert_allclose(tied.spread_nats[:3], 0.0, atol=1e-12)
    assert tied.entropy[3] < np.log(16) - 0.5                                  # the first spread moves it


def test_logged_scale_recovers_b_and_refuses_clipped_records():
    objectives = [120.0, 300.0, 999.0]
    scores = [prompt_score(o, 400.0) for o in objectives]
    assert logged_scale(objectives, scores) == pytest.approx(400.0)
    with pytest.raises(ExpoError, match="cannot be recovered"):
        logged_scale([900.0], [-1.0])
