"Edge cases of the estimator, EXPO's selector and the baselines (the notebooks show the main behaviour)."
import json
import math

import numpy as np
import pytest
import scipy.special
import torch

from expo_nb.baselines import FixedPromptSelector, NeuralUcbSelector, UniformRandomSelector
from expo_nb.core import ExpoError, PromptDomain, make_rng
from expo_nb.estimator import EstimatorConfig, ScoreEstimator, fit_mlp
from expo_nb.exp3 import ExpoSelector, arm_probabilities, sample_arm

torch.set_num_threads(1)
SMALL = EstimatorConfig(hidden=8, epochs=10, lr=1e-2)


@pytest.fixture
def domain():
    rng = make_rng(0)
    return PromptDomain([f"D{i}" for i in range(3)], [f"I{j}" for j in range(5)], rng.normal(size=(3, 4)),
                        rng.normal(size=(5, 6)))


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid"])
def test_factorized_prediction_matches_naive_for_every_activation(domain, activation):
    rng = make_rng(1)
    arms = rng.integers(0, domain.n_arms, size=7)
    est = ScoreEstimator(EstimatorConfig(hidden=12, epochs=20, activation=activation))
    est.fit(domain.features(arms), rng.normal(size=7))
    naive = est.predict(domain.features(range(domain.n_arms)))
    np.testing.assert_allclose(est.predict_domain(domain), naive, atol=1e-5)


