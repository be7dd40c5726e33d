"Runner, log recovery, end-to-end runs of every method on scripted agents, SIGKILL resume, sweeps and CLI errors."
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.core import ExpoError
from expo_nb.runner import PRESETS, RunConfig, append_record, read_log


def test_every_preset_round_trips():
    for name, config in PRESETS.items():
        assert RunConfig.from_json(config.to_json()) == config, name
        assert config.validate() is config


def test_damaged_last_line_is_cut_and_nothing_earlier_lost(tmp_path):
    log = tmp_path / "log.jsonl"
    for i in range(5): append_record(log, {"iteration": i})
    before = log.read_bytes()
    for tail in (b'{"itera', b'{"iteration": 5}', b'\x00\x00garbage'):
        with open(log, "ab") as handle: handle.write(tail)
        assert [r["iteration"] for r in read_log(log)] == list(range(5))
        assert log.read_bytes() == before


def test_truncation_at_every_byte_keeps_complete_records(tmp_path):
    log = tmp_path / "log.jsonl"
    for i in range(3): append_record(log, {"iteration": i, "text": "x" * i})
    data = log.read_bytes()
    line_ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    for cut in range(len(data) + 1):
        log.write_bytes(data[:cut])
        expected = sum(end <= cut for end in line_ends)
        assert len(read_log(log)) == expected, cut


def test_cli_errors_are_one_line(tmp_path):
    cli = CliRunner()
    for args, text in ((["run", "nope"], "unknown preset"),
                       (["run", "linreg-quick", "--method", "x", "--out", str(tmp_path)], "unknown method"),
                       (["run", "linreg-quick", "--input-projection", "pca", "--out", str(tmp_path)],
                        "unknown input_projection 'pca'"),
                       (["show", str(tmp_path / "missing")], "cannot read run directory")):
        result = cli.invoke(app, args)
        assert result.exit_code == 2 and text in result.output and "Traceback" not in result.output


def test_console_script_bad_preset():
    result = subprocess.run([sys.executable, "-c", "from expo_nb.cli import main; main()", "run", "nope"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: unknown preset 'nope'") and "Traceback" not in result.stderr


SCRIPT = r'''
import sys, time
from types import SimpleNamespace
from pathlib import Path
import numpy as np
from expo_nb.core import PromptDomain
from expo_nb.baselines import UniformRandomSelector
from expo_nb.runner import RunConfig, run_loop
class Task:
    def __init__(self): self.calls = 0
    def step(self, chat, description, instruction, exemplars=None, tag=""):
        time.sleep(float(sys.argv[2])); self.calls += 1
        score = (len(str(description)) * 7 + len(str(instruction)) * 3) % 11 + 0.1 * self.calls
        return SimpleNamespace(score=score, objective=-score, metric=score, prompt_tokens=1, completion_tokens=1,
                               cached_calls=0)
    def state_dict(self): return {"calls": self.calls}
    def load_state_dict(self, state): self.calls = state["calls"]
texts = ["a", "bb", "ccc", "dddd"]
domain = PromptDomain(texts, texts, np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), {})
run_loop(RunConfig(method="random", iterations=12, seed=5), Path(sys.argv[1]), Task(), domain, None,
         UniformRandomSelector(domain, seed=5))
'''


def test_sigkill_mid_run_then_resume_gives_identical_records(tmp_path):
    import signal
    import time
    script = tmp_path / "job.py"; script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "whole"), "0"], check=True, env=env, timeout=120)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed"), "0.3"], env=env)
    log = tmp_path / "killed" / "log.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and (not log.exists() or log.read_bytes().count(b"\n") < 3): time.sleep(0.05)
    process.send_signal(signal.SIGKILL); process.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()
    assert 3 <= len(read_log(log)) < 12
    subprocess.run([sys.executable, str(script), str(tmp_path / "killed"), "0"], check=True, env=env, timeout=120)
    strip = lambda rows: [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]
    assert strip(read_log(log)) == strip(read_log(tmp_path / "whole" / "log.jsonl"))
    assert len(read_log(log)) == 12


