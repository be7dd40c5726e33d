"""Edge cases of the bandit task (expo_nb.task_mab): parser battery, no-raise property, regret by hand, prompt
snapshot, scripted steps."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expo_nb.core import ExemplarSequence, ExpoError
from expo_nb.task_mab import INSTANCES, BanditTask, parse_distribution
from expo_nb.testing import ScriptedChat

HARD = INSTANCES["hard"][0]
EASY = INSTANCES["easy"][0]


@pytest.mark.parametrize("reply, expected", [
    ("blue:1", (1, 0, 0, 0, 0)),
    ("<Answer>blue:0.2,green:0.2,red:0.2,yellow:0.2,purple:0.2</Answer>", (0.2,) * 5),
    ("Let me think. Blue looks good.\n<Answer>\nblue: 0.8,\ngreen: 0.2\n</Answer>\nGood luck!", (0.8, 0.2, 0, 0, 0)),
    ("<ANSWER>BLUE:3;RED:1</ANSWER>", (0.75, 0, 0.25, 0, 0)),              # case, ';', normalisation
    ("<Answer>blue:60%, purple:40%", (0.6, 0, 0, 0, 0.4)),                  # percent, no closing tag
    ("<Answer>blue:0.1</Answer> ... <Answer>green:1</Answer>", (0, 1, 0, 0, 0)),   # last tag wins
    ("<Answer>yellow</Answer>", (0, 0, 0, 1, 0)),                           # bare colour = point mass
    ("blue button: .5, red button = 0.5", (0.5, 0, 0.5, 0, 0)),
    ("blue:1e-3,green:1e-3", (0.5, 0.5, 0, 0, 0)),
])
def test_parser_accepts(reply, expected):
    parsed = parse_distribution(reply, HARD)
    assert parsed.valid, parsed.reason
    np.testing.assert_allclose(parsed.action, expected, atol=1e-12)
    assert math.isclose(sum(parsed.action), 1.0)


@pytest.mark.parametrize("reply, reason", [
    ("", "empty reply"),
    ("   \n", "empty reply"),
    ("I press the best one", "no color:probability pair"),
    ("orange:1", "unknown button 'orange'"),
    ("blue:0.5,Blue:0.5", "given twice"),
    ("blue:nan", "not a finite number"),
    ("blue:inf,red:1", "not a finite number"),
    ("blue:1e400", "not a finite number"),
    ("blue:-1,red:2", "not a finite number >= 0"),
    ("blue:0,green:0", "cannot normalize"),
    ("blue:1e308,green:1e308", "cannot normalize"),                          # the sum overflows
    ("step: 1, round: 2", "no button of"),
])
def test_parser_rejects_with_reason(reply, reason):
    parsed = parse_distribution(reply, HARD)
    assert not parsed.valid and reason in parsed.reason


def test_parser_instance_colours_and_tag_rule():
    assert not parse_distribution("purple:1", EASY).valid                   # purple is not an easy-instance button
    assert parse_distribution("blue:1", HARD, require_tag=True).reason == "no <Answer>...</Answer> tag in the reply"
    task = BanditTask("hard", reasoning=True)
    assert not task.parse("Step 1: blue:0.9 looks best so far").valid       # reasoning needs the tag
    assert task.parse("Step 1: blue:0.9 looks best. <Answer>blue:1</Answer>").action == (1.0, 0, 0, 0, 0)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.lists(st.sampled_from(["blue", "red", "orange", ":", ",", "0.5", "-1", "nan", "%",
                                                          "<Answer>", "</Answer>", " ", "1e999", "button", "="]),
                                        max_size=40).map("".join))
def test_parser_never_raises(reply):
    parsed = parse_distribution(reply, HARD)
    if parsed.valid:
        assert len(parsed.action) == 5 and all(p >= 0 for p in parsed.action) and math.isclose(sum(parsed.action), 1.0)
    else:
        assert parsed.reason


def test_parser_long_input_is_fast():
    import time
    start = time.perf_counter()
    parse_distribution("blue:" * 50000 + "<Answer>" * 1000, HARD)
    assert time.perf_counter() - start < 2.0


def _replay(seed, distributions, means):
    "A second implementation of the environment: the same seeded draws, regrets summed by hand."
    rng = np.random.default_rng(seed)
    best, realised, expected, plays = max(means), 0.0, 0.0, []
    for p in distributions:
        p = np.asarray(p, float) / np.sum(p)
        arm = int(rng.choice(len(means), p=p)); reward = float(rng.random() < means[arm])
        realised += best - means[arm]; expected += float(np.dot(p, best - np.asarray(means)))
        plays.append((arm, reward))
    return realised, expected, plays


@pytest.mark.parametrize("instance", ["hard", "easy"])
def test_regret_matches_hand_computation(instance):
    colours, means = INSTANCES[instance]
    answers = [{colours[0]: 0.5, colours[1]: 0.5}, {colours[-1]: 1.0}, {colours[0]: 1.0}, {c: 1.0 for c in colours}]
    replies = ["<Answer>" + ",".join(f"{c}:{p}" for c, p in a.items()) + "</Answer>" for a in answers] * 3
    distributions = [[a.get(c, 0.0) for c in colours] for a in answers] * 3
    task = BanditTask(instance, seed=7)
    chat = ScriptedChat(replies)
    for _ in replies: task.step(chat, task.description0, task.instruction0)
    realised, expected, plays = _replay(7, distributions, means)
    assert [(colours.index(e.action), e.objective) for e in task.history] == plays
    assert task.metric() == pytest.approx(realised) and task.expected_regret[-1] == pytest.approx(expected)
    gap = means[0] - means[1]
    # the point mass on the last colour costs exactly one gap each time, blue nothing
    last_only = [0.0] * (len(colours) - 1) + [1.0]
    assert sum(1 for e, d in zip(task.history, distributions) if d == last_only and e.action == colours[-1]) == 3
    per_round = 0.5 * gap + gap + 0 + gap * (len(colours) - 1) / len(colours)
    assert task.expected_regret[-1] == pytest.approx(3 * per_round)


def test_prompt_score_uses_estimates_before_the_step():
    task = BanditTask("hard", seed=3)
    chat = ScriptedChat(["blue:1"] * 4 + ["<Answer>blue:0.25,red:0.75</Answer>"])
    for _ in range(4): task.step(chat, task.description0, task.instruction0)
    blue_mean = sum(e.objective for e in task.history) / 4
    outcome = task.step(chat, task.description0, task.instruction0)
    assert outcome.score == pytest.approx(0.25 * blue_mean + 0.75 * 0.0)     # red never pressed before: estimate 0
    assert 0.0 <= outcome.score <= 1.0


def test_summary_rows_and_rendered_prompt_snapshot():
    task = BanditTask("easy", seed=0)
    chat = ScriptedChat(["blue:1", "blue:1", "green:1"])
    for _ in range(3): task.step(chat, task.description0, task.instruction0)
    rewards = {c: [e.objective for e in task.history if e.action == c] for c in EASY}
    pool = task.es_pool()
    assert [e.action for e in pool] == list(EASY)
    assert [int(e.score) for e in pool] == [2, 1, 0, 0]
    assert [e.objective for e in pool] == [np.mean(rewards["blue"]), np.mean(rewards["green"]), 0.0, 0.0]
    messages = task.messages(task.meta_prompt(task.description0, task.instruction0))
    assert messages[1]["content"] == (
        "So far you have played 3 times with your past choices and rewards summarized as follows:\n"
        f"blue button: pressed 2 times with average reward {np.mean(rewards['blue']):.2f}\n"
        f"green button: pressed 1 times with average reward {rewards['green'][0]:.2f}\n"
        "red button: pressed 0 times\n"
        "yellow button: pressed 0 times\n\n"
        "Which button will you press next? Whatever you write first, you MUST give your final answer inside the tags "
        "<Answer></Answer>, as color:probability pairs separated by commas, "
        "e.g. <Answer>blue:0.25,green:0.25,red:0.25,yellow:0.25</Answer>.")
    assert messages[0]["content"] == task.description0.text + "\n\n" + task.instruction0.text
    assert task.description0.text == (
        "You are a bandit algorithm in a room with 4 buttons, coloured blue, green, red and yellow. "
        "Pressing a button gives a random reward: 1 with a fixed probability that belongs to that button, "
        "0 otherwise. You do not know these probabilities, and they may differ from button to button. "
        "The game lasts 100 time steps, and at each step you press exactly one button. "
        "Your goal is to collect as much reward as possible over the 100 steps.")


def test_rotation_selector_wiring_and_rephrased_instruction():
    from expo_nb.expo_es import RotationEsSelector
    task = BanditTask("hard", seed=0)
    es = RotationEsSelector(n_arms=5, eta=10, seed=0, epochs=2)
    chat = ScriptedChat(["<Answer>blue:0.6,green:0.4</Answer>"])
    for t in range(3):
        seq = es.ask(task.es_pool())
        outcome = task.step(chat, "A rephrased D.", "Just answer.", exemplars=seq, tag=f"step-{t}")
        es.tell(seq, outcome.score)
        first_row = chat.requests[-1].messages[1]["content"].splitlines()[1]
        assert first_row.startswith(seq[0].action + " button")
        assert "<Answer></Answer>" in chat.requests[-1].messages[1]["content"]   # fixed question survives any I
    assert chat.requests[-1].messages[0]["content"] == "A rephrased D.\n\nJust answer."
    assert {r.tag for r in chat.requests} == {"step-0", "step-1", "step-2"}


def test_several_samples_play_the_temperature_zero_one():
    task = BanditTask("hard", seed=0, temperatures=(1.0, 1.0, 0.0))
    outcome = task.step(ScriptedChat(["green:1", "orange:1", "blue:1"]), task.description0, task.instruction0)
    assert task.history[-1].action == "blue" and outcome.n_valid == 2 and outcome.n_samples == 3 and outcome.valid


def test_validation_errors():
    with pytest.raises(ExpoError, match="unknown instance 'medium'; choose one of"): BanditTask("medium")
    with pytest.raises(ExpoError, match="horizon must be"): BanditTask(horizon=-3)
    with pytest.raises(ExpoError, match="unknown invalid 'retry'; choose one of"): BanditTask(invalid="retry")
    with pytest.raises(ExpoError, match="temperatures is empty"): BanditTask(temperatures=())
    task = BanditTask("hard", horizon=1)
    task.step(ScriptedChat(["blue:1"]), task.description0, task.instruction0)
    with pytest.raises(ExpoError, match="all 1 time steps are played"):
        task.step(ScriptedChat(["blue:1"]), task.description0, task.instruction0)
    with pytest.raises(ExpoError, match="per-button rows"):
        task.meta_prompt(task.description0, task.instruction0, ExemplarSequence(tuple(task.es_pool()[:2])))


def test_state_dict_round_trip_is_json_and_continues_identically():
    task = BanditTask("hard", seed=5)
    chat = ScriptedChat(["blue:0.5,green:0.3,red:0.2"])
    for _ in range(4): task.step(chat, task.description0, task.instruction0)
    copy = BanditTask("hard", seed=999)
    copy.load_state_dict(json.loads(json.dumps(task.state_dict())))
    for _ in range(10):
        ours = task.step(chat, task.description0, task.instruction0)
        assert ours.metric == copy.step(chat, copy.description0, copy.instruction0).metric
    assert task.history == copy.history and task.expected_regret == copy.expected_regret


def test_runner_registry_builds_it():
    from expo_nb.runner import make_task
    task = make_task("bandit", instance="easy", seed=1)
    assert isinstance(task, BanditTask) and task.colours == EASY


def test_environment_and_agent_draws_are_separate_streams():
    "Same environment seed, different agent seeds: the rewards of a button stay the environment's, the draws differ."
    from expo_nb.runner import RunConfig, build_task
    from expo_nb.testing import ScriptedChat
    uniform = "<Answer>blue:0.2,green:0.2,red:0.2,yellow:0.2,purple:0.2</Answer>"
    plays = []
    for seed in (0, 1, 2):
        config = RunConfig(task="bandit", task_settings={"instance": "hard"}, samples=1, seed=seed, env_seed=0)
        task = build_task(config)
        for step in range(12): task.step(ScriptedChat([uniform]), task.description0, task.instruction0, tag=f"s{step}")
        plays.append([e.action for e in task.history])
        state = task.state_dict()
        again = build_task(config)
        again.load_state_dict(state)
        assert again.agent_rng.bit_generator.state == task.agent_rng.bit_generator.state
    assert len({tuple(p) for p in plays}) == 3    # three repetitions in one environment are three samples
