"""Edge cases of the task layer: parsers (examples + hypothesis), Held-Karp vs brute force, MSE by hand, prompt
snapshots, step()."""
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expo_nb.core import Completion, Exemplar, ExemplarSequence, ExpoError, MetaInstruction, make_rng
from expo_nb.task_linreg import LINREG_FORMAT, LinearRegressionTask, parse_pair
from expo_nb.task_tsp import TSP_FORMAT, TspTask, held_karp, parse_tour, tour_length
from expo_nb.tasks import DEFAULT_TEMPERATURES, Parsed, StepOutcome, Task, prompt_score
from expo_nb.testing import ScriptedChat

SNAPSHOTS = Path(__file__).parent / "snapshots"
PARSER_SETTINGS = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- parsers: examples

@pytest.mark.parametrize("reply, pair", [
    ("[3, 29]", (3, 29)),
    ("Looking at the trend, w should go down and b up.\nMy proposal: [3, 29]\nThanks!", (3, 29)),
    ("[w=3, b=29]", (3, 29)), ("[ W: 3 , B: 29 ]", (3, 29)), ("[-4.4, +2.6]", (-4, 3)),
    ("answer in the form [w, b]: [5, 6]", (5, 6)), ("[5, 6] (I used the format [w, b])", (5, 6)),
    ("[1.5e1, 2.]", (15, 2)), ("[.5, 7]", (0, 7)),
])
def test_parse_pair_accepts_wellformed_with_chatter(reply, pair):
    assert parse_pair(reply) == Parsed(pair)


@pytest.mark.parametrize("reply, reason", [
    ("", "empty reply"), ("   \n", "empty reply"), (None, "empty reply"), ("w=3, b=29", "no [w, b] pair"),
    ("(3, 29)", "no [w, b] pair"), ("[3]", "found 1 part"), ("[3 29]", "found 1 part"), ("[1, 2, 3]", "found 3 part"),
    ("[NaN, 1]", "not a number"), ("[1, -inf]", "not a number"), ("[1e400, 1]", "magnitude"), ("[1, 2e6]", "magnitude"),
    ("[three, four]", "not a number"), ("[1/2, 3]", "not a number"), ("[0x10, 3]", "not a number"),
    ("[, ]", "not a number"), ("[3, 29", "no [w, b] pair"),
])
def test_parse_pair_rejects_malformed_with_reason(reply, reason):
    parsed = parse_pair(reply)
    assert parsed.action is None and not parsed.valid
    assert reason in parsed.reason, parsed.reason


def test_parse_pair_max_abs_is_configurable():
    assert parse_pair("[50, 1]", max_abs=10).action is None
    assert LinearRegressionTask(max_abs=100).parse("[99, -100]").action == (99, -100)


@pytest.mark.parametrize("reply, tour", [
    ("<trace>0,1,2,3,4</trace>", (0, 1, 2, 3, 4)),
    ("Here is a shorter one:\n<trace> 0, 4, 3, 2, 1 </trace>\nIt avoids the crossing.", (0, 4, 3, 2, 1)),
    ("<trace>3,4,0,1,2</trace>", (0, 1, 2, 3, 4)),                      # rotated to start at 0
    ("<trace>0 2 4 1 3</trace>", (0, 2, 4, 1, 3)), ("<trace>0->2->4->1->3</trace>", (0, 2, 4, 1, 3)),
    ("<trace>0,2,4,1,3,0</trace>", (0, 2, 4, 1, 3)),                    # closed form
    ("<Trace>0,1,2,3,4</TRACE>", (0, 1, 2, 3, 4)),
    ("<trace>0,1,2,3,4</trace> and the format was <trace>...</trace>", (0, 1, 2, 3, 4)),
])
def test_parse_tour_accepts_wellformed_with_chatter(reply, tour):
    assert parse_tour(reply, 5) == Parsed(tour)