def _fake_job(config, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(config.to_json())
    for iteration in range(3):
        append_record(out_dir / "log.jsonl", {"iteration": iteration, "metric": config.seed * iteration})


def test_sweep_two_methods_two_seeds_four_runs_and_a_figure(tmp_path):
    from expo_nb.plots import load_runs, plot_metric
    from expo_nb.sweep import sweep
    dirs = sweep("linreg-quick", ["expo", "opro"], [0, 1], tmp_path, job=_fake_job, n_jobs=2)
    assert len(set(dirs)) == 4 and all((d / "config.json").exists() for d in dirs)
    figure = tmp_path / "fig.png"
    plot_metric(load_runs(dirs)).figure.savefig(figure)
    assert figure.stat().st_size > 1000


def test_ray_backend_missing_gives_install_hint(tmp_path, monkeypatch):
    from expo_nb.sweep import sweep
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if it were not installed
    with pytest.raises(ExpoError, match=r"pip install expo_nb\[ray\]"):
        sweep("linreg-quick", ["expo"], [0], tmp_path, job=_fake_job, backend="ray")


AGENTS = r"""
import hashlib, re, time
def linreg_agent(request, delay=0.0):
    "Nudges the last (best) [w, b] pair of the prompt; the step depends on the sample index."
    time.sleep(delay)
    pairs = re.findall(r"w=(-?\d+), b=(-?\d+)", request.messages[-1]["content"])
    w, b = map(int, pairs[-1]) if pairs else (15, 15)
    return f"[{w + 1 + request.sample_index}, {b + 1 + 2 * request.sample_index}]"
def tsp_agent(request, n=6):
    "A permutation that depends on the prompt text and the sample index."
    digest = hashlib.sha256((request.messages[-1]["content"] + str(request.sample_index)).encode()).digest()
    order = sorted(range(n), key=lambda i: digest[i])
    return "<trace>" + ",".join(map(str, order)) + "</trace>"
def bandit_agent(request):
    "Puts most mass on the button with the highest average reward shown, if any."
    return "blue:0.5,green:0.3,red:0.2" if request.sample_index % 2 == 0 else "<Answer>red:0.6,blue:0.4</Answer>"
"""
# The agents are source text because the SIGKILL test's subprocess script (RUN_SCRIPT) runs them too; here they are
# executed once and bound as module-level names (their __module__ is this module, so they pickle by name).
_AGENT_NAMESPACE = {"__name__": __name__}
exec(AGENTS, _AGENT_NAMESPACE)
linreg_agent, tsp_agent, bandit_agent = (_AGENT_NAMESPACE[name]
                                         for name in ("linreg_agent", "tsp_agent", "bandit_agent"))

def _variants(path):
    path.write_text(json.dumps({"descriptions": ["Task text A.", "Task text B, rephrased.", "Task text C."],
                                "instructions": ["Instruction one.", "Instruction two."]}))
    return str(path)

TASKS = {"linreg": ({"w": 2, "b": 30, "top_k": 4}, "linreg_agent"), "tsp": ({"n": 6, "top_k": 4}, "tsp_agent"),
         "bandit": ({"instance": "easy", "horizon": 6}, "bandit_agent")}

@pytest.mark.parametrize("method", ["expo", "expo-es", "opro", "opro-enhanced", "neuralucb", "random",
                                    "expo-d-only", "expo-i-only", "expo-exemplar-input"])
@pytest.mark.parametrize("task", ["linreg", "tsp", "bandit"])
def test_every_method_runs_end_to_end_on_every_task(tmp_path, task, method):
    from expo_nb.core import PromptDomain
    from expo_nb.embed import HashingEmbedder
    from expo_nb.runner import run
    from expo_nb.testing import ScriptedChat
    settings, agent = TASKS[task]
    config = RunConfig(task=task, task_settings=settings, method=method, iterations=6,
                       samples=1 if task == "bandit" else 3, eta=10.0, domain=_variants(tmp_path / "v.json"),
                       llm="scripted", embedder="hashing:16", seed=2)
    chat = ScriptedChat(globals()[agent])
    summary = run(config, tmp_path / "run", chat=chat, embedder=HashingEmbedder(16), progress=False)
    records = read_log(tmp_path / "run" / "log.jsonl")
    assert [r["iteration"] for r in records] == list(range(6)) and summary["iterations"] == 6
    assert len(chat.requests) == 6 * config.samples
    shape = PromptDomain.load(tmp_path / "run" / "domain").shape
    expected = {"opro": (1, 1), "opro-enhanced": (1, 1), "expo-d-only": (3, 1),
                "expo-i-only": (1, 2)}.get(method, (3, 2))
    assert tuple(shape) == expected and tuple(summary["domain_shape"]) == expected
    if method in ("opro", "opro-enhanced"): assert {r["arm"] for r in records} == {0}
    if method == "opro-enhanced":  # the prompt really carries the enhanced description
        from expo_nb.runner import build_task
        enhanced = build_task(config).enhanced_prompt()[0].text
        assert enhanced in " ".join(m["content"] for m in chat.requests[0].messages)
    assert all(np.isfinite(r["score"]) and np.isfinite(r["metric"]) for r in records)
    assert (tmp_path / "run" / "metric.png").stat().st_size > 1000
    if task != "bandit": assert all(records[i + 1]["metric"] <= records[i]["metric"] for i in range(5))


def test_expo_es_really_selects_exemplar_sequences(tmp_path):
    "Once the history exceeds top_k, the exemplar block of the prompt is a sampled candidate, not always the top-k."
    from expo_nb.embed import HashingEmbedder
    from expo_nb.runner import run
    from expo_nb.testing import ScriptedChat
    config = RunConfig(task="linreg", task_settings={"top_k": 3}, method="expo-es", iterations=8, samples=3,
                       domain=_variants(tmp_path / "v.json"), llm="scripted", embedder="hashing:16", eta_es=0.001)
    chat = ScriptedChat(linreg_agent)
    run(config, tmp_path / "run", chat=chat, embedder=HashingEmbedder(16), progress=False)
    values = [[float(v) for v in re.findall(r"value: (-?[0-9.]+)", r.messages[-1]["content"])]
              for r in chat.requests[::3]]
    assert all(len(v) == 3 for v in values)
    # the OPRO heuristic always shows its three best sorted worst to best (descending values); with 5 warm-start
    # records > 3, EXPO-ES samples ordered subsets from iteration 0 on, so some blocks are in another order
    assert not all(v == sorted(v, reverse=True) for v in values), values
    assert len({tuple(v) for v in values}) > 1


RUN_SCRIPT = AGENTS + r"""
import sys, functools, json
from pathlib import Path
from expo_nb.runner import RunConfig, run
from expo_nb.testing import ScriptedChat
from expo_nb.embed import HashingEmbedder
out, delay, method, variants = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
config = RunConfig(task="linreg", task_settings={"top_k": 4}, method=method, iterations=10, samples=3, domain=variants,
                   llm="scripted", embedder="hashing:16", seed=3)
run(config, out, chat=ScriptedChat(functools.partial(linreg_agent, delay=delay)), embedder=HashingEmbedder(16),
    progress=False)
"""

@pytest.mark.parametrize("method", ["expo", "expo-es"])
def test_run_killed_with_sigkill_resumes_to_identical_records(tmp_path, method):
    "The full runner (task, domain, selectors, ES networks) killed mid-way resumes to the uninterrupted result."
    import signal
    import time
    script = tmp_path / "job.py"; script.write_text(RUN_SCRIPT)
    variants = _variants(tmp_path / "v.json")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "whole"), "0", method, variants], check=True, env=env,
                   timeout=300)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed"), "0.15", method, variants],
                               env=env)
    log = tmp_path / "killed" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or log.read_bytes().count(b"\n") < 4): time.sleep(0.02)
    process.send_signal(signal.SIGKILL); process.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()
    assert 4 <= len(read_log(log)) < 10
    subprocess.run([sys.executable, str(script), str(tmp_path / "killed"), "0", method, variants], check=True, env=env,
                   timeout=300)
    strip = lambda rows: [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]
    assert strip(read_log(log)) == strip(read_log(tmp_path / "whole" / "log.jsonl"))
    assert len(read_log(log)) == 10


