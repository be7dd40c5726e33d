"""Edge cases of expo_nb.expo_es beyond the notebook: batched vs looped evaluation at scale, candidate-set
invariants, sampling calibration, caps, caching, state restore and input validation."""
import json
import pickle

import numpy as np
import pytest
import scipy.special
import torch

from expo_nb.core import Exemplar, ExemplarSequence, ExpoError, PromptDomain, make_rng
from expo_nb.estimator import EstimatorConfig
from expo_nb.exp3 import ExpoSelector
from expo_nb.expo_es import (
    ExemplarInputExpoSelector,
    ExpoEsSelector,
    NetworkHistory,
    RotationEsSelector,
    candidate_sequences,
    cyclic_rotations,
    fit_es_network,
)

torch.set_num_threads(1)


class BagEmbedder:
    "Deterministic embedder: each record token maps to a fixed random vector; position-weighted sum (order-aware)."
    identity, dimension = "bag-test", 16

    def __init__(self):
        self.calls, self.texts = 0, 0

    def embed(self, texts):
        self.calls += 1; self.texts += len(texts)
        out = np.zeros((len(texts), self.dimension), np.float32)
        for i, t in enumerate(texts):
            for pos, line in enumerate(t.splitlines()):
                seed = sum(map(ord, line)) % 10_000
                out[i] += (1 + 0.1 * pos) * np.random.default_rng(seed).normal(size=self.dimension)
        return out


def render(seq):
    return "\n".join(f"x={e.action} v={e.objective:g}" for e in seq)


def records(n, seed=0):
    rng = make_rng(seed)
    values = rng.permutation(1000)[:n]
    return [Exemplar(int(k), objective=float(v), score=float(-v / 100)) for k, v in enumerate(values)]


def forward(params, x):
    x = torch.as_tensor(np.asarray(x, np.float32))
    return (torch.relu(x @ params["W1"].T + params["b1"]) @ params["w2"] + params["b2"]).double().numpy()


def random_params(gen, d, h):
    return {"W1": torch.randn(h, d, generator=gen) / d ** 0.5, "b1": torch.randn(h, generator=gen),
            "w2": torch.randn(h, generator=gen) / h ** 0.5, "b2": torch.randn((), generator=gen)}


@pytest.mark.parametrize("block_floats", [2**26, 5000, 1])
@pytest.mark.parametrize("cap", [None, 7])
def test_batched_equals_loop(block_floats, cap):
    gen = torch.Generator().manual_seed(0)
    nets = [random_params(gen, 48, 24) for _ in range(30)]
    hist = NetworkHistory(max_networks=cap, block_floats=block_floats)
    for p in nets: hist.append(p)
    x = make_rng(1).normal(size=(57, 48))
    kept = nets if cap is None else nets[-cap:]
    expected = np.sum([forward(p, x) for p in kept], axis=0)          # independent reference
    np.testing.assert_allclose(hist.predict_sum(x), expected, atol=1e-5)
    np.testing.assert_allclose(hist.predict_each(x), np.stack([forward(p, x) for p in kept]), atol=1e-5)
    assert hist.parameter_bytes == len(kept) * (24 * 48 + 24 + 24 + 1) * 4


def test_history_stores_copies_and_empty_history():
    gen = torch.Generator().manual_seed(0)
    p = random_params(gen, 4, 3)
    hist = NetworkHistory()
    np.testing.assert_array_equal(hist.predict_sum(np.ones((2, 4))), [0.0, 0.0])
    assert hist.parameter_bytes == 0 and hist.stacked() == {}
    hist.append(p); before = forward(p, np.ones((1, 4)))
    p["W1"].add_(100.0)                                                 # mutate the caller's tensor
    np.testing.assert_allclose(hist.predict_sum(np.ones((1, 4))), before, atol=1e-6)