@pytest.mark.parametrize("reply, reason", [
    ("", "empty reply"), (None, "empty reply"), ("0,1,2,3,4", "no <trace>"), ("<trace>0,1,2,3,4", "no <trace>"),
    ("<trace> </trace>", "empty"), ("<trace>0,1,2,3</trace>", "expected all 5 nodes, got 4"),
    ("<trace>0,1,2,3,4,1</trace>", "node 1 is repeated"), ("<trace>0,1,2,2,4</trace>", "node 2 is repeated"),
    ("<trace>0,1,2,3,5</trace>", "node 5 is out of range 0..4"), ("<trace>0,1,2,3,-4</trace>", "not a node number"),
    ("<trace>0,1,2,3,four</trace>", "'four' is not a node number"), ("<trace>0,1,2,3,4.0</trace>", "not a node number"),
    ("<trace>0,1,2,3,99999999999</trace>", "not a node number"), ("<trace>0,1,2,3,4,5,6</trace>", "out of range"),
])
def test_parse_tour_rejects_malformed_with_reason(reply, reason):
    parsed = parse_tour(reply, 5)
    assert parsed.action is None
    assert reason in parsed.reason, parsed.reason


# ---------------------------------------------------------------- parsers: properties

REPLY_ALPHABET = st.sampled_from(list("[]<>/,.;:=-+ \n0123456789eEwbnaifxtrc")
                                 + ["<trace>", "</trace>", "nan", "inf", "->"])
replies = st.one_of(st.text(), st.lists(REPLY_ALPHABET, max_size=80).map("".join))


@PARSER_SETTINGS
@given(replies)
def test_parse_pair_never_raises_and_valid_means_int_pair(reply):
    parsed = parse_pair(reply)
    assert isinstance(parsed, Parsed)
    if parsed.valid:
        w, b = parsed.action
        assert isinstance(w, int) and isinstance(b, int) and abs(w) <= 1e6 and abs(b) <= 1e6 and parsed.reason == ""
    else:
        assert parsed.reason


@PARSER_SETTINGS
@given(replies, st.integers(4, 12))
def test_parse_tour_never_raises_and_valid_means_permutation(reply, n):
    parsed = parse_tour(reply, n)
    if parsed.valid:
        assert sorted(parsed.action) == list(range(n)) and parsed.action[0] == 0
    else:
        assert parsed.reason


@PARSER_SETTINGS
@given(st.permutations(range(9)), st.text(alphabet=st.characters(blacklist_characters="<>[]"), max_size=40))
def test_parse_tour_finds_any_permutation_in_chatter(tour, chatter):
    parsed = parse_tour(f"{chatter}<trace>{','.join(map(str, tour))}</trace>{chatter}", 9)
    start = tour.index(0)
    assert parsed.action == tuple(tour[start:] + tour[:start])


@PARSER_SETTINGS
@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6),
       st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=40))
def test_parse_pair_finds_any_pair_in_chatter(w, b, chatter):
    assert parse_pair(f"{chatter} [{w}, {b}] {chatter}").action == (w, b)


@pytest.mark.parametrize("reply", ["[" * 200_000, "<trace>" * 50_000, "[1," * 100_000,
                                   "<trace>0," * 50_000 + "</trace>", "9" * 200_000, "[" + "1" * 100_000 + ", 2]"])
def test_parsers_are_fast_on_pathological_input(reply):
    start = time.perf_counter()
    parse_pair(reply); parse_tour(reply, 20)
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------- Held-Karp

def brute_force(d):
    n = len(d)
    return min(tour_length(d, (0, *p)) for p in itertools.permutations(range(1, n)))


@pytest.mark.parametrize("n", range(2, 9))
@pytest.mark.parametrize("seed", range(4))
def test_held_karp_equals_brute_force(n, seed):
    rng = make_rng(100 * n + seed)
    points = rng.uniform(-100, 100, (n, 2))
    euclidean = np.linalg.norm(points[:, None] - points[None], axis=-1)
    for d in (euclidean, rng.uniform(0, 50, (n, n))):  # symmetric, asymmetric
        length, tour = held_karp(d)
        assert sorted(tour) == list(range(n)) and tour[0] == 0
        assert math.isclose(length, tour_length(d, tour), rel_tol=1e-12)
        assert math.isclose(length, brute_force(d), rel_tol=1e-12)


def test_held_karp_unit_square_by_hand():
    points = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float)   # optimal tour goes around the square: length 4
    length, tour = held_karp(np.linalg.norm(points[:, None] - points[None], axis=-1))
    assert math.isclose(length, 4.0)
    assert tour in {(0, 2, 1, 3), (0, 3, 1, 2)}


def test_held_karp_rejects_bad_input():
    with pytest.raises(ExpoError, match="square"): held_karp(np.zeros((3, 2)))
    with pytest.raises(ExpoError, match="NaN"): held_karp(np.array([[0, np.inf], [1, 0]]))
    with pytest.raises(ExpoError, match="exponential"): held_karp(np.zeros((23, 23)))


