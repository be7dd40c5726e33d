"""The ask/tell optimizer (27_optimizer) outside the notebook: one-line errors for bad arguments, a process killed
with SIGKILL at random points resumes to the same sequence of arms as an uninterrupted run, failures and batches are
logged as documented, and a run directory refuses a second writer and other settings."""
import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from expo_nb.core import ExpoError
from expo_nb.embed import HashingEmbedder
from expo_nb.optimizer import Prompt, PromptOptimizer, optimize
from expo_nb.rundir import read_log
from expo_nb.testing import ScriptedChat

VARIANTS = {"descriptions": ["You guess a number.", "You play a guessing game.", "Find the hidden number."],
            "instructions": ["Reply with a guess.", "Reply with one integer.", "Give your next guess only."]}

DRIVER = textwrap.dedent('''
    import sys
    from expo_nb.optimizer import PromptOptimizer

    VARIANTS = {variants!r}

    def score_of(iteration, arm):
        "A pure function of (iteration, arm): a rerun scores exactly as the killed run did."
        return ((arm * 37 + iteration * 11) % 17) / 17 + (arm % 3 == 2)

    def history_of(records):
        "The user's own history, rebuilt from the told records (EXPO-ES chooses its exemplars from it)."
        return [(f"step {{r['iteration']}}: arm {{r['arm']}}", r["score"]) for r in records]

    def main(run_dir, iterations, method="expo"):
        es = method == "expo-es"
        with PromptOptimizer(VARIANTS["descriptions"][0], VARIANTS["instructions"][0], variants=VARIANTS,
                             embedder="hashing:32", eta=5.0, seed=3, run_dir=run_dir, method=method,
                             **({{"n_exemplars": 3}} if es else {{}})) as optimizer:
            while optimizer.iteration < iterations:
                prompt = optimizer.ask(history_of(optimizer.records) if es else None)
                samples = [score_of(prompt.iteration, prompt.arm), 0.5]
                if prompt.iteration % 4 == 3: optimizer.tell_failure(prompt, "scripted failure")
                else: optimizer.tell(prompt, samples, info={{"i": prompt.iteration}})
                print(prompt.iteration, prompt.arm, flush=True)
            return [record["arm"] for record in optimizer.records]

    if __name__ == "__main__":
        main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
''').format(variants=VARIANTS)


def small(**options):
    "An optimizer over VARIANTS with a hashing embedder (no model, no network)."
    return PromptOptimizer(VARIANTS["descriptions"][0], VARIANTS["instructions"][0],
                           **{"variants": VARIANTS, "embedder": HashingEmbedder(32), **options})


@pytest.mark.parametrize("options, message", [
    (dict(method="opro-enhanced"), "PromptOptimizer runs"),
    (dict(method="expo-es", n_exemplars=0), "n_exemplars must be an integer in [1, 30]"),
    (dict(method="nope"), "unknown method"),
    (dict(eta=0), "eta must be a positive"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(k_instructions=1.5), "k_instructions must be an integer"),
    (dict(rephrase_style="loud"), "rephrase_style"),
    (dict(failure_score=float("nan")), "failure_score must be"),
    (dict(variants=["only one list"]), "a pair of lists"),
    (dict(variants=(["a", "A "], [])), "duplicates"),
    (dict(embedder="nonsense"), "unknown embedder spec"),
    (dict(estimator={"hidden": 4}), "estimator must be an EstimatorConfig"),
])
def test_bad_arguments_give_one_line_errors(options, message):
    with pytest.raises(ExpoError) as error:
        PromptOptimizer(VARIANTS["descriptions"][0], VARIANTS["instructions"][0],
                        **{"variants": VARIANTS, "embedder": HashingEmbedder(8), **options})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_tells_are_refused_and_change_nothing():
    optimizer = small()
    prompt = optimizer.ask()
    for bad in (lambda: optimizer.tell("arm 0", 1.0), lambda: optimizer.tell(prompt, None),
                lambda: optimizer.tell(prompt, []), lambda: optimizer.tell(prompt, 1.0, info={1, 2}),
                lambda: optimizer.tell(Prompt(5, 0, "D", "I"), 1.0), lambda: optimizer.tell_batch(prompt, 2.0)):
        with pytest.raises(ExpoError): bad()
    assert optimizer.iteration == 0 and optimizer.ask() is prompt
    with pytest.raises(ExpoError, match="positive integer|iterations must be"):
        optimize(len, float, "D", "I", iterations=0, variants=VARIANTS, embedder="hashing:8")


def test_batch_tell_learns_the_mean_and_logs_the_samples(tmp_path):
    with small(run_dir=tmp_path) as optimizer:
        optimizer.tell_batch(optimizer.ask(), [1.0, 2.0, 6.0], info={"episodes": 3})
        optimizer.tell(optimizer.ask(), [0.5])
        assert optimizer.selector.history[0][1] == 3.0
    records = read_log(tmp_path / "log.jsonl")
    assert [(r["score"], r["scores"]) for r in records] == [(3.0, [1.0, 2.0, 6.0]), (0.5, [0.5])]
    assert records[0]["info"] == {"episodes": 3}


