"""Custom tasks (issue 16): a task named by import path or by an `expo_nb.tasks` entry point runs in the runner and
the command line like the paper's tasks; a bad path, a class that is not a Task or a bad setting is one line."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.config import RunConfig, make_task, task_class
from expo_nb.core import ExpoError
from expo_nb.example_task import WordPuzzleTask
from expo_nb.rundir import read_log

cli = CliRunner()
PUZZLE = "expo_nb.example_task:WordPuzzleTask"


def test_an_import_path_names_a_task_class():
    assert task_class(PUZZLE) is WordPuzzleTask
    assert isinstance(make_task(PUZZLE, hidden="crane"), WordPuzzleTask)
    assert RunConfig(task=PUZZLE).validate().task == PUZZLE


@pytest.mark.parametrize("name, message", [
    ("no_such_module:Task", "cannot import module 'no_such_module'"),
    ("expo_nb.example_task:Nope", "has no attribute 'Nope'"),
    ("expo_nb.example_task:letter_feedback", "is not a Task subclass"),
    ("chess", "unknown task 'chess'"),
    ("a:b:c", "unknown task 'a:b:c'"),
])
def test_a_bad_task_name_is_one_line(name, message):
    with pytest.raises(ExpoError, match=message):
        RunConfig(task=name).validate()


def test_a_bad_setting_names_the_task():
    with pytest.raises(ExpoError, match="bad settings for task 'expo_nb.example_task:WordPuzzleTask'"):
        make_task(PUZZLE, colour="red")


def variants(tmp_path: Path) -> str:
    path = tmp_path / "variants.json"
    path.write_text(json.dumps({"descriptions": ["Guess the hidden word."], "instructions": ["Use the feedback."]}))
    return str(path)


def test_the_cli_runs_a_task_by_import_path_with_its_settings(tmp_path):
    args = ["run", "linreg-quick", "--task", PUZZLE, "--task-setting", "hidden=slate", "--out", str(tmp_path / "r"),
            "--llm", "scripted", "--embedder", "hashing:16", "--domain", variants(tmp_path), "--iterations", "2",
            "--samples", "2", "--no-progress"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"of expo on {PUZZLE}" in result.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["task"] == PUZZLE and config["task_settings"] == {"hidden": "slate"}   # linreg's w, b dropped
    assert len(read_log(tmp_path / "r" / "log.jsonl")) == 2
    bad = cli.invoke(app, args[:2] + ["--task", "expo_nb.example_task:Nope"])
    assert bad.exit_code == 2 and "has no attribute 'Nope'" in bad.output and "Traceback" not in bad.output
    setting = cli.invoke(app, args[:-1] + ["--task-setting", "colour=red", "--out", str(tmp_path / "s")])
    assert setting.exit_code == 2 and "bad settings for task" in setting.output, setting.output


def test_an_entry_point_registers_a_task_by_name(tmp_path):
    "A distribution on the path with an `expo_nb.tasks` entry point: the name works like a built-in one."
    dist = tmp_path / "puzzle_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: puzzle-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[expo_nb.tasks]\nword-puzzle = {PUZZLE}\n")
    code = ("from expo_nb.config import task_class, TASK_CLASSES, registered_tasks\n"
            "print(task_class('word-puzzle').__name__, 'word-puzzle' in registered_tasks())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["WordPuzzleTask", "True"]