@pytest.mark.parametrize("n,size,pool", [(25, 20, 30), (21, 20, 30), (100, 20, 30), (40, 5, 5)])
def test_candidate_invariants(n, size, pool):
    hist = records(n)
    cands = candidate_sequences(hist, size, pool, n_random=64, rng=3)
    top = set(sorted(hist, key=lambda e: e.score, reverse=True)[:min(n, pool)])
    assert len(cands) == 65
    assert cands[0] == ExemplarSequence.top(hist, size)
    assert [e.score for e in cands[0]] == sorted(e.score for e in cands[0])
    for c in cands:
        assert isinstance(c, ExemplarSequence) and len(c) == size
        assert len(set(c.items)) == size and set(c.items) <= top


def test_candidates_are_seeded():
    hist = records(50)
    assert candidate_sequences(hist, 20, 30, 10, rng=5) == candidate_sequences(hist, 20, 30, 10, rng=5)
    assert candidate_sequences(hist, 20, 30, 10, rng=5) != candidate_sequences(hist, 20, 30, 10, rng=6)


@pytest.mark.parametrize("n", [1, 7, 20])
def test_at_most_L_records_all_used(n):
    es = ExpoEsSelector(BagEmbedder(), render, size=20, n_random=8, hidden=8, epochs=5)
    hist = records(n)
    seq = es.ask(hist)
    assert set(seq.items) == set(hist) and len(seq) == n
    assert [e.score for e in seq] == sorted(e.score for e in hist)   # worst -> best


def test_uniform_before_any_network_and_heuristic_included():
    es = ExpoEsSelector(BagEmbedder(), render, size=5, pool=8, n_random=30, hidden=8, epochs=5)
    es.ask(records(20))
    np.testing.assert_allclose(es.last_probabilities, np.full(31, 1 / 31))
    assert es.last_candidates[0] == ExemplarSequence.top(records(20), 5)


def test_rotations_exact():
    rows = records(4)
    rots = cyclic_rotations(rows)
    assert [tuple(e.action for e in r) for r in rots] == [(0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2)]


def _trained_selector(**kw):
    es = ExpoEsSelector(BagEmbedder(), render, size=4, pool=7, n_random=20, eta=kw.pop("eta", 10.0), hidden=8,
                        epochs=30, lr=1e-2, seed=0, **kw)
    hist = records(15)
    for t in range(5):
        seq = es.ask(hist)
        es.tell(seq, float(np.mean([e.score for e in seq])) + 0.02 * t)
    return es, hist


def test_sampling_is_calibrated_to_the_softmax():
    # candidates differ per ask, so test calibration: over many asks, the number of picks in the
    # more-probable half of each candidate set matches the sum of those halves' probabilities.
    es, hist = _trained_selector(eta=3.0)
    observed, expected, variance = 0, 0.0, 0.0
    for _ in range(600):
        pick = es.ask(hist)
        p = es.last_probabilities
        np.testing.assert_allclose(p, scipy.special.softmax(3.0 * es.last_scores), atol=1e-12)
        high = p >= np.median(p)
        q = p[high].sum()
        observed += int(any(es.last_candidates[i] == pick for i in np.flatnonzero(high)))
        expected += q; variance += q * (1 - q)
    assert abs(observed - expected) < 4 * np.sqrt(variance) + 1, (observed, expected, variance)


def test_rotation_frequencies_match_softmax():
    rot = RotationEsSelector(4, eta=5.0, seed=1)
    rot.cumulative_scores = np.array([0.1, 0.0, 0.3, -0.2])
    rows = records(4)
    rots = cyclic_rotations(rows)
    counts = np.bincount([rots.index(rot.ask(rows)) for _ in range(20000)], minlength=4)
    expected = scipy.special.softmax(5.0 * np.array([0.1, 0.0, 0.3, -0.2]))
    np.testing.assert_allclose(counts / 20000, expected, atol=4 * np.sqrt(0.25 / 20000))