def test_failures_are_recorded_never_raised(tmp_path):
    calls = iter(range(100))

    def agent(prompt_text):
        if next(calls) % 3 == 1: raise TimeoutError("environment timed out")
        return prompt_text

    def score(output):
        return "not a number" if "guessing game" in output else len(output) / 100

    result = optimize(agent, score, VARIANTS["descriptions"][0], VARIANTS["instructions"][0], iterations=9,
                      variants=VARIANTS, embedder="hashing:16", run_dir=tmp_path, failure_score=-1.0)
    records = read_log(tmp_path / "log.jsonl")
    assert records == result.history and len(records) == 9
    failed = [r for r in records if r["failed"]]
    assert any(r["reason"] == "TimeoutError: environment timed out" for r in failed)
    assert all(r["score"] == -1.0 and r["reason"] for r in failed)
    assert result.best is not None and result.best_score > -1.0
    again = optimize(agent, score, VARIANTS["descriptions"][0], VARIANTS["instructions"][0], iterations=9,
                     variants=VARIANTS, embedder="hashing:16", run_dir=tmp_path, failure_score=-1.0)
    assert again.history == records   # already at 9 iterations: nothing is asked again


def test_default_failure_score_is_the_worst_told_so_far():
    optimizer = small()
    optimizer.tell(optimizer.ask(), 0.7)
    optimizer.tell(optimizer.ask(), -0.2)
    assert optimizer.tell_failure(optimizer.ask(), "parse error")["score"] == -0.2
    assert optimizer.tell_failure(optimizer.ask(), "parse error", score=-9)["score"] == -9.0