def test_unequal_part_dimensions_split_the_first_layer_correctly(domain):
    # descriptions are 4-d, instructions 6-d: a wrong split point would mix the two weight blocks
    est = ScoreEstimator(SMALL).fit(domain.features([0, 7, 14]), [0.1, 0.5, 0.9])
    w = est.network[0].weight.detach().numpy()
    i, j = 2, 3
    pre = (w[:, :4] @ domain.description_embeddings[i] + w[:, 4:] @ domain.instruction_embeddings[j]
           + est.network[0].bias.detach().numpy())
    out = np.maximum(pre, 0) @ est.network[2].weight.detach().numpy()[0] + est.network[2].bias.item()
    by_hand = out * est.label_scale + est.label_mean
    assert est.predict_domain(domain)[domain.arm_index(i, j)] == pytest.approx(by_hand, abs=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("standardize_inputs", [False, True])
def test_domain_projection_predicts_consistently_and_keeps_the_width(activation, standardize_inputs):
    # 4 descriptions and 3 instructions in 10-d: the span coordinates are 4 + 3, not 20
    rng = make_rng(7)
    dom = PromptDomain([f"D{i}" for i in range(4)], [f"I{j}" for j in range(3)], rng.normal(size=(4, 10)),
                       rng.normal(size=(3, 10)))
    arms = rng.integers(0, dom.n_arms, size=6)
    config = EstimatorConfig(hidden=9, epochs=30, lr=1e-2, activation=activation, standardize_inputs=standardize_inputs)
    est = ScoreEstimator(config).fit(dom.features(arms), rng.normal(size=6), domain=dom)
    assert (est.network[0].in_features, est.network[0].out_features, est.feature_dim) == (7, 9, 20)
    np.testing.assert_allclose(est.predict_domain(dom), est.predict(dom.features(range(dom.n_arms))), atol=1e-5)


def test_domain_projection_with_plain_gradient_descent_is_the_raw_network_in_other_coordinates():
    # both networks start from the same function on the arms (V0 = W0 Q) and take the same GD steps
    rng = make_rng(8)
    dom = PromptDomain([f"D{i}" for i in range(3)], [f"I{j}" for j in range(3)], rng.normal(size=(3, 8)),
                       rng.normal(size=(3, 8)))
    arms = [0, 4, 8, 2]
    x, y = dom.features(arms), np.array([0.1, 0.7, -0.3, 0.4])
    gd = EstimatorConfig(hidden=6, epochs=40, lr=0.05, optimizer="sgd", momentum=0.0, standardize_labels=False)
    raw = ScoreEstimator(EstimatorConfig(**{**gd.__dict__, "input_projection": "none"})).fit(x, y)
    projected = ScoreEstimator(gd).fit(x, y, domain=dom)
    q = torch.block_diag(*projected.projection)
    w0 = fit_mlp(x, y, 6, EstimatorConfig(epochs=1, lr=1e-30, momentum=0.0), torch.Generator().manual_seed(0))
    v0 = torch.nn.Sequential(torch.nn.Linear(q.shape[1], 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    with torch.no_grad():
        v0[0].weight.copy_(w0[0].weight @ q); v0[0].bias.copy_(w0[0].bias); v0[2].load_state_dict(w0[2].state_dict())
    step = torch.optim.SGD(v0.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(x.astype(np.float32)) @ q, torch.from_numpy(y.astype(np.float32))
    for _ in range(40):
        step.zero_grad(); torch.mean((v0(xt).squeeze(-1) - yt) ** 2).backward(); step.step()
    all_arms = torch.from_numpy(dom.features(range(dom.n_arms)).astype(np.float32))
    with torch.no_grad(): by_hand = v0(all_arms @ q).squeeze(-1).numpy()
    np.testing.assert_allclose(raw.predict_domain(dom), by_hand, atol=1e-4)
    assert projected.network[0].in_features == 6 and raw.network[0].in_features == 16
    np.testing.assert_allclose(projected.predict_domain(dom), raw.predict_domain(dom), atol=1e-5)   # V0 = W0 Q


def test_projection_needs_a_matching_domain(domain):
    with pytest.raises(ExpoError, match="domain feature dim 10 != the features' 3"):
        ScoreEstimator().fit(np.ones((2, 3)), [0.0, 1.0], domain=domain)


def test_labels_are_standardised_and_mapped_back():
    x = make_rng(3).normal(size=(20, 5)).astype(np.float32)
    y = 1000.0 + 50.0 * x[:, 0]
    est = ScoreEstimator(EstimatorConfig(hidden=16, epochs=300, lr=1e-2)).fit(x, y)
    assert est.label_mean == pytest.approx(y.mean()) and est.label_scale == pytest.approx(y.std())
    assert np.abs(est.predict(x) - y).mean() < 0.1 * y.std()


def test_fit_mlp_minibatches_are_seeded():
    x = make_rng(4).normal(size=(30, 5)); y = x[:, 0]
    a = fit_mlp(x, y, 8, EstimatorConfig(batch_size=7, epochs=3), torch.Generator().manual_seed(5))
    b = fit_mlp(x, y, 8, EstimatorConfig(batch_size=7, epochs=3), torch.Generator().manual_seed(5))
    c = fit_mlp(x, y, 8, EstimatorConfig(batch_size=7, epochs=3), torch.Generator().manual_seed(6))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


@pytest.mark.parametrize("bad, message", [({"weight_decay": -1.0}, "weight_decay"), ({"batch_size": 0}, "batch_size"),
                                          ({"seed": 1.5}, "seed must be an int"), ({"lr": float("nan")}, "lr must be")])
def test_config_validation(bad, message):
    with pytest.raises(ExpoError, match=message): EstimatorConfig(**bad)


def test_inf_features_are_refused():
    with pytest.raises(ExpoError, match="features contain NaN or inf"):
        ScoreEstimator().fit(np.array([[1.0, np.inf]]), [0.0])


def test_probabilities_survive_huge_eta_and_scores():
    p = arm_probabilities(np.array([1e300, -1e300, 1e300]), 1e10)
    assert np.isfinite(p).all() and p.tolist() == [0.5, 0.0, 0.5]


def test_probabilities_match_scipy_softmax():
    s = make_rng(6).normal(size=50)
    np.testing.assert_allclose(arm_probabilities(s, 3.7), scipy.special.softmax(3.7 * s), rtol=1e-12)


def test_sample_arm_never_returns_zero_probability_arms():
    p = np.array([0.0, 0.5, 0.0, 0.5, 0.0]); rng = make_rng(7)
    assert set(sample_arm(p, rng) for _ in range(2000)) == {1, 3}


def test_eta_must_be_a_real_number(domain):
    for eta in (True, "100", float("inf"), -5):
        with pytest.raises(ExpoError, match="eta must be a positive finite number"): ExpoSelector(domain, eta=eta)


def test_bool_and_float_arms_are_refused(domain):
    sel = ExpoSelector(domain, estimator=SMALL)
    for arm in (True, 1.0):
        with pytest.raises(ExpoError, match="arm index"): sel.tell(arm, 0.1)
    with pytest.raises(ExpoError, match="score must be a finite number"): sel.tell(0, "0.5")
    assert sel.history == []


def test_state_survives_json_and_a_new_process_shape(domain):
    sel = ExpoSelector(domain, eta=5.0, estimator=SMALL, seed=3)
    for t in range(4): sel.tell(sel.ask(), 0.1 * t)
    state = json.loads(json.dumps(sel.state_dict()))
    other = ExpoSelector(domain, eta=99.0, estimator=SMALL, seed=0); other.load_state_dict(state)
    assert other.eta == 5.0 and np.array_equal(other.cumulative_scores, sel.cumulative_scores)
    assert [other.ask() for _ in range(30)] == [sel.ask() for _ in range(30)]


@pytest.mark.parametrize("make", [lambda d: FixedPromptSelector(d, arm=2), lambda d: UniformRandomSelector(d, seed=1),
                                  lambda d: ExpoSelector(d, estimator=SMALL),
                                  lambda d: NeuralUcbSelector(d, estimator=SMALL)])
def test_every_selector_has_the_same_interface(domain, make):
    sel = make(domain)
    for t in range(3):
        arm = sel.ask(); assert 0 <= arm < domain.n_arms
        sel.tell(arm, 0.2 * t)
    assert len(sel.history) == 3
    p = sel.probabilities; assert p.shape == (domain.n_arms,) and math.isclose(p.sum(), 1.0)
    summary = sel.summary(top=2); assert summary["iterations"] == 3 and len(summary["top_arms"]) == 2
    json.dumps(sel.state_dict())
    with pytest.raises(ExpoError, match="score must be a finite number"): sel.tell(0, float("nan"))
    with pytest.raises(ExpoError, match="arm index"): sel.tell(domain.n_arms, 0.0)


def test_neural_ucb_bonus_counts_plays_only_when_lambda_is_small(domain):
    "With PyTorch's default init, squared gradients are << 1, so with lambda_=1 U barely moves (documented)."
    def played(lambda_):
        sel = NeuralUcbSelector(domain, estimator=SMALL, nu=100.0, lambda_=lambda_)
        arms = []
        for t in range(8):
            arm = sel.ask(); arms.append(arm); sel.tell(arm, 0.5)
        return arms
    assert len(set(played(1e-2))) >= 5      # the bonus shrinks where U grew: it keeps trying new arms
    assert len(set(played(1.0))) <= 3       # the bonus is nearly play-independent: it repeats one arm


def test_neural_ucb_restore_before_any_feedback(domain):
    sel = NeuralUcbSelector(domain, estimator=SMALL)
    other = NeuralUcbSelector(domain, estimator=SMALL); other.load_state_dict(json.loads(json.dumps(sel.state_dict())))
    assert other.ask() == sel.ask() == 0


def test_default_estimator_predicts_like_the_raw_network_on_every_arm():
    "The default (SGD with momentum, domain projection started at W0 Q) is the paper's raw-input network."
    rng = make_rng(11)
    dom = PromptDomain([f"D{i}" for i in range(11)], [f"I{j}" for j in range(9)],
                       rng.normal(size=(11, 64)) / 8, rng.normal(size=(9, 64)) / 8)
    arms, scores = rng.integers(0, dom.n_arms, 25), rng.normal(size=25)
    default = ScoreEstimator().fit(dom.features(arms), scores, domain=dom)
    raw = ScoreEstimator(EstimatorConfig(input_projection="none")).fit(dom.features(arms), scores, domain=dom)
    assert default.network[0].in_features < raw.network[0].in_features
    np.testing.assert_allclose(default.predict_domain(dom), raw.predict_domain(dom), atol=1e-5)


def test_neuralucb_and_expo_see_the_same_inputs_and_predict_alike():
    "Only the selection rule differs: same history -> same network predictions on every arm (default config)."
    rng = make_rng(12)
    dom = PromptDomain([f"D{i}" for i in range(6)], [f"I{j}" for j in range(5)],
                       rng.normal(size=(6, 32)) / 6, rng.normal(size=(5, 32)) / 6)
    expo, ucb = ExpoSelector(dom, eta=100.0, seed=0), NeuralUcbSelector(dom, seed=0)
    for arm, score in [(0, 0.2), (7, 0.5), (13, -0.1), (29, 0.4)]:
        expo.tell(arm, score); ucb.tell(arm, score)
        np.testing.assert_allclose(ucb.means, expo.last_predictions, atol=1e-5)


def test_neuralucb_first_played_arm_enters_the_confidence():
    rng = make_rng(13)
    dom = PromptDomain(["a", "b", "c"], ["x", "y"], rng.normal(size=(3, 8)), rng.normal(size=(2, 8)))
    ucb = NeuralUcbSelector(dom, seed=0)
    ucb.tell(0, 0.3)
    assert len(ucb.gradient_log) == 1
    assert ucb.bonus[0] < ucb.bonus[1:].max()   # the played arm is less uncertain than some unplayed one


def test_every_selector_matches_its_protocol(domain):
    from expo_nb.core import ArmSelector, ExemplarSelector
    from expo_nb.expo_es import ExemplarInputExpoSelector, ExpoEsSelector, RotationEsSelector

    class Embedder:
        identity, dimension = "zeros", 3
        def embed(self, texts): return np.zeros((len(texts), 3), np.float32)

    arm_selectors = [ExpoSelector(domain, estimator=SMALL), FixedPromptSelector(domain, arm=0),
                     UniformRandomSelector(domain), NeuralUcbSelector(domain, SMALL),
                     ExemplarInputExpoSelector(domain, estimator=SMALL, context=lambda: np.zeros(3))]
    exemplar_selectors = [ExpoEsSelector(Embedder(), str, size=2, pool=3, n_random=2), RotationEsSelector(3)]
    for selector in arm_selectors:
        assert isinstance(selector, ArmSelector), type(selector)   # (runtime protocols check method names only)
        assert isinstance(selector.ask(), int)
    for selector in exemplar_selectors:
        assert isinstance(selector, ExemplarSelector), type(selector)
        assert isinstance(selector.state_dict(networks=False), dict) and isinstance(selector.summary(), dict)