@pytest.mark.parametrize("cap", [None, 2])
@pytest.mark.parametrize("with_networks", [True, False])
def test_state_restore_reproduces_next_draw(cap, with_networks):
    es, hist = _trained_selector(max_networks=cap)
    if with_networks: state = pickle.loads(pickle.dumps(es.state_dict()))
    else: state = json.loads(json.dumps(es.state_dict(networks=False)))
    draws = [es.ask(hist) for _ in range(3)]
    es.tell(draws[-1], 0.3); after_tell = es.ask(hist)
    fresh = ExpoEsSelector(BagEmbedder(), render, size=4, pool=7, n_random=20, eta=10.0, hidden=8, epochs=30, lr=1e-2,
                           seed=0, max_networks=cap)
    fresh.load_state_dict(state)
    assert [fresh.ask(hist) for _ in range(3)] == draws
    fresh.tell(draws[-1], 0.3)
    assert fresh.ask(hist) == after_tell                  # also after a further tell (ring order restored)


def test_cap_keeps_most_recent_networks():
    capped, hist = _trained_selector(max_networks=2)
    full, _ = _trained_selector()
    assert len(capped.networks) == 2 and len(full.networks) == 5
    x = capped.embed(candidate_sequences(hist, 4, 7, 5, rng=0))
    recent = {k: v[3:] for k, v in full.networks.stacked().items()}
    expected = sum(forward({k: v[i] for k, v in recent.items()}, x) for i in range(2))
    np.testing.assert_allclose(capped.networks.predict_sum(x), expected, atol=1e-5)
    assert capped.parameter_bytes * 5 == full.parameter_bytes * 2


def test_embedding_cache():
    emb = BagEmbedder()
    es = ExpoEsSelector(emb, render, size=3, pool=5, n_random=10, hidden=4, epochs=2, cache_size=1000)
    hist = records(10)
    es.ask(hist)
    assert emb.texts == 0                                  # no network yet: uniform draw, nothing embedded
    es.tell(es.ask(hist), 0.1)
    seq = es.ask(hist)
    texts = emb.texts
    es.tell(seq, 0.1)
    assert emb.texts == texts                              # told sequence was embedded at ask time
    es.embed([es.last_candidates[0]] * 3)
    assert emb.texts == texts
    small = ExpoEsSelector(BagEmbedder(), render, size=3, pool=5, n_random=10, hidden=4, epochs=2, cache_size=4)
    small.tell(small.ask(hist), 0.1)
    small.ask(hist)                                        # embeds 11 candidates
    assert len(small._cache) == 4


def test_tell_trains_on_all_records():
    es, hist = _trained_selector()
    assert len(es.scores) == 5 and len(es.features) == 5
    expected = fit_es_network(np.stack(es.features), np.array(es.scores), 8, 30, 1e-2, 0)
    last = {k: v[-1] for k, v in es.networks.stacked().items()}
    for k in expected: torch.testing.assert_close(last[k], expected[k])


def test_rotation_with_embedder_accumulates_network_predictions():
    emb = BagEmbedder()
    rot = RotationEsSelector(3, eta=10.0, hidden=8, epochs=20, seed=0, embedder=emb, render=render)
    rows = records(3)
    seq = rot.ask(rows)
    rot.tell(seq, 0.5)
    rots = cyclic_rotations(rows)
    params = fit_es_network(emb.embed([render(seq)]), np.array([0.5]), 8, 20, 1e-3, 0)
    np.testing.assert_allclose(rot.cumulative_scores, forward(params, emb.embed([render(r) for r in rots])), atol=1e-5)


class Context:
    "A settable exemplar context: `context()` returns the embedding set last, and counts its calls."
    def __init__(self, embedding=None): self.embedding, self.calls = embedding, 0

    def __call__(self):
        self.calls += 1
        return self.embedding


