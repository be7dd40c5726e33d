"""MLflow tracking (29_tracking): the tracker mirrors records to a real local SQLite tracking store (no server, no
network) and the MLflow client reads every iteration back; a resume logs nothing twice; without mlflow the package
still imports and the tracker names the extra to install."""
import inspect
import json
import subprocess
import sys

import pytest

from expo_nb.core import ExpoError
from expo_nb.tracking import MlflowTracker, flat_params, make_tracker, numeric_fields

FIELDS = ("metric", "score", "objective", "entropy", "top_probability", "distinct_arms", "prompt_tokens", "wall_s")


def fake_records(n: int) -> list[dict]:
    "Records shaped like the runner's, with a different value in every numeric field and some non-numeric ones."
    return [{"iteration": t, "arm": t % 4, "metric": 30.0 / (t + 1), "score": -t / 7, "objective": 1.5 * t,
             "entropy": 2.0 - t / 10, "top_probability": 0.2 + t / 20, "distinct_arms": min(t + 1, 4),
             "prediction_spread_nats": None, "prompt_tokens": 100 + t, "completion_tokens": 9, "valid": t % 2 == 0,
             "feedback": "text", "wall_s": 0.25 * t} for t in range(n)]


def test_missing_mlflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)            # `import mlflow` now fails as if not installed
    for make in (MlflowTracker, lambda: make_tracker("mlflow")):
        with pytest.raises(ExpoError, match=r"tracking extra: pip install 'expo_nb\[tracking\]'"): make()


def test_package_imports_without_mlflow(tmp_path):
    code = "import sys; sys.modules['mlflow'] = None; import expo_nb.tracking, expo_nb.runner; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_unknown_tracker_lists_the_valid_ones():
    with pytest.raises(ExpoError, match="unknown tracker 'wandb'; use one of: mlflow, mlflow:URI"):
        make_tracker("wandb")


def test_fields_and_params():
    assert numeric_fields({"a": 1, "b": None, "c": "x", "d": [1], "e": False}) == {"a": 1.0, "e": 0.0}
    params = flat_params({"task_settings": {"w": 2, "inner": {"x": None}}, "text": "t" * 900})
    assert params == {"task_settings.w": "2", "task_settings.inner.x": "null", "text": "t" * 497 + "..."}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "One SQLite tracking store for the module's tests (creating its tables takes seconds)."
    pytest.importorskip("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'tracking.db'}"


def client_of(uri):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=uri)


def history(uri, run_id, key):
    return [(point.step, point.value) for point in client_of(uri).get_metric_history(run_id, key)]


def finish_files(out_dir, summary):
    (out_dir / "config.json").write_text(json.dumps({"task": "linreg"}))
    (out_dir / "summary.json").write_text(json.dumps(summary))


def test_every_iteration_is_read_back(store, tmp_path):
    records = fake_records(6)
    tracker = MlflowTracker(store, experiment="test-read-back")
    config = {"task": "linreg", "task_settings": {"w": 2, "b": 30}, "cache": None}
    tracker.start(config, tmp_path, [])
    for record in records: tracker.record(record)
    summary = {"iterations": 6, "final_metric": records[-1]["metric"], "prompt_tokens": 615, "top_arms": [{"arm": 1}],
               "tokens_by_model": {"http://127.0.0.1:8000/v1#agent": {"prompt_tokens": 615, "completion_tokens": 54}}}
    finish_files(tmp_path, summary)
    tracker.finish(summary, tmp_path)

    run_id = json.loads((tmp_path / "mlflow_run.json").read_text())["run_id"]
    assert run_id == tracker.run_id
    for key in FIELDS + ("iteration", "valid"):
        assert history(store, run_id, key) == [(r["iteration"], float(r[key])) for r in records], key
    run = client_of(store).get_run(run_id)
    assert "feedback" not in run.data.metrics and "prediction_spread_nats" not in run.data.metrics
    assert run.data.params == {"task": "linreg", "task_settings.w": "2", "task_settings.b": "30", "cache": "null"}
    assert run.data.metrics["summary.final_metric"] == 5.0 and run.data.metrics["summary.prompt_tokens"] == 615
    assert run.data.metrics["summary.tokens_by_model.http:__127.0.0.1:8000_v1_agent.completion_tokens"] == 54
    assert run.info.status == "FINISHED" and run.info.run_name == tmp_path.name
    assert sorted(a.path for a in client_of(store).list_artifacts(run_id)) == ["config.json", "summary.json"]


def test_resumed_tracker_logs_only_the_rest(store, tmp_path):
    records = fake_records(5)
    first = MlflowTracker(store, experiment="test-resume")
    first.start({"task": "linreg"}, tmp_path, [])
    for record in records[:2]: first.record(record)                  # the process dies here

    resumed = MlflowTracker(store, experiment="test-resume")         # a new object on the same directory
    resumed.start({"task": "linreg"}, tmp_path, records[:2])
    assert resumed.run_id == first.run_id and resumed.mirrored == 2
    assert history(store, first.run_id, "metric") == [(t, records[t]["metric"]) for t in range(2)]
    for record in records[2:]: resumed.record(record)
    resumed.record(records[1])                                       # an old record again: skipped
    finish_files(tmp_path, {"iterations": 5})
    resumed.finish({"iterations": 5}, tmp_path)
    assert history(store, first.run_id, "metric") == [(r["iteration"], r["metric"]) for r in records]