def run_driver(tmp_path, run_dir, iterations, kill_after=None, method="expo"):
    "Run the driver script; with `kill_after` lines printed, SIGKILL it after a random few milliseconds."
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), str(iterations), method],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    if kill_after is None:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        return
    for _ in range(kill_after):
        if not proc.stdout.readline(): break
    time.sleep(random.uniform(0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("method", ["expo", "expo-es"])
def test_sigkill_at_random_points_resumes_to_the_same_arms(tmp_path, method):
    namespace = {"__name__": "driver"}
    exec(DRIVER, namespace)
    straight = namespace["main"](tmp_path / "straight", 14, method)
    random.seed(0)
    for _ in range(3):
        run_driver(tmp_path, tmp_path / "killed", 14, kill_after=random.randint(1, 4), method=method)
    run_driver(tmp_path, tmp_path / "killed", 14, method=method)
    records = read_log(tmp_path / "killed" / "log.jsonl")
    assert [r["arm"] for r in records] == straight
    assert records == read_log(tmp_path / "straight" / "log.jsonl")   # with EXPO-ES: the same exemplars too
    assert len(set(straight)) > 1   # the arms really move, so the comparison means something
    if method == "expo-es":
        shown = [tuple(e[0] for e in r["exemplars"]) for r in records]
        assert len(shown[-1]) == 3 and len(set(shown[4:])) > 1   # exemplars chosen, and not always the same


def test_crash_between_log_and_checkpoint_replays_the_logged_tell(tmp_path):
    with small(run_dir=tmp_path, seed=2) as optimizer:
        for _ in range(3): optimizer.tell(optimizer.ask(), optimizer.ask().arm / 9)
        stale = (tmp_path / "checkpoint.json").read_bytes()
        optimizer.tell(optimizer.ask(), 0.3)
        expected = optimizer.ask().arm
    (tmp_path / "checkpoint.json").write_bytes(stale)   # the checkpoint of the last tell never reached the disk
    with small(run_dir=tmp_path, seed=2) as optimizer:
        assert optimizer.iteration == 4 and optimizer.records[-1]["score"] == 0.3
        assert optimizer.ask().arm == expected


def test_an_edited_log_is_refused(tmp_path):
    with small(run_dir=tmp_path) as optimizer:
        for _ in range(2): optimizer.tell(optimizer.ask(), 1.0)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    record = json.loads(lines[0]); record["arm"] = 8
    (tmp_path / "log.jsonl").write_text("\n".join([json.dumps(record), lines[1]]) + "\n")
    with pytest.raises(ExpoError, match="the log was edited"):
        small(run_dir=tmp_path)


def test_run_dir_refuses_a_second_writer_and_other_settings(tmp_path):
    with small(run_dir=tmp_path) as optimizer:
        optimizer.tell(optimizer.ask(), 1.0)
        with pytest.raises(ExpoError, match="close\\(\\) that one first"):
            small(run_dir=tmp_path)
        probe = (f"from expo_nb.rundir import run_lock\nwith run_lock({str(tmp_path)!r}): pass")
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert "in use by another run" in proc.stderr
    with pytest.raises(ExpoError, match="is closed"):   # a closed optimizer no longer writes the directory
        optimizer.tell(optimizer.ask(), 1.0)
    with pytest.raises(ExpoError, match="holds a run with other eta"):
        small(run_dir=tmp_path, eta=3.0)
    with small(run_dir=tmp_path) as optimizer:   # a refused open released the directory
        assert optimizer.iteration == 1


def test_the_domain_is_built_once_and_reopening_needs_no_rephraser(tmp_path):
    rephraser = ScriptedChat(lambda request: f"Rewording {request.sample_index} of the text.")

    def refuse(request):
        raise AssertionError("the rephraser was called on reopening")

    options = dict(k_descriptions=2, k_instructions=3, embedder=HashingEmbedder(16), run_dir=tmp_path)
    with PromptOptimizer("Guess the number.", "Reply with a guess.", rephraser=rephraser, **options) as optimizer:
        assert optimizer.domain.shape == (3, 4) and len(rephraser.requests) == 5
        optimizer.tell(optimizer.ask(), 0.1)
    with PromptOptimizer("Guess the number.", "Reply with a guess.", rephraser=ScriptedChat(refuse),
                         **options) as optimizer:
        assert optimizer.domain.shape == (3, 4) and optimizer.iteration == 1
    assert (tmp_path / "domain" / "domain.json").exists()


def test_methods_without_exemplars_run():
    for method, shape in (("random", (3, 3)), ("opro", (3, 3)), ("expo-i-only", (1, 3)), ("neuralucb", (3, 3))):
        optimizer = small(method=method)
        for _ in range(3): optimizer.tell(optimizer.ask(), 0.5)
        assert optimizer.domain.shape == shape and optimizer.iteration == 3
        if method == "opro": assert {r["arm"] for r in optimizer.records} == {0}


def test_variants_from_a_file_are_stored_as_texts(tmp_path):
    path = tmp_path / "variants.json"
    path.write_text(json.dumps({"descriptions": VARIANTS["descriptions"][1:], "instructions": ["Say a number."]}))
    with small(run_dir=tmp_path / "run", variants=path) as optimizer:
        assert optimizer.domain.shape == (3, 2)
        optimizer.tell(optimizer.ask(), 1.0)
    path.write_text(json.dumps({"descriptions": ["Guess."], "instructions": ["Say one number."]}))   # changed
    with pytest.raises(ExpoError, match="holds a run with other variants"):
        small(run_dir=tmp_path / "run", variants=str(path))


def test_expo_es_needs_a_history_and_logs_what_a_replay_needs(tmp_path):
    with small(method="expo-es", n_exemplars=2, run_dir=tmp_path) as optimizer:
        with pytest.raises(ExpoError, match="chooses from your history"):
            optimizer.ask()
        history = [("a", 0.1), ("b", 0.7), ("c", 0.4), ("d", 0.9)]
        for step in range(4):
            prompt = optimizer.ask(history)
            assert len(prompt.exemplars) == 2 and set(prompt.exemplars) <= {"a", "b", "c", "d"}
            record = optimizer.tell(prompt, 0.2 * step)
            assert record["history"] == [["d", 0.9], ["b", 0.7], ["c", 0.4], ["a", 0.1]]
            assert [e[0] for e in record["exemplars"]] == list(prompt.exemplars)
        stale = (tmp_path / "checkpoint.json").read_bytes()
        prompt = optimizer.ask(history)
        optimizer.tell(prompt, 0.5)
        expected = optimizer.ask(history)
    (tmp_path / "checkpoint.json").write_bytes(stale)   # the last tell is replayed from the log alone
    with small(method="expo-es", n_exemplars=2, run_dir=tmp_path) as optimizer:
        assert optimizer.iteration == 5 and optimizer.ask(history) == expected
        assert optimizer.summary()["exemplars"]["records"] == 5   # the exemplar selector learned every tell


def test_methods_that_choose_no_exemplars_refuse_a_history():
    with pytest.raises(ExpoError, match="does not choose exemplars"):
        small().ask([("a", 1.0)])


def test_an_edited_expo_es_history_is_refused_with_the_log_named(tmp_path):
    with small(method="expo-es", n_exemplars=2, run_dir=tmp_path) as optimizer:
        for _ in range(2): optimizer.tell(optimizer.ask([("a", 0.1), ("b", 0.7), ("c", 0.4)]), 0.5)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    record = json.loads(lines[1]); record["history"] = "not a history"
    (tmp_path / "log.jsonl").write_text("\n".join([lines[0], json.dumps(record)]) + "\n")
    (tmp_path / "checkpoint.json").unlink()   # the log alone is replayed
    with pytest.raises(ExpoError, match="log.jsonl at iteration 1 cannot be replayed .*the log was edited"):
        small(method="expo-es", n_exemplars=2, run_dir=tmp_path)