def test_run_refuses_a_directory_of_another_config(tmp_path):
    from expo_nb.embed import HashingEmbedder
    from expo_nb.runner import run
    from expo_nb.testing import ScriptedChat
    config = RunConfig(iterations=2, samples=2, domain=_variants(tmp_path / "v.json"), llm="scripted",
                       embedder="hashing:16")
    run(config, tmp_path / "run", chat=ScriptedChat(linreg_agent), embedder=HashingEmbedder(16), progress=False)
    with pytest.raises(ExpoError, match="different config"):
        run(RunConfig(**{**json.loads(config.to_json()), "seed": 9}), tmp_path / "run", progress=False)


def test_cli_run_show_plot_and_missing_key(tmp_path):
    cli = CliRunner()
    variants = _variants(tmp_path / "v.json")
    result = cli.invoke(app, ["run", "bandit-easy-quick", "--out", str(tmp_path / "b"), "--llm", "scripted",
                              "--embedder", "hashing:8", "--domain", variants, "--iterations", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "finished 3 iterations of expo on bandit" in result.output
    result = cli.invoke(app, ["show", str(tmp_path / "b")])
    assert (result.exit_code == 0 and "3/3 iterations logged" in result.output
            and "finished: final metric" in result.output)
    result = cli.invoke(app, ["plot", str(tmp_path / "b"), "-o", str(tmp_path / "f.png")])
    assert result.exit_code == 0 and (tmp_path / "f.png").stat().st_size > 1000
    for args in (["run", "linreg-quick", "--out", str(tmp_path / "k"), "--llm", "openai:gpt-4o-mini"],
                 ["run", "linreg-quick", "--out", str(tmp_path / "k"), "--embedder", "openai:text-embedding-3-large"],
                 ["domain", "linreg-quick", "--out", str(tmp_path / "k"), "--llm", "openai:gpt-4o-mini"]):
        result = cli.invoke(app, args)
        assert result.exit_code == 2 and "needs the OPENAI_API_KEY environment variable" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "k").exists()
    (tmp_path / "broken").mkdir(); (tmp_path / "broken" / "config.json").write_text("{oops")
    result = cli.invoke(app, ["show", str(tmp_path / "broken")])
    assert result.exit_code == 2 and "bad config.json" in result.output


def test_default_sweep_job_runs_the_real_runner(tmp_path):
    "The default job of `sweep` is runner.run: 2 methods x 2 seeds on the scripted echo model, 4 finished runs."
    from expo_nb.sweep import sweep
    overrides = dict(domain=_variants(tmp_path / "v.json"), llm="scripted", embedder="hashing:8", iterations=2,
                     samples=2, cache=str(tmp_path / "shared.sqlite"))
    dirs = sweep("linreg-quick", ["expo", "random"], [0, 1], tmp_path / "sweep", overrides=overrides, n_jobs=2)
    assert len(dirs) == 4 and all((d / "summary.json").exists() for d in dirs)
    assert all(json.loads((d / "config.json").read_text())["cache"] == str(tmp_path / "shared.sqlite") for d in dirs)



def test_sweep_on_a_local_ray_instance(tmp_path):
    "backend='ray': 2 methods x 2 seeds of the real runner as Ray tasks on a local instance (ray is a dev extra)."
    ray = pytest.importorskip("ray")
    from expo_nb.sweep import sweep
    try: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as error: pytest.skip(f"a local Ray instance cannot start on this machine: {error}")
    try:
        overrides = dict(domain=_variants(tmp_path / "v.json"), llm="scripted", embedder="hashing:8", iterations=2,
                         samples=2, cache=str(tmp_path / "shared.sqlite"))
        dirs = sweep("linreg-quick", ["expo", "random"], [0, 1], tmp_path / "sweep", overrides=overrides, backend="ray")
    finally: ray.shutdown()
    assert len(dirs) == 4 and all(len(read_log(d / "log.jsonl")) == 2 and (d / "summary.json").exists() for d in dirs)
