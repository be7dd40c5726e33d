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