def test_start_catches_up_records_logged_while_tracking_failed(store, tmp_path):
    records = fake_records(5)
    first = MlflowTracker(store, experiment="test-resume")
    first.start(None, tmp_path, [])
    first.record(records[0])
    again = MlflowTracker(store, experiment="test-resume")
    again.start(None, tmp_path, records[:4])                          # iterations 1-3 never reached MLflow
    assert again.mirrored == 4
    assert history(store, first.run_id, "score") == [(r["iteration"], r["score"]) for r in records[:4]]


def test_record_before_start_is_a_clear_error(store):
    with pytest.raises(ExpoError, match="call start"): MlflowTracker(store).record(fake_records(1)[0])


def test_default_store_is_sqlite_in_the_run_directory(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracker = make_tracker("mlflow")
    tracker.start({"task": "linreg"}, tmp_path, fake_records(2))
    finish_files(tmp_path, {"iterations": 2})
    tracker.finish({"iterations": 2}, tmp_path)
    assert (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    assert (tmp_path / "mlartifacts").is_dir()
    uri = f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert history(uri, tracker.run_id, "metric") == [(0, 30.0), (1, 15.0)]


def test_environment_variable_names_the_store(store, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tracker = make_tracker("mlflow")
    tracker.start(None, tmp_path, fake_records(1))
    assert not (tmp_path / "mlflow.db").exists()
    assert history(store, tracker.run_id, "metric") == [(0, 30.0)]
    assert make_tracker(f"mlflow:{store}").tracking_uri == store


def test_a_real_run_is_mirrored(store, tmp_path, recwarn):
    from expo_nb.embed import HashingEmbedder
    from expo_nb.rundir import read_log
    from expo_nb.runner import RunConfig, run
    from expo_nb.testing import ScriptedChat
    if "trackers" not in inspect.signature(run).parameters: pytest.skip("the runner has no trackers hook yet")
    variants = tmp_path / "v.json"
    variants.write_text(json.dumps({"descriptions": ["Task text A.", "Task text B."],
                                    "instructions": ["Instruction one.", "Instruction two."]}))
    config = RunConfig(iterations=3, samples=2, domain=str(variants), embedder="hashing:16", llm="scripted")
    tracker = MlflowTracker(store, experiment="test-real-run")
    run(config, tmp_path / "run", chat=ScriptedChat(lambda r: "[3, 5]"), embedder=HashingEmbedder(16),
        progress=False, trackers=[tracker])
    records = read_log(tmp_path / "run" / "log.jsonl")
    assert history(store, tracker.run_id, "metric") == [(r["iteration"], r["metric"]) for r in records]
    assert len(records) == 3
    assert not [w for w in recwarn if str(w.message).startswith("tracking:")]   # the tracker never failed
    run_info = client_of(store).get_run(tracker.run_id)
    assert run_info.info.status == "FINISHED"
    artifacts = {a.path for a in client_of(store).list_artifacts(tracker.run_id)}
    assert {"config.json", "summary.json", "metric.png"} <= artifacts
    assert run_info.data.metrics["summary.tokens_by_model.scripted.prompt_tokens"] == sum(
        r["prompt_tokens"] for r in records)


def test_a_run_stopped_at_a_limit_is_killed_then_finished_on_resume(store, tmp_path):
    from expo_nb.embed import HashingEmbedder
    from expo_nb.runner import RunConfig, RunLimits, RunStopped, run
    from expo_nb.testing import ScriptedChat
    variants = tmp_path / "v.json"
    variants.write_text(json.dumps({"descriptions": ["Task text A.", "Task text B."],
                                    "instructions": ["Instruction one.", "Instruction two."]}))
    config = RunConfig(iterations=3, samples=2, domain=str(variants), embedder="hashing:16", llm="scripted")

    def go(limits, tracker):
        return run(config, tmp_path / "run", chat=ScriptedChat(lambda r: "[3, 5]"), embedder=HashingEmbedder(16),
                   progress=False, limits=limits, trackers=[tracker])

    first = MlflowTracker(store, experiment="test-stopped-run")
    with pytest.raises(RunStopped, match="token budget reached"):
        go(RunLimits(max_tokens_total=1), first)
    stopped = client_of(store).get_run(first.run_id)
    assert stopped.info.status == "KILLED"
    assert stopped.data.tags["expo_nb.stop_reason"].startswith("token budget reached")
    resumed = MlflowTracker(store, experiment="test-stopped-run")
    go(None, resumed)
    assert resumed.run_id == first.run_id and client_of(store).get_run(first.run_id).info.status == "FINISHED"
    assert [step for step, _ in history(store, first.run_id, "metric")] == [0, 1, 2]   # each iteration once
