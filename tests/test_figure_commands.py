"""Every figure of the paper is a command (index notebook's table): each runs end to end for one iteration on the
scripted model, and bad values get a one-line error with nothing written."""
import json

import pytest
from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.runner import read_log

FAST = ["--llm", "scripted", "--embedder", "hashing:32", "--iterations", "1", "--no-progress"]

@pytest.fixture
def variants(tmp_path):
    path = tmp_path / "variants.json"
    path.write_text(json.dumps({"descriptions": ["Fit a line to the points.", "Find w and b of the line."],
                                "instructions": ["Give a new pair.", "Propose one better pair [w, b]."]}))
    return str(path)

def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"OPENAI_API_KEY": ""})
    return result.exit_code, result.output

def test_fig2_5_main_comparison_and_fig8_fixed_best_prompt(tmp_path, variants):
    code, out = invoke("run", "linreg-paper", "--out", tmp_path / "expo", "--domain", variants, "--samples", "2", *FAST)
    assert code == 0, out
    code, out = invoke("run", "linreg-paper", "--out", tmp_path / "best", "--prompt-from", tmp_path / "expo",
                       "--samples", "2", *FAST)
    assert code == 0, out
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["method"] == "opro" and config["fixed_prompt"]["source"] == str(tmp_path / "expo")
    summary = json.loads((tmp_path / "expo" / "summary.json").read_text())
    assert config["fixed_prompt"]["description"] == summary["top_arms"][0]["description_text"]

def test_fig14_original_opro_all_temperature_one(tmp_path):
    code, out = invoke("run", "linreg-paper", "--method", "opro", "--out", tmp_path / "t1",
                       "--temperatures", "1,1,1", *FAST)
    assert code == 0, out
    assert json.loads((tmp_path / "t1" / "config.json").read_text())["temperatures"] == [1.0, 1.0, 1.0]

@pytest.mark.parametrize("preset", ["bandit-hard-paper", "bandit-easy-bsscd-paper"])
def test_fig4_both_bandit_designs(tmp_path, preset):
    code, out = invoke("run", preset, "--method", "opro", "--out", tmp_path / preset, *FAST)
    assert code == 0, out
    assert len(read_log(tmp_path / preset / "log.jsonl")) == 1

def test_fig7_eta_grid_and_plot_by_eta(tmp_path, variants):
    code, out = invoke("sweep", "linreg-quick", "--methods", "expo", "--seeds", "0", "--etas", "10,1000",
                       "--out", tmp_path / "grid", "--llm", "scripted", "--embedder", "hashing:32", "--iterations", "1",
                       "--domain", variants)
    assert code == 0, out
    runs = sorted(p.parent for p in (tmp_path / "grid").glob("expo/eta-*/seed-0/summary.json"))
    assert [p.parent.name for p in runs] == ["eta-10", "eta-1000"]
    code, out = invoke("plot", *runs, "--by", "eta", "-o", tmp_path / "eta.png")
    assert code == 0 and (tmp_path / "eta.png").exists(), out

@pytest.mark.parametrize("args, message", [
    (["run", "linreg-quick", "--score-scale", "0"], "score scale must be a finite number > 0"),
    (["run", "linreg-quick", "--score-scale", "warm-max:x"], "K in 'warm-max:K' must be a number"),
    (["sweep", "linreg-quick", "--etas", ","], "--etas is empty"),
    (["sweep", "linreg-quick", "--score-scale", "-3"], "score scale must be a finite number > 0"),
    (["run", "linreg-quick", "--temperatures", "1,x"], "--temperatures must be comma-separated numbers"),
])
def test_bad_values_one_line_nothing_written(tmp_path, args, message):
    code, out = invoke(*args, "--out", tmp_path / "out")
    assert code == 2 and message in out and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    assert not (tmp_path / "out").exists()

def test_prompt_from_needs_a_finished_expo_run(tmp_path):
    code, out = invoke("run", "linreg-quick", "--prompt-from", tmp_path, "--out", tmp_path / "out")
    assert code == 2 and "is not a finished run directory" in out and not (tmp_path / "out").exists()
    code, out = invoke("run", "linreg-quick", "--method", "opro", "--out", tmp_path / "opro", *FAST)
    assert code == 0, out
    code, out = invoke("run", "linreg-quick", "--prompt-from", tmp_path / "opro", "--out", tmp_path / "out")
    assert code == 2 and "is a opro run, not EXPO" in out and not (tmp_path / "out").exists()