def test_exemplar_input_ablation_matches_explicit_features():
    rng = make_rng(0)
    dom = PromptDomain(["a", "b"], ["c", "d", "e"], rng.normal(size=(2, 3)), rng.normal(size=(3, 2)))
    config = EstimatorConfig(hidden=6, epochs=20)
    context = Context(rng.normal(size=4))
    sel = ExemplarInputExpoSelector(dom, eta=5.0, estimator=config, seed=0, context=context)
    assert isinstance(sel, ExpoSelector)
    assert sel.ask() == 0                 # like EXPO: the original arm first
    e1, e2 = rng.normal(size=4), rng.normal(size=4)
    context.embedding = e1; sel.ask(); sel.tell(1, 0.2)
    context.embedding = e2; sel.ask(); sel.tell(4, 0.9)
    # an independent fit on the explicit 9-d features gives the same predictions
    x_train = np.concatenate([dom.features([1, 4]), np.stack([e1, e2])], axis=1)
    x_all = np.concatenate([dom.features(range(6)), np.tile(e2, (6, 1))], axis=1)
    from expo_nb.estimator import ScoreEstimator
    reference = ScoreEstimator(config).fit(x_train, np.array([0.2, 0.9])).predict(x_all)
    np.testing.assert_allclose(sel.estimator.predict_domain(sel.context_domain(e2)), reference, atol=1e-5)
    state = pickle.loads(pickle.dumps(sel.state_dict()))
    before = sel.cumulative_scores.copy()
    a = [sel.ask() for _ in range(5)]
    np.testing.assert_allclose(sel.cumulative_scores - before, reference, atol=1e-5)
    sel.load_state_dict(state)
    assert [sel.ask() for _ in range(5)] == a


class OldShapeExemplarInputExpoSelector(ExpoSelector):
    "The ablation as it was before it became an ArmSelector: ask(embedding), tell(arm, score, embedding)."
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exemplar_embeddings, self._pending = [], False

    def ask(self, e):
        e = np.asarray(e, dtype=np.float32)
        if self._pending:
            k2 = self.domain.shape[1]
            instructions = np.concatenate([self.domain.instruction_embeddings, np.tile(e, (k2, 1))], axis=1)
            context = PromptDomain(self.domain.descriptions, self.domain.instructions,
                                   self.domain.description_embeddings, instructions)
            self.last_predictions = self.estimator.predict_domain(context)
            self.cumulative_scores += self.last_predictions; self._pending = False
        return super().ask()

    def tell(self, arm, score, e):
        self.history.append((int(arm), float(score))); self.exemplar_embeddings.append(np.asarray(e, dtype=np.float32))
        arms, scores = zip(*self.history)
        features = np.concatenate([self.domain.features(arms), np.stack(self.exemplar_embeddings)], axis=1)
        self.estimator.fit(features, np.array(scores)); self._pending = True


def test_exemplar_input_context_gives_the_numbers_of_the_old_ask_tell_shape():
    rng = make_rng(3)
    dom = PromptDomain(["a", "b", "c"], ["d", "e"], rng.normal(size=(3, 4)), rng.normal(size=(2, 3)))
    config = EstimatorConfig(hidden=8, epochs=15, lr=1e-2)
    contexts = [rng.normal(size=5).astype(np.float32) for _ in range(8)]
    context = Context()
    new = ExemplarInputExpoSelector(dom, 10.0, config, seed=4, context=context)
    old = OldShapeExemplarInputExpoSelector(dom, 10.0, config, seed=4)
    for t, e in enumerate(contexts):
        context.embedding = e
        arm = new.ask()
        assert context.calls == t + 1                    # context() is read once per ask
        assert old.ask(e) == arm
        score = float(np.sin(arm + t))
        new.tell(arm, score); old.tell(arm, score, e)
        np.testing.assert_array_equal(new.cumulative_scores, old.cumulative_scores)
        if old.last_predictions is not None: np.testing.assert_array_equal(new.last_predictions, old.last_predictions)
    assert context.calls == len(contexts)                # tell does not read the context