def test_held_karp_n20_is_fast_and_no_worse_than_two_opt():
    task = TspTask(n=20, instance_seed=3)
    start = time.perf_counter()
    length, tour = held_karp(task.distances)
    assert time.perf_counter() - start < 30
    assert sorted(tour) == list(range(20))
    best = list(task.warm_start_actions()[0])                    # a 2-opt local optimum can only be longer or equal
    improved = True
    while improved:
        improved = False
        for i, j in itertools.combinations(range(1, 20), 2):
            candidate = best[:i] + best[i:j + 1][::-1] + best[j + 1:]
            if tour_length(task.distances, candidate) < tour_length(task.distances, best) - 1e-9:
                best, improved = candidate, True
    assert length <= tour_length(task.distances, best) + 1e-9


# ---------------------------------------------------------------- objectives and metrics

def test_linreg_mse_by_hand():
    task = LinearRegressionTask(w=2, b=30)
    task.x, task.y = np.array([-1.0, 0.0, 1.0]), np.array([28.0, 30.0, 32.0])
    assert math.isclose(task.objective((3, 29)), (2**2 + 1**2 + 0**2) / 3)     # residuals 2, 1, 0
    assert task.objective((2, 30)) == 0.0


def test_linreg_data_and_warm_start_follow_seeds():
    a, b = (LinearRegressionTask(data_seed=1, init_seed=2, score_scale="warm-max"),
            LinearRegressionTask(data_seed=1, init_seed=2))
    assert np.array_equal(a.x, b.x) and a.warm_start_actions() == b.warm_start_actions()
    assert a.warm_start_actions() != LinearRegressionTask(data_seed=1, init_seed=3).warm_start_actions()
    assert np.allclose(a.y, 2 * a.x + 30)
    assert a.metric() == min(a.objective(p) for p in a.warm_start_actions())
    assert a.score_scale == max(a.objective(p) for p in a.warm_start_actions())


def test_tsp_metric_is_gap_percent():
    task = TspTask(n=8, instance_seed=2)
    optimal = brute_force(task.distances)
    best = min(tour_length(task.distances, t) for t in task.warm_start_actions())
    assert math.isclose(task.metric(), 100 * (best - optimal) / optimal, rel_tol=1e-9)
    task.history.append(Exemplar(task.optimum[1], task.optimum[0], 1.0))
    assert abs(task.metric()) < 1e-9


def test_prompt_score_transform():
    assert prompt_score(0.0, 10.0) == 1.0 and prompt_score(10.0, 10.0) == 0.0 and prompt_score(5.0, 10.0) == 0.5
    assert prompt_score(1000.0, 10.0) == -1.0 and prompt_score(1000.0, 10.0, floor=None) == -99.0
    with pytest.raises(ExpoError, match="score scale"): prompt_score(1.0, float("nan"))


# ---------------------------------------------------------------- rendered prompt snapshots

def _check_snapshot(name, text):
    path = SNAPSHOTS / name
    if os.environ.get("EXPO_UPDATE_SNAPSHOTS") == "1": path.parent.mkdir(exist_ok=True); path.write_text(text)
    assert text == path.read_text(), \
        f"rendered prompt changed; if intended, rerun with EXPO_UPDATE_SNAPSHOTS=1 and review {path}"


def test_linreg_prompt_snapshot_and_order():
    task = LinearRegressionTask(w=2, b=30, data_seed=0, init_seed=0)
    for pair in [(3, 29), (40, 40), (5, 25)]:
        task.history.append(Exemplar(pair, task.objective(pair), task.prompt_score(task.objective(pair))))
    text = task.meta_prompt(task.description0, task.instruction0).as_text()
    _check_snapshot("linreg_prompt.txt", text)
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("value:")]
    assert len(values) == 8 and values == sorted(values, reverse=True)        # worst to best
    assert values[-1] == round(task.objective((3, 29)), 2)
    positions = [text.index(part) for part in (task.description0.text, "w=", task.instruction0.text, LINREG_FORMAT)]
    assert positions == sorted(positions)


def test_tsp_prompt_snapshot_and_order():
    task = TspTask(n=10, instance_seed=0, init_seed=0)
    text = task.meta_prompt(task.description0, task.instruction0).as_text()
    _check_snapshot("tsp_prompt.txt", text)
    lengths = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("length:")]
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == 5
    assert text.count("\n(") == 10 and text.endswith(TSP_FORMAT)


