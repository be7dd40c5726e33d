"""A run directory cannot be corrupted (issue 13): one writer at a time, resume that trusts the log only when the
checkpoint agrees with it, a config committed only after a real start, and one-line errors for damaged files."""
import json
import multiprocessing

import pytest
from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.runner import read_log, run_lock


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"OPENAI_API_KEY": ""})
    return result.exit_code, result.output

@pytest.fixture
def command(tmp_path):
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"descriptions": ["Fit a line to the points.", "Find w and b of the line."],
                                    "instructions": ["Give a new pair.", "Propose one better pair [w, b]."]}))
    def make(out, iterations=6):
        return ["run", "linreg-quick", "--out", out, "--llm", "scripted", "--embedder", "hashing:32",
                "--domain", variants, "--iterations", iterations, "--samples", "2", "--no-progress"]
    return make

def strip(records): return [{k: v for k, v in r.items() if k not in ("wall_s", "cached_calls")} for r in records]

@pytest.fixture
def whole(tmp_path, command):
    code, out = invoke(*command(tmp_path / "whole"))
    assert code == 0, out
    return strip(read_log(tmp_path / "whole" / "log.jsonl"))

def _hold(path, ready, release):
    with run_lock(path):
        ready.set(); release.wait(30)

def test_second_writer_is_refused_with_the_holders_pid(tmp_path, command):
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(tmp_path / "busy", ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        code, out = invoke(*command(tmp_path / "busy"))
        assert code == 2 and "is in use by another run" in out and str(holder.pid) in out, out
        assert len(out.strip().splitlines()) == 1 and not (tmp_path / "busy" / "config.json").exists()
    finally:
        release.set(); holder.join(30)
    code, out = invoke(*command(tmp_path / "busy"))   # the lock died with its holder
    assert code == 0, out

@pytest.mark.parametrize("damage", ["cut-last-line", "delete-a-record", "empty-log", "done-99", "done-minus-1",
                                    "checkpoint-garbage"])
def test_resume_recomputes_what_the_log_lost(tmp_path, command, whole, damage):
    out = tmp_path / "run"
    code, text = invoke(*command(out, iterations=4))    # a run stopped after 4 of 6 iterations
    assert code == 0, text
    (out / "summary.json").unlink(); (out / "config.json").unlink()   # make it resumable with 6 iterations
    log, checkpoint = out / "log.jsonl", out / "checkpoint.json"
    lines = log.read_bytes().splitlines(keepends=True)
    state = json.loads(checkpoint.read_text())
    if damage == "cut-last-line": log.write_bytes(b"".join(lines[:-1]))
    if damage == "delete-a-record": log.write_bytes(b"".join(lines[:1] + lines[2:]))
    if damage == "empty-log": log.write_bytes(b"")
    if damage == "done-99": checkpoint.write_text(json.dumps({**state, "iterations_done": 99}))
    if damage == "done-minus-1": checkpoint.write_text(json.dumps({**state, "iterations_done": -1}))
    if damage == "checkpoint-garbage": checkpoint.write_bytes(b"\x00garbage{")
    code, text = invoke(*command(out))
    assert code == 0 and "Traceback" not in text, text
    assert strip(read_log(log)) == whole                 # every iteration, in order, as an uninterrupted run

def test_a_non_object_line_stops_the_resume_and_changes_nothing(tmp_path, command):
    out = tmp_path / "run"
    assert invoke(*command(out, iterations=3))[0] == 0
    (out / "summary.json").unlink(); (out / "config.json").unlink()
    lines = (out / "log.jsonl").read_bytes().splitlines(keepends=True)
    (out / "log.jsonl").write_bytes(lines[0] + b"[1, 2]\n" + b"".join(lines[1:]))
    before = (out / "log.jsonl").read_bytes()
    code, text = invoke(*command(out))
    assert code == 2 and "log.jsonl line 2 is not an iteration record" in text and len(text.strip().splitlines()) == 1
    assert (out / "log.jsonl").read_bytes() == before

def test_a_failed_first_start_leaves_no_config(tmp_path, command):
    bad = command(tmp_path / "run")
    bad[bad.index("scripted")] = "foo"
    code, text = invoke(*bad)
    assert code == 2 and "unknown chat model spec 'foo'" in text
    assert not (tmp_path / "run" / "config.json").exists()
    code, text = invoke(*command(tmp_path / "run"))
    assert code == 0, text

@pytest.mark.parametrize("damage, message", [
    ("domain/domain.json", "saved prompt domain in"), ("domain/embeddings.npz", "saved prompt domain in"),
    ("summary.json", "summary.json (run summary) cannot be read")])
def test_damaged_files_get_one_line_errors(tmp_path, command, damage, message):
    out = tmp_path / "run"
    assert invoke(*command(out, iterations=2))[0] == 0
    if damage != "summary.json": (out / "summary.json").unlink()
    (out / damage).write_bytes(b"\xff\xfe random bytes [[[[")
    code, text = invoke(*command(out, iterations=2))
    assert code == 2 and message in text and "Traceback" not in text and len(text.strip().splitlines()) == 1, text

def test_show_and_run_reject_unreadable_configs_and_bad_out(tmp_path, command):
    out = tmp_path / "run"
    assert invoke(*command(out, iterations=1))[0] == 0
    (out / "config.json").write_bytes(b"\xff\xfe\x00not utf-8")
    for args in (["show", out], command(out, iterations=1)):
        code, text = invoke(*args)
        assert (code == 2 and "config.json" in text and "Traceback" not in text
                and len(text.strip().splitlines()) == 1), text
    code, text = invoke(*command("", iterations=1))
    assert code == 2 and "--out is empty" in text
    code, text = invoke("plot", out, "-o", tmp_path / "fig.xyz")
    assert code == 2 and "fig.xyz" in text and "Traceback" not in text


def test_plot_and_domain_outputs_are_checked(tmp_path, command):
    out = tmp_path / "run"
    assert invoke(*command(out, iterations=1))[0] == 0
    code, text = invoke("plot", out, "-o", tmp_path / "figure")
    assert code == 0 and str(tmp_path / "figure.png") in text and (tmp_path / "figure.png").exists()
    code, text = invoke("plot", out, "-o", tmp_path)
    assert code == 2 and "is a directory" in text
    (tmp_path / "file").write_text("x")
    code, text = invoke("domain", "linreg-quick", "--out", tmp_path / "file")
    assert code == 2 and "is a file" in text and (tmp_path / "file").read_text() == "x"
    code, text = invoke("sweep", "linreg-quick", "--jobs", "0")
    assert code == 2 and "--jobs must be >= 1" in text


def test_a_saved_domain_is_shared_as_it_is(tmp_path, command):
    first = tmp_path / "first"
    assert invoke(*command(first, iterations=1))[0] == 0
    shared = first / "domain" / "domain.json"
    args = command(tmp_path / "second", iterations=1)
    args[args.index("--domain") + 1] = shared
    code, text = invoke(*args)
    assert code == 0, text
    a, b = (json.loads((d / "domain" / "domain.json").read_text()) for d in (first, tmp_path / "second"))
    assert a["descriptions"] == b["descriptions"] and a["provenance"] == b["provenance"]
    args = command(tmp_path / "third", iterations=1)
    args[args.index("--domain") + 1], args[args.index("hashing:32")] = shared, "hashing:16"
    code, text = invoke(*args)
    assert code == 2 and "was embedded by hashing:32, this run uses hashing:16" in text


@pytest.mark.parametrize("option, value, message", [
    ("--embedder", "hashing:²", "use hashing:D with D an integer"),
    ("--embedder", "hashing:400000000", "use hashing:D"), ("--embedder", "hashing:0", "use hashing:D"),
    ("--threads", "0", "threads must be an integer in [1, 512]"),
    ("--seed", str(10**30), "seed must be an integer in [0, 4294967295]")])
def test_bounded_options(tmp_path, command, option, value, message):
    args = [a for a in command(tmp_path / "run", iterations=1)]
    if option in args: args[args.index(option) + 1] = value
    else: args += [option, value]
    code, text = invoke(*args)
    assert code == 2 and message in text and "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "run" / "config.json").exists()


def _with(args, option, value):
    "The command `args` with `option` set to `value`."
    args = list(args)
    args[args.index(option) + 1] = value
    return args

def test_hostile_battery_findings_are_one_line_errors(tmp_path, command):
    "The tracebacks tools/hostile.py found: each is now a one-line error."
    out = tmp_path / "run"
    assert invoke(*command(out, iterations=1))[0] == 0
    nested = tmp_path / "nested.json"; nested.write_text("[" * 100_000)
    (tmp_path / "file").write_text("x")
    cases = [(command(tmp_path / "a", iterations=1) + ["--llm", "http://[::1"], "bad endpoint spec"),
             (_with(command(tmp_path / "b", iterations=1), "--domain", nested), "is not valid JSON"),
             (["sweep", "linreg-quick", "--out", tmp_path / "file"], "is a file"),
             (["domain", "linreg-quick", "--out", tmp_path / "file" / "d", "--llm", "scripted",
               "--embedder", "hashing:8"], "cannot write the domain"),
             (command(tmp_path / "c", iterations=1) + ["--score-scale", "warm-max:"], "score scale must be")]
    for args, message in cases:
        code, text = invoke(*args)
        assert (code == 2 and message in text and "Traceback" not in text
                and len(text.strip().splitlines()) == 1), (args, text)
    for garbage in ("[1, 2]", "{}"):
        (out / "summary.json").write_text(garbage)
        code, text = invoke(*command(out, iterations=1))
        assert code == 2 and "is not a run summary" in text, text
    (out / "summary.json").unlink()
    log = out / "log.jsonl"
    record = json.loads(log.read_text().splitlines()[0]); record["metric"] = "high"
    log.write_text(json.dumps(record) + "\n")
    code, text = invoke("show", out)
    assert code == 2 and "missing or non-numeric fields" in text, text
    log.unlink(); log.mkdir()
    code, text = invoke("show", out)
    assert code == 2 and "cannot read" in text and "Traceback" not in text, text


@pytest.mark.parametrize("damage", ["append-garbage", "delete-record", "edit-metric", "empty"])
def test_a_finished_run_whose_log_was_changed_is_recomputed_to_the_intact_log(tmp_path, command, whole, damage):
    "The rerun of a finished run checks its log against the checkpoint digest; a changed log is recomputed."
    out = tmp_path / "finished"
    assert invoke(*command(out))[0] == 0
    log = out / "log.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    changed = {"append-garbage": lines + ["{not json\n"], "delete-record": lines[:2] + lines[3:],
               "edit-metric": [lines[0].replace('"metric": ', '"metric": 1e9, "was": ')] + lines[1:],
               "empty": []}[damage]
    log.write_text("".join(changed))
    code, output = invoke(*command(out))
    assert code == 0, output
    assert strip(read_log(log)) == whole                     # back to the log of an uninterrupted run
    assert len(list(out.glob("summary.inconsistent-*.json"))) == 1 and (out / "summary.json").exists()
    assert invoke(*command(out))[0] == 0                    # now consistent: read back, nothing set aside again
    assert len(list(out.glob("summary.inconsistent-*.json"))) == 1


@pytest.mark.parametrize("damage", ["non-object-line", "log-is-directory"])
def test_a_finished_run_whose_log_cannot_be_read_is_refused_in_one_line_and_kept(tmp_path, command, damage):
    out = tmp_path / "finished"
    assert invoke(*command(out))[0] == 0
    log = out / "log.jsonl"
    if damage == "non-object-line":
        lines = log.read_text().splitlines(keepends=True)
        log.write_text("".join(lines[:1] + ["[1, 2]\n"] + lines[1:]))
    else:
        log.unlink()
        log.mkdir()
    code, output = invoke(*command(out))
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert (out / "summary.json").exists() and not list(out.glob("summary.inconsistent-*"))   # nothing moved