def test_exemplar_input_ablation_rejects_foreign_state():
    rng = make_rng(0)
    dom = PromptDomain(["a"], ["c", "d"], rng.normal(size=(1, 3)), rng.normal(size=(2, 2)))
    plain = ExpoSelector(dom, estimator=EstimatorConfig(hidden=4, epochs=2))
    sel = ExemplarInputExpoSelector(dom, estimator=EstimatorConfig(hidden=4, epochs=2), context=lambda: np.zeros(3))
    with pytest.raises(ExpoError, match="not a saved ExemplarInputExpoSelector state"):
        sel.load_state_dict(plain.state_dict())


@pytest.mark.parametrize("make,message", [
    (lambda: ExpoEsSelector(BagEmbedder(), "not callable"), "render must be a function"),
    (lambda: ExpoEsSelector(BagEmbedder(), render, n_random=-1), "n_random must be >= 0"),
    (lambda: ExpoEsSelector(BagEmbedder(), render, eta=float("inf")), "eta must be a positive finite number"),
    (lambda: ExpoEsSelector(BagEmbedder(), render, hidden=0), "hidden and epochs must be >= 1"),
    (lambda: ExpoEsSelector(BagEmbedder(), render, max_networks=0), "max_networks must be an integer >= 1"),
    (lambda: ExpoEsSelector(BagEmbedder(), render, max_networks=True), "max_networks must be an integer >= 1"),
    (lambda: RotationEsSelector(3, eta=-1), "eta must be a positive finite number"),
    (lambda: RotationEsSelector(3, render=render), "give both embedder and render"),
    (lambda: RotationEsSelector(3).tell(ExemplarSequence(tuple(records(3))), 1.0),
     "tell needs the sequence returned by the last ask"),
    (lambda: ExemplarInputExpoSelector("domain", context=lambda: np.zeros(3)), "domain must be a PromptDomain"),
    (lambda: ExemplarInputExpoSelector(PromptDomain(["a"], ["b"], np.eye(1), np.eye(1)), context=np.zeros(3)),
     "context must be a function"),
    (lambda: fit_es_network(np.zeros((0, 3)), np.zeros(0)), "need features (n, d) and scores (n,)"),
])
def test_bad_input_raises_expo_error(make, message):
    with pytest.raises(ExpoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_bad_tell_and_ask_inputs():
    es, hist = _trained_selector()
    seq = es.ask(hist)
    for bad in [float("nan"), float("inf"), True, "0.5", None]:
        with pytest.raises(ExpoError, match="score must be a finite number"): es.tell(seq, bad)
    with pytest.raises(ExpoError, match="history must be a sequence of Exemplar"): es.ask([("a", 1.0)])

    class BrokenEmbedder(BagEmbedder):
        def embed(self, texts): return np.zeros((len(texts) + 1, 4))
    broken = ExpoEsSelector(BrokenEmbedder(), render, size=3, pool=5, n_random=3)
    with pytest.raises(ExpoError, match="the embedder returned shape"):
        broken.tell(ExemplarSequence(tuple(hist[:3])), 0.1)
    rot = RotationEsSelector(3)
    with pytest.raises(ExpoError, match="ask needs the 3 per-arm summary rows"): rot.ask(records(4))
    rot.ask(records(3))
    with pytest.raises(ExpoError, match="score must be a finite number"):
        rot.tell(cyclic_rotations(records(3))[1], float("nan"))


def test_rotation_state_is_json_and_restores():
    rows = records(3)
    rot = RotationEsSelector(3, hidden=8, epochs=10, seed=2)
    for _ in range(3): rot.tell(rot.ask(rows), 0.4)
    state = json.loads(json.dumps(rot.state_dict()))
    draws = [rot.ask(rows) for _ in range(4)]
    again = RotationEsSelector(3, hidden=8, epochs=10, seed=2)
    again.load_state_dict(state)
    assert [again.ask(rows) for _ in range(4)] == draws
    with pytest.raises(ExpoError, match="saved state has 3 rotations, this selector 4"):
        RotationEsSelector(4).load_state_dict(state)
    with pytest.raises(ExpoError, match="not a saved RotationEsSelector state"):
        RotationEsSelector(3).load_state_dict({"kind": "other"})