def test_top_k_limits_the_default_exemplars():
    task = LinearRegressionTask(top_k=3)
    assert [e.objective for e in task.default_exemplars()] == sorted(e.objective for e in task.history)[:3][::-1]


def test_enhanced_prompt_says_worst_to_best():
    for task in (LinearRegressionTask(), TspTask(n=5)):
        description, instruction = task.enhanced_prompt()
        assert description.text.startswith(task.description0.text)
        assert "worst" in description.text and "best" in description.text
        assert instruction == task.instruction0 and "worst" in task.enhanced_instruction.text


def test_format_suffix_survives_any_instruction():
    task = LinearRegressionTask()
    prompt = task.meta_prompt("Minimise it.", MetaInstruction("Answer with anything you like."))
    assert prompt.as_text().endswith("Answer with anything you like.\n" + LINREG_FORMAT)


def test_custom_exemplar_order_is_kept():
    task = LinearRegressionTask()
    sequence = ExemplarSequence(tuple(sorted(task.history, key=lambda e: e.objective)))     # best first, on purpose
    text = task.meta_prompt(task.description0, task.instruction0, exemplars=sequence).as_text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("value:")]
    assert values == sorted(values)
    with pytest.raises(ExpoError, match="ExemplarSequence"):
        task.meta_prompt(task.description0, task.instruction0, exemplars=[1])


# ---------------------------------------------------------------- step() with a scripted chat

D0, I0 = LinearRegressionTask.description0, LinearRegressionTask.instruction0


def test_step_grows_history_deduplicates_and_scores_temperature_zero():
    task = LinearRegressionTask(temperatures=(1.0, 1.0, 1.0, 0.0))
    warm = task.history[0].action
    chat = ScriptedChat(["[3, 29]", "again [3, 29]", f"[{warm[0]}, {warm[1]}]", "final: [4, 28]"])
    out = task.step(chat, D0, I0, tag="it0")
    assert isinstance(out, StepOutcome)
    assert [e.action for e in task.history[5:]] == [(3, 29), (4, 28)]         # duplicate and known pair not re-added
    assert (out.n_valid, out.n_samples, out.n_new, out.valid, out.feedback) == (4, 4, 2, True, "sample")
    assert out.objective == task.objective((4, 28))
    assert out.score == pytest.approx(1 - task.objective((4, 28)) / task.score_scale)
    assert out.metric == task.objective((3, 29)) == task.metric_history[-1]
    assert [r.temperature for r in chat.requests] == [1.0, 1.0, 1.0, 0.0] and {r.tag for r in chat.requests} == {"it0"}
    assert out.replies == ["[3, 29]", "again [3, 29]", f"[{warm[0]}, {warm[1]}]", "final: [4, 28]"]


def test_step_feedback_uses_known_action_score():
    task = LinearRegressionTask(temperatures=(0.0,))
    known = task.history[2]
    out = task.step(ScriptedChat([f"[{known.action[0]}, {known.action[1]}]"]), D0, I0)
    assert (out.score, out.n_new, out.feedback) == (known.score, 0, "sample")


def test_step_fallback_best_valid_then_penalty():
    task = LinearRegressionTask(temperatures=(1.0, 1.0, 0.0), fallback="best-valid", reask=0)
    out = task.step(ScriptedChat(["[3, 29]", "[10, 10]", "I am not sure."]), D0, I0)
    assert (out.valid, out.feedback) == (False, "best-valid")
    assert out.score == max(task.prompt_score(task.objective(p)) for p in [(3, 29), (10, 10)])
    worst = min(e.score for e in task.history)
    out = task.step(ScriptedChat(["nothing", "[nan, 1]", ""]), D0, I0)
    assert (out.valid, out.n_valid, out.feedback, out.objective, out.score) == (False, 0, "penalty", None, worst)
    assert task.metric_history == [task.objective((3, 29))] * 2


def test_step_penalty_fallback_mode():
    task = LinearRegressionTask(temperatures=(1.0, 0.0), fallback="penalty")
    out = task.step(ScriptedChat(["[2, 30]", "oops", "oops again"]), D0, I0)
    assert out.feedback == "penalty" and out.score == min(e.score for e in task.history) and out.metric == 0.0
    assert out.n_reasked == 1 and len(out.replies) == 3


