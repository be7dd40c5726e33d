"Runner, log recovery and CLI error tests (the run loop itself is not implemented yet)."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from typer.testing import CliRunner
from expo_nb.core import ExpoError
from expo_nb.runner import PRESETS, RunConfig, append_record, get_preset, read_log
from expo_nb.cli import app


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
    for args, text in ((["run", "nope"], "unknown preset"), (["run", "linreg-quick", "--method", "x", "--out", str(tmp_path)], "unknown method"),
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
        return SimpleNamespace(score=score, objective=-score, metric=score, prompt_tokens=1, completion_tokens=1, cached_calls=0)
    def state_dict(self): return {"calls": self.calls}
    def load_state_dict(self, state): self.calls = state["calls"]
texts = ["a", "bb", "ccc", "dddd"]
domain = PromptDomain(texts, texts, np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), {})
run_loop(RunConfig(method="random", iterations=12, seed=5), Path(sys.argv[1]), Task(), domain, None, UniformRandomSelector(domain, seed=5))
'''


def test_sigkill_mid_run_then_resume_gives_identical_records(tmp_path):
    import signal, time
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
    for iteration in range(3): append_record(out_dir / "log.jsonl", {"iteration": iteration, "metric": config.seed * iteration})


def test_sweep_two_methods_two_seeds_four_runs_and_a_figure(tmp_path):
    from expo_nb.sweep import sweep
    from expo_nb.plots import load_runs, plot_metric
    dirs = sweep("linreg-quick", ["expo", "opro"], [0, 1], tmp_path, job=_fake_job, n_jobs=2)
    assert len(set(dirs)) == 4 and all((d / "config.json").exists() for d in dirs)
    figure = tmp_path / "fig.png"
    plot_metric(load_runs(dirs)).figure.savefig(figure)
    assert figure.stat().st_size > 1000


def test_ray_backend_missing_gives_install_hint(tmp_path):
    pytest.importorskip("joblib")
    try:
        import ray  # noqa: F401
        pytest.skip("ray is installed")
    except ImportError: pass
    from expo_nb.sweep import sweep
    with pytest.raises(ExpoError, match=r"pip install expo_nb\[ray\]"):
        sweep("linreg-quick", ["expo"], [0], tmp_path, job=_fake_job, backend="ray")