def test_default_reasks_an_invalid_greedy_reply_then_penalizes():
    "Default labels: an invalid temperature-0 reply is asked again once; the best other sample never stands in."
    task = LinearRegressionTask(temperatures=(1.0, 1.0, 0.0))
    chat = ScriptedChat(["[2, 30]", "[3, 29]", "no pair here", "[4, 28]"])
    out = task.step(chat, D0, I0, tag="it-0")
    assert (out.feedback, out.objective, out.n_reasked) == ("reask", task.objective((4, 28)), 1)
    assert chat.requests[3].temperature == 0.0 and chat.requests[3].tag == "it-0/reask-1"
    assert chat.requests[3].messages == chat.requests[2].messages
    out = task.step(ScriptedChat(["[2, 30]", "[3, 29]", "no pair", "still none"]), D0, I0, tag="it-1")
    assert (out.feedback, out.objective) == ("penalty", None)
    assert out.score == min(e.score for e in task.history) < task.prompt_score(task.objective((3, 29)))


def test_step_counts_tokens_and_cache_hits():
    class Cached:
        identity = "cached-stub"
        def complete(self, requests):
            return [Completion("[3, 29]", 10, 2, cached=k % 2 == 0) for k, _ in enumerate(requests)]
    out = LinearRegressionTask().step(Cached(), D0, I0)
    assert (out.prompt_tokens, out.completion_tokens, out.cached_calls, out.n_samples) == (80, 16, 4, 8)
    assert DEFAULT_TEMPERATURES == (1.0,) * 7 + (0.0,)


def test_step_rejects_wrong_completion_count_and_arm_indices():
    class Short:
        identity = "short"
        def complete(self, requests): return [Completion("[1, 2]")]
    task = LinearRegressionTask()
    with pytest.raises(ExpoError, match="returned 1 completions for 8"): task.step(Short(), D0, I0)
    with pytest.raises(ExpoError, match="domain.texts"): task.step(ScriptedChat(["[1, 2]"]), 0, 3)


def test_tsp_step_and_state_round_trip():
    task = TspTask(n=6, instance_seed=1, temperatures=(1.0, 0.0))
    chat = ScriptedChat(["<trace>1,2,3,4,5,0</trace>", "<trace>0,1,2,3,4,5</trace>"])
    out = task.step(chat, task.description0, task.instruction0)
    assert out.n_new <= 1 and out.valid and out.objective == tour_length(task.distances, (0, 1, 2, 3, 4, 5))
    state = json.loads(json.dumps(task.state_dict()))
    fresh = TspTask(n=6, instance_seed=1, temperatures=(1.0, 0.0))
    fresh.load_state_dict(state)
    assert fresh.history == task.history
    assert (fresh.metric_history, fresh.score_scale) == (task.metric_history, task.score_scale)
    with pytest.raises(ExpoError, match="state is for task"): LinearRegressionTask().load_state_dict(state)


def test_feedback_index_is_last_lowest_temperature():
    assert LinearRegressionTask().feedback_index == 7
    assert LinearRegressionTask(temperatures=(0.0, 1.0, 0.0, 1.0)).feedback_index == 2
    assert LinearRegressionTask(temperatures=(1.0,) * 8).feedback_index == 7


def test_task_validation_errors():
    with pytest.raises(ExpoError, match="top_k"): LinearRegressionTask(top_k=0)
    with pytest.raises(ExpoError, match="temperatures must be in"): LinearRegressionTask(temperatures=(3.0,))
    with pytest.raises(ExpoError, match="n must be an int"): TspTask(n=3)
    with pytest.raises(TypeError): Task()                                       # abstract
    with pytest.raises(ExpoError, match="temperatures is empty"): TspTask(n=6, temperatures=())


def test_samples_is_the_deprecated_alias_of_temperatures():
    "Old code and old run configs pass the temperatures as `samples`: same task; both at once is an error."
    from expo_nb.config import RunConfig, build_task
    from expo_nb.task_mab import BanditTask
    for cls in (LinearRegressionTask, TspTask, BanditTask):
        assert cls(samples=(1.0, 0.0)).temperatures == cls(temperatures=(1.0, 0.0)).temperatures == (1.0, 0.0)
        with pytest.raises(ExpoError, match="not both"): cls(temperatures=(1.0,), samples=(0.0,))
    old = build_task(RunConfig(samples=3, task_settings={"samples": [1, 1, 0, 0]}))
    assert old.temperatures == (1.0, 1.0, 0.0, 0.0) and old.feedback_index == 3
    assert build_task(RunConfig(samples=3)).temperatures == (1.0, 1.0, 0.0)
