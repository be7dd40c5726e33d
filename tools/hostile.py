"""A hostile user's battery against the `expo` command (issue 13): bad options, damaged run directories, crashes and
concurrent writers, each run as a real `expo` subprocess and classified by what it did.

Every case runs in its own folder of a temporary workspace, on a copy of expo_nb taken at the start (other
sessions may export new code meanwhile), with the offline stand-ins (`--llm scripted
--embedder hashing:32` and a two-by-two variants file), so nothing loads a model or reaches a network. Outcomes:
  clear error  exit 2 and one line on stderr (or stdout), or click's boxed usage error; no 'Traceback'
  traceback    a Python traceback anywhere in the output
  accepted     exit 0
  other        any other exit status, a multi-line error, or a hang past --timeout
  data loss    (cases on a run directory) a finished run's log.jsonl changed other than back to the intact log, an
               error that rewrote the log, or a run that ended 0 with a log different from an uninterrupted run's
               (records compared without wall_s and cached_calls)
Each case says what a correct program does: 'error' (refuse the input), 'accept', 'either', or 'repair' (refuse, or
finish with the intact log). A case fails when it ends in a traceback, 'other' or data loss, when an 'error' case is
accepted, or when an 'accept' case is refused.

Prints a table of counts and every failing case (command and the last lines of its output), and writes
benchmarks/results/hostile.json. Nothing is written into the repository except that file.

usage: python tools/hostile.py [--jobs 2] [--timeout 180] [--only REGEX] [--keep] [--no-write]
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXPO = ROOT / ".venv" / "bin" / "expo"
RESULTS = ROOT / "benchmarks" / "results" / "hostile.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OPENAI_API_KEY": "",
       "NO_COLOR": "1", "COLUMNS": "100"}
ITERATIONS, PARTIAL = 4, 2            # the intact run, and where the resumable run stopped
VARIANTS = {"descriptions": ["Fit a line to the points.", "Find w and b of the line."],
            "instructions": ["Give a new pair.", "Propose one better pair [w, b]."]}
STRIPPED = ("wall_s", "cached_calls")  # differ between an interrupted and an uninterrupted run by design
LOCK_MESSAGE = "is in use by another run"
MEMORY_LIMIT = 6 * 2**30             # address space per command: a runaway allocation fails, the machine is shared

# ---------------------------------------------------------------------------------------------------------------
# Commands

BASE = {"--llm": "scripted", "--embedder": "hashing:32", "--domain": "{ws}/variants.json", "--samples": "2",
        "--iterations": str(ITERATIONS)}

def run_cmd(out="run", preset="linreg-quick", extra=(), **options):
    "`expo run PRESET --out OUT` with the offline base options; options={'seed': '5'} overrides, None drops one."
    merged = {**BASE, **{"--" + k.replace("_", "-"): v for k, v in options.items()}}
    args = ["run", preset] + ([] if out is None else ["--out", out])
    for key, value in merged.items():
        if value is not None: args += [key, value]
    return args + ["--no-progress", *extra]

def sweep_cmd(**options):
    "`expo sweep` on one method, one seed, one iteration (fast whenever a bad value is let through)."
    merged = {"--methods": "expo", "--seeds": "0", "--out": "sweep", "--llm": "scripted", "--embedder": "hashing:32",
              "--domain": "{ws}/variants.json", "--iterations": "1",
              **{"--" + k.replace("_", "-"): v for k, v in options.items()}}
    return ["sweep", "linreg-quick"] + [a for key, value in merged.items() if value is not None for a in (key, value)]

def domain_cmd(out="dom", **options):
    merged = {"--out": out, "--llm": "scripted", "--embedder": "hashing:32", "--show": "2",
              **{"--" + k.replace("_", "-"): v for k, v in options.items()}}
    return ["domain", "linreg-quick"] + [a for key, value in merged.items() if value is not None for a in (key, value)]

def expand(args, ws: Path):
    return [str(a).replace("{ws}", str(ws)) for a in args]

def limit_memory(): resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

def launch(args, cwd: Path, ws: Path):
    "Start `expo ARGS` on the workspace's snapshot of the package (found first on PYTHONPATH)."
    env = {**ENV, "PYTHONPATH": str(ws / "snapshot")}
    return subprocess.Popen([str(EXPO), *expand(args, ws)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", preexec_fn=limit_memory)

def finish(proc, timeout):
    "(returncode, stdout, stderr, timed_out) of a launched command; kill it past the timeout."
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, False
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return proc.returncode, out, err + f"\n[hung: killed after {timeout:.0f} s]", True

def expo(args, cwd, ws, timeout):
    return finish(launch(args, cwd, ws), timeout)

# ---------------------------------------------------------------------------------------------------------------
# Logs

def records(path: Path):
    "The log's records without the fields that differ by design; None when a line is not a JSON object."
    if not path.is_file(): return None
    try: rows = [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines() if line.strip()]
    except ValueError: return None
    if not all(isinstance(r, dict) for r in rows): return None
    return [{k: v for k, v in r.items() if k not in STRIPPED} for r in rows]

def read_bytes(path: Path):
    return path.read_bytes() if path.is_file() else None

# ---------------------------------------------------------------------------------------------------------------
# Damage to a run directory: each is a function of the run directory

def write(rel, data):
    "Replace RUN/rel by `data` (bytes, or a str written as UTF-8)."
    def damage(run: Path):
        target = run / rel
        if target.is_dir(): shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return damage

def delete(rel):
    def damage(run: Path):
        target = run / rel
        if target.is_dir(): shutil.rmtree(target)
        elif target.exists(): target.unlink()
    return damage

def make_dir(rel):
    def damage(run: Path):
        delete(rel)(run)
        (run / rel).mkdir(parents=True)
    return damage

def edit_json(rel, change):
    "Load RUN/rel, apply `change` (returns the new object) and write it back."
    def damage(run: Path):
        path = run / rel
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return damage

def edit_lines(change):
    "Apply `change` to the list of log lines (bytes, newline kept) and write the log back."
    def damage(run: Path):
        path = run / "log.jsonl"
        path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))
    return damage

def edit_records(change):
    "Apply `change` to the parsed log records (a list of dicts) and write them back one per line."
    def damage(run: Path):
        path = run / "log.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in change(rows)))
    return damage

def wrong_shape_npz(run: Path):
    with open(run / "domain" / "embeddings.npz", "wb") as f:
        np.savez(f, descriptions=np.ones((5, 3), np.float32), instructions=np.ones((1, 7), np.float32))

def half_file(rel):
    def damage(run: Path):
        data = (run / rel).read_bytes()
        (run / rel).write_bytes(data[:len(data) // 2])
    return damage

def nan_metric(lines):
    "The last record's metric replaced by NaN (which json reads, and a strict parser refuses)."
    return lines[:-1] + [lines[-1].replace(b'"metric": ', b'"metric": NaN, "x": ')]

def renumber(rows):
    for r in rows: r["iteration"] = r["iteration"] + 10
    return rows

def swap_first_two(rows): return [rows[1], rows[0], *rows[2:]]

def set_key(key, value):
    def change(obj):
        if isinstance(obj, dict): obj[key] = value
        return obj
    return change

def metric_as(value):
    def change(rows):
        rows[-1]["metric"] = value
        return rows
    return change

RANDOM = np.random.default_rng(13).bytes(4096)
NOT_UTF8 = b"\xff\xfe\x00\x81 not utf-8 \xc3\x28"
NESTED = "[" * 100_000 + "]" * 100_000

DAMAGES = {   # name -> (damage, also run `expo show` on the damaged finished run)
    "checkpoint-random-bytes": (write("checkpoint.json", RANDOM), False),
    "checkpoint-not-utf8": (write("checkpoint.json", NOT_UTF8), False),
    "checkpoint-empty": (write("checkpoint.json", b""), False),
    "checkpoint-json-list": (write("checkpoint.json", "[]"), False),
    "checkpoint-nested-brackets": (write("checkpoint.json", NESTED), False),
    "checkpoint-done-99": (edit_json("checkpoint.json", set_key("iterations_done", 99)), False),
    "checkpoint-done-minus-1": (edit_json("checkpoint.json", set_key("iterations_done", -1)), False),
    "checkpoint-done-string": (edit_json("checkpoint.json", set_key("iterations_done", "2")), False),
    "checkpoint-done-1e300": (edit_json("checkpoint.json", set_key("iterations_done", 1e300)), False),
    "checkpoint-wrong-digest": (edit_json("checkpoint.json", set_key("log_sha256", "0" * 64)), False),
    "checkpoint-driver-null": (edit_json("checkpoint.json", set_key("driver", None)), False),
    "checkpoint-deleted": (delete("checkpoint.json"), False),
    "checkpoint-is-directory": (make_dir("checkpoint.json"), False),
    "domain-json-random-bytes": (write("domain/domain.json", RANDOM), False),
    "domain-json-empty": (write("domain/domain.json", b""), False),
    "domain-json-list": (write("domain/domain.json", "[]"), False),
    "domain-json-no-instructions": (edit_json("domain/domain.json", lambda d: {"descriptions": d["descriptions"]}),
                                    False),
    "domain-json-numbers": (edit_json("domain/domain.json", lambda d: {**d, "instructions": [1, 2]}), False),
    "domain-json-nested-brackets": (write("domain/domain.json", NESTED), False),
    "domain-json-deleted": (delete("domain/domain.json"), False),
    "domain-dir-is-file": (write("domain", "not a directory"), False),
    "embeddings-random-bytes": (write("domain/embeddings.npz", RANDOM), False),
    "embeddings-empty": (write("domain/embeddings.npz", b""), False),
    "embeddings-deleted": (delete("domain/embeddings.npz"), False),
    "embeddings-wrong-shape": (wrong_shape_npz, False),
    "summary-random-bytes": (write("summary.json", RANDOM), True),
    "summary-not-utf8": (write("summary.json", NOT_UTF8), True),
    "summary-json-list": (write("summary.json", "[1, 2]"), True),
    "summary-empty-object": (write("summary.json", "{}"), True),
    "summary-nested-brackets": (write("summary.json", NESTED), True),
    "config-random-bytes": (write("config.json", RANDOM), True),
    "config-not-utf8": (write("config.json", NOT_UTF8), True),
    "config-json-list": (write("config.json", "[]"), True),
    "config-unknown-method": (edit_json("config.json", set_key("method", "foo")), True),
    "config-unknown-task": (edit_json("config.json", set_key("task", "foo")), True),
    "config-bad-task-setting": (edit_json("config.json", set_key("task_settings", {"w": "x", "b": None})), True),
    "config-unknown-field": (edit_json("config.json", set_key("colour", "blue")), True),
    "config-iterations-string": (edit_json("config.json", set_key("iterations", "four")), True),
    "log-cut-mid-line": (lambda run: (run / "log.jsonl").write_bytes((run / "log.jsonl").read_bytes()[:-40]), True),
    "log-last-record-removed": (edit_lines(lambda lines: lines[:-1]), True),
    "log-record-deleted": (edit_lines(lambda lines: lines[:1] + lines[2:]), True),
    "log-non-object-line": (edit_lines(lambda lines: lines[:1] + [b"[1, 2]\n"] + lines[1:]), True),
    "log-null-line": (edit_lines(lambda lines: lines[:1] + [b"null\n"] + lines[1:]), True),
    "log-emptied": (write("log.jsonl", b""), True),
    "log-deleted": (delete("log.jsonl"), True),
    "log-iterations-renumbered": (edit_records(renumber), True),
    "log-records-swapped": (edit_records(swap_first_two), True),
    "log-record-duplicated": (edit_lines(lambda lines: lines + lines[-1:]), True),
    "log-garbage-line-appended": (edit_lines(lambda lines: lines + [b"garbage {\n"]), True),
    "log-not-utf8-appended": (edit_lines(lambda lines: lines + [NOT_UTF8 + b"\n"]), True),
    "log-metric-string": (edit_records(metric_as("high")), True),
    "log-metric-nan": (edit_lines(nan_metric), True),
    "log-is-directory": (make_dir("log.jsonl"), True),
    "cache-random-bytes": (write("cache.sqlite", RANDOM), False),
    "cache-emptied": (write("cache.sqlite", b""), False),
    "cache-cut-in-half": (half_file("cache.sqlite"), False),
    "cache-is-directory": (make_dir("cache.sqlite"), False),
    "lock-file-garbage": (write("run.lock", RANDOM), False),
    "lock-is-directory": (make_dir("run.lock"), False),
    "leftover-tmp-file": (write("checkpoint.json.tmp-99999", RANDOM), False),
    "figure-deleted": (delete("metric.png"), False),
}
RESUMED = {"checkpoint-random-bytes", "checkpoint-empty", "checkpoint-done-99", "checkpoint-done-minus-1",
           "checkpoint-done-string", "checkpoint-wrong-digest", "checkpoint-deleted", "domain-json-random-bytes",
           "domain-json-deleted", "embeddings-random-bytes", "embeddings-wrong-shape", "log-cut-mid-line",
           "log-last-record-removed", "log-record-deleted", "log-non-object-line", "log-emptied", "log-deleted",
           "log-iterations-renumbered", "log-records-swapped", "log-record-duplicated", "log-garbage-line-appended",
           "cache-random-bytes", "cache-is-directory"}   # also done to an unfinished run, then resumed
PLOTTED = {"log-non-object-line", "log-emptied", "log-deleted", "log-metric-string", "log-metric-nan",
           "log-garbage-line-appended", "config-random-bytes", "summary-random-bytes"}   # also plotted when finished
INTACT_LOG = {"checkpoint-", "domain-", "embeddings-", "summary-", "config-", "cache-", "lock-", "leftover-", "figure-"}

# ---------------------------------------------------------------------------------------------------------------
# Cases

@dataclass
class Case:
    name: str
    args: list                                   # the judged command (placeholders {ws})
    expect: str = "error"                        # error | accept | either | repair
    template: Optional[str] = None               # copy this prepared run directory to ./run first
    setup: Optional[Callable] = None             # then apply this to ./run (or to the case folder when no template)
    check: Optional[str] = None                  # 'finished' or 'resume': how the run directory's log is judged
    before: list = field(default_factory=list)   # commands run first (each must end in a clear error)
    custom: Optional[Callable] = None            # (case, folder, ws, timeout) -> result dict, for timed scenarios
    note: str = ""

def fresh(name, args, expect="error", setup=None, note=""):
    return Case(name, args, expect, setup=setup, note=note)

def files(**contents):
    "A setup that writes files (bytes or str) into the case folder."
    def setup(folder: Path):
        for name, data in contents.items():
            path = folder / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup

def folders(*names):
    def setup(folder: Path):
        for name in names: (folder / name).mkdir(parents=True, exist_ok=True)
    return setup

def copy_run(template):
    "A setup that copies a prepared run directory of the workspace into the case folder as ./NAME."
    def setup(folder: Path):
        shutil.copytree(folder.parent.parent / "templates" / template, folder / template)
    return setup

def option_cases():
    "Bad (and a few good) values of every `expo run` option, each on a fresh run directory."
    bad = {
        "seed": ["1" + "0" * 30, "-1", str(2**32), str(2**63), "abc", "1.5", ""],
        "embedder": ["hashing:²", "hashing:400000000", "hashing:0", "hashing:-5", "hashing:", "hashing:abc",
                     "hashing:1.5", "hashing:1e3", "foo", "", "local:nope", "openai:text-embedding-3-small",
                     "http://127.0.0.1:9/v1#m"],
        "llm": ["foo", "", "local:nope", "openai:gpt-4o-mini", "http://127.0.0.1:9/v1#m", "http://[::1"],
        "method": ["foo", "", "EXPO", "expo "],
        "iterations": ["0", "-1", "1" + "0" * 30, "abc"],
        "samples": ["0", "-1", "1" + "0" * 30],
        "eta": ["0", "-1", "nan", "inf", "-inf", "abc"],
        "input_projection": ["foo", ""],
        "score_scale": ["0", "-1", "nan", "inf", "foo", "warm-max:0", "warm-max:-1", "warm-max:abc", "warm-max:", ""],
        "rephraser": ["foo"],
        "rephrase_style": ["foo", ""],
        "temperatures": ["1,1,1", ",", "", "a,b", "-1,-1", "nan,nan", "inf,inf", "1e9,1e9"],
    }
    cases = [fresh(f"run --{k.replace('_', '-')} {v!r}", run_cmd(**{k: v}))
             for k, values in bad.items() for v in values]
    cases += [fresh(f"run bandit --env-seed {v!r}", run_cmd(preset="bandit-easy-quick", env_seed=v, samples=None,
                                                             iterations="2"))
              for v in ["-1", "1" + "0" * 30]]
    cases += [fresh(f"run preset {p!r}", run_cmd(preset=p)) for p in ["foo", "", "linreg-quick-x", "../linreg-quick"]]
    good = [("seed", str(2**32 - 1)), ("embedder", "hashing:4096"), ("temperatures", "1,0.5"), ("score_scale", "50"),
            ("method", "opro")]
    cases += [fresh(f"run --{k.replace('_', '-')} {v!r} (valid)", run_cmd(**{k: v}), "accept") for k, v in good]
    cases += [fresh("run baseline (valid)", run_cmd(), "accept"),
              fresh("run --domain llm (valid; the scripted model may fall short of rephrasings)", run_cmd(domain="llm"),
                    "either"),
              fresh("run bandit preset (valid)", run_cmd(preset="bandit-easy-quick", samples=None, iterations="2"),
                    "accept"),
              fresh("run --threads 1 (valid; issue 13 asks for it)", run_cmd(extra=["--threads", "1"]), "accept",
                    note="known open: --threads"),
              fresh("run --threads 0", run_cmd(extra=["--threads", "0"]), note="known open: --threads")]
    return cases

def saved_domain_without_embeddings(folder: Path):
    (folder / "dom").mkdir()
    shutil.copy(folder.parent.parent / "templates" / "finished" / "domain" / "domain.json", folder / "dom")

def domain_file_cases():
    "--domain files that are not a variants file, and --cache paths that are not a cache."
    domain = {
        "missing": ("nope.json", None), "directory": ("d", folders("d")),
        "not JSON": ("v.json", files(**{"v.json": "descriptions: a"})),
        "empty file": ("v.json", files(**{"v.json": ""})),
        "100,000 nested brackets": ("v.json", files(**{"v.json": NESTED})),
        "JSON list": ("v.json", files(**{"v.json": "[]"})),
        "no instructions": ("v.json", files(**{"v.json": json.dumps({"descriptions": ["a"]})})),
        "empty lists": ("v.json", files(**{"v.json": json.dumps({"descriptions": [], "instructions": []})})),
        "numbers as texts": ("v.json", files(**{"v.json": json.dumps({"descriptions": [1, 2], "instructions": [3]})})),
        "empty strings": ("v.json", files(**{"v.json": json.dumps({"descriptions": [""], "instructions": [""]})})),
        "not UTF-8": ("v.json", files(**{"v.json": NOT_UTF8})),
        "saved domain, other embedder": ("{ws}/templates/finished-16/domain/domain.json", None),
    }
    cases = [fresh(f"run --domain {k}", run_cmd(domain=path), setup=setup) for k, (path, setup) in domain.items()]
    cases.append(fresh("run --domain saved domain, embeddings missing (re-embedded, or refused)",
                       run_cmd(domain="dom/domain.json"), "either", setup=saved_domain_without_embeddings))
    cases.append(fresh("run --domain saved domain, same embedder (valid)",
                       run_cmd(domain="{ws}/templates/finished/domain/domain.json"), "accept"))
    cache = {"a directory": ("c", folders("c")), "random bytes": ("c.sqlite", files(**{"c.sqlite": RANDOM})),
             "a text file": ("c.sqlite", files(**{"c.sqlite": "hello, cache\n" * 100})),
             "under a file": ("f/c.sqlite", files(f="x")), "/dev/null": ("/dev/null", None)}
    cases += [fresh(f"run --cache {k}", run_cmd(cache=path), setup=setup) for k, (path, setup) in cache.items()]
    cases += [fresh("run --cache in a missing folder (made, or refused)", run_cmd(cache="no/such/c.sqlite"), "either"),
              fresh("run --cache '' (the default cache, or refused)", run_cmd(cache=""), "either")]
    cases.append(fresh("run --cache an empty file (valid: a new database)", run_cmd(cache="c.sqlite"), "either",
                       setup=files(**{"c.sqlite": b""})))
    return cases

def out_and_prompt_cases():
    "--out values that are not a usable directory, and --prompt-from values that are not a finished EXPO run."
    outs = {"''": ("", None), "'   '": ("   ", None), "an existing file": ("f", files(f="x")),
            "under a file": ("f/run", files(f="x")), "a 300-character name": ("r" * 300, None),
            "in /proc": ("/proc/hostile-run", None), "a directory of other files (valid)": ("d", files(d__notes="x"))}
    cases = [fresh(f"run --out {k}", run_cmd(out=path), "accept" if "valid" in k else "error", setup=setup)
             for k, (path, setup) in outs.items()]
    prompt = {"a missing path": ("nope", None), "a file": ("f", files(f="x")),
              "an empty directory": ("e", folders("e")),
              "an OPRO run": ("opro", copy_run("opro")), "an unfinished run": ("partial", copy_run("partial")),
              "a run with a garbage summary": ("g", copy_run_with("finished", "g", write("summary.json", RANDOM))),
              "a run with summary []": ("g", copy_run_with("finished", "g", write("summary.json", "[]")))}
    cases += [fresh(f"run --prompt-from {k}", run_cmd(prompt_from=path), setup=setup)
              for k, (path, setup) in prompt.items()]
    cases.append(fresh("run --prompt-from a finished EXPO run (valid)", run_cmd(prompt_from="finished"), "accept",
                       setup=copy_run("finished")))
    return cases

def copy_run_with(template, name, damage):
    def setup(folder: Path):
        shutil.copytree(folder.parent.parent / "templates" / template, folder / name)
        damage(folder / name)
    return setup

def other_command_cases():
    "expo sweep / plot / domain / show and the command line itself."
    sweep = {"jobs": ["0", "-1"], "etas": [",", "", "a", "0", "-1", "nan", "inf"], "seeds": ["", ",", "a", "-1",
             "1" + "0" * 30, "1.5"], "methods": ["", ",", "foo", "expo,foo"], "backend": ["foo"],
             "iterations": ["0"], "score_scale": ["foo"], "domain": ["nope.json"], "embedder": ["hashing:0"],
             "llm": ["foo"], "cache": ["c"]}
    cases = [fresh(f"sweep --{k.replace('_', '-')} {v!r}", sweep_cmd(**{k: v}),
                   setup=folders("c") if k == "cache" else None)
             for k, values in sweep.items() for v in values]
    cases += [fresh("sweep --out an existing file", sweep_cmd(out="f"), setup=files(f="x")),
              fresh("sweep (valid)", sweep_cmd(), "accept")]
    plot = {"-o fig.xyz": (["-o", "fig.xyz"], "error"), "-o DIR": (["-o", "d"], "error"),
            "-o in a missing folder": (["-o", "no/such/fig.png"], "either"), "-o ''": (["-o", ""], "error"),
            "-o fig (valid: fig.png)": (["-o", "fig"], "accept"), "--metric foo": (["--metric", "foo"], "error"),
            "--metric description": (["--metric", "feedback"], "error"), "--by foo": (["--by", "foo"], "error"),
            "--by seed (valid)": (["--by", "seed"], "accept")}
    setup = lambda f: (copy_run("finished")(f), folders("d")(f))
    cases += [fresh(f"plot {k}", ["plot", "finished", *a], expect, setup=setup) for k, (a, expect) in plot.items()]
    cases += [fresh("plot a missing run", ["plot", "nope"]), fresh("plot a file", ["plot", "f"], setup=files(f="x")),
              fresh("plot an empty directory", ["plot", "e"], setup=folders("e")),
              fresh("plot an unfinished run (valid)", ["plot", "partial"], "either", setup=copy_run("partial"))]
    domain = {"--out a file": domain_cmd(out="f"), "--out ''": domain_cmd(out=""),
              "--out under a file": domain_cmd(out="f/d"),
              "unknown preset": ["domain", "foo", "--llm", "scripted", "--embedder", "hashing:32"],
              "--show -1": domain_cmd(show="-1"), "--show 10**30": domain_cmd(show="1" + "0" * 30),
              "--llm foo": domain_cmd(llm="foo"), "--embedder hashing:0": domain_cmd(embedder="hashing:0"),
              "--rephrase-style foo": domain_cmd(rephrase_style="foo"), "--rephraser foo": domain_cmd(rephraser="foo")}
    cases += [fresh(f"domain {k}", a, setup=files(f="x")) for k, a in domain.items()]
    cases += [fresh("domain --out a folder with a garbage domain.json", domain_cmd(out="g"),
                    setup=files(**{"g__domain.json": RANDOM, "g__embeddings.npz": RANDOM})),
              fresh("domain (valid; the scripted model may fall short of rephrasings)", domain_cmd(), "either")]
    cases += [fresh("show a missing run", ["show", "nope"]), fresh("show a file", ["show", "f"], setup=files(f="x")),
              fresh("show an empty directory", ["show", "e"], setup=folders("e")),
              fresh("show an unfinished run (valid)", ["show", "partial"], "accept", setup=copy_run("partial")),
              fresh("expo nonsense", ["nonsense"]), fresh("expo presets extra", ["presets", "extra"]),
              fresh("expo run without a preset", ["run"]), fresh("expo presets (valid)", ["presets"], "accept")]
    return cases

def damage_cases():
    "Every damage on a finished run (rerun, show, plot) and on a resumable one (resume)."
    cases = []
    for name, (damage, shown) in DAMAGES.items():
        cases.append(Case(f"finished run, {name}: rerun", run_cmd(), "either" if intact_log(name) else "repair",
                          template="finished", setup=damage, check="finished"))
        if name in RESUMED:
            cases.append(Case(f"unfinished run, {name}: resume", run_cmd(), "either", template="partial",
                              setup=damage, check="resume"))
        if shown:
            cases.append(Case(f"finished run, {name}: show", ["show", "run"], "either", template="finished",
                              setup=damage, check="finished"))
        if name in PLOTTED:
            cases.append(Case(f"finished run, {name}: plot", ["plot", "run", "-o", "fig.png"], "either",
                              template="finished", setup=damage, check="finished"))
    cases += [Case("finished run: rerun with another seed", run_cmd(seed="1"), template="finished", check="finished"),
              Case("finished run: rerun with another embedder", run_cmd(embedder="hashing:16"), template="finished",
                   check="finished"),
              Case("finished run: rerun (valid)", run_cmd(), "accept", template="finished", check="finished"),
              Case("unfinished run: resume (valid)", run_cmd(), "accept", template="partial", check="resume"),
              Case("--llm foo, then the corrected command", run_cmd(), "accept", check="resume",
                   before=[run_cmd(llm="foo")]),
              Case("--embedder hashing:0, then the corrected command", run_cmd(), "accept", check="resume",
                   before=[run_cmd(embedder="hashing:0")]),
              Case("--domain missing, then the corrected command", run_cmd(), "accept", check="resume",
                   before=[run_cmd(domain="nope.json")])]
    return cases

def intact_log(name): return any(name.startswith(prefix) for prefix in INTACT_LOG)

# ---------------------------------------------------------------------------------------------------------------
# Timed scenarios: two writers, crashes, interrupts

def two_writers(delay):
    "Two `expo run` on one --out, the second `delay` s after the first: one finishes, the other is refused."
    def scenario(case, folder, ws, timeout):
        first = launch(run_cmd(), folder, ws)
        time.sleep(delay)
        second = launch(run_cmd(), folder, ws)
        results = [finish(first, timeout), finish(second, timeout)]
        codes = sorted(r[0] for r in results)
        refused = [r for r in results if r[0] == 2]
        text = "\n".join(r[1] + r[2] for r in results)
        if any(r[3] for r in results): outcome = "other"
        elif "Traceback" in text: outcome = "traceback"
        elif codes == [0, 2] and LOCK_MESSAGE in refused[0][2] and one_line(refused[0][2]): outcome = "clear error"
        elif codes == [0, 0]: outcome = "accepted"
        else: outcome = "other"
        loss = records(folder / "run" / "log.jsonl") != ws_reference(ws)
        return {"returncode": codes, "outcome": outcome, "data_loss": loss, "output": text}
    return scenario

def interrupted(lines, sig, damage=None):
    "Send `sig` once the log has `lines` records, optionally damage the directory, then resume with the same command."
    def scenario(case, folder, ws, timeout):
        proc = launch(run_cmd(), folder, ws)
        log = folder / "run" / "log.jsonl"
        deadline = time.time() + timeout
        while proc.poll() is None and time.time() < deadline and count_lines(log) < lines: time.sleep(0.02)
        if proc.poll() is None: proc.send_signal(sig)
        code, out, err, hung = finish(proc, timeout)
        stopped = classify(code, out, err, hung)
        if damage: damage(folder / "run")
        code2, out2, err2, hung2 = expo(run_cmd(), folder, ws, timeout)
        outcome = classify(code2, out2, err2, hung2)
        if sig == signal.SIGINT and stopped not in ("clear error", "accepted"): outcome = stopped
        loss = code2 == 0 and records(log) != ws_reference(ws)
        return {"returncode": [code, code2], "outcome": outcome, "data_loss": loss,
                "output": f"[interrupted: {stopped}, exit {code}]\n{out}{err}\n[resumed]\n{out2}{err2}"}
    return scenario

def count_lines(path):
    try: return path.read_bytes().count(b"\n")
    except OSError: return 0

def ws_reference(ws): return json.loads((ws / "reference.json").read_text())

def timed_cases():
    cut = lambda run: (run / "log.jsonl").write_bytes((run / "log.jsonl").read_bytes()[:-25])
    return [Case("two expo run on one --out, started together", run_cmd(), custom=two_writers(0.0)),
            Case("two expo run on one --out, 3 s apart", run_cmd(), custom=two_writers(3.0)),
            *[Case(f"SIGKILL after {k} records, then resume", run_cmd(), "accept",
                   custom=interrupted(k, signal.SIGKILL)) for k in (0, 2)],
            Case("SIGKILL after 2 records, cut the last line, then resume", run_cmd(), "accept",
                 custom=interrupted(2, signal.SIGKILL, cut)),
            Case("SIGKILL after 2 records, delete the checkpoint, then resume", run_cmd(), "accept",
                 custom=interrupted(2, signal.SIGKILL, delete("checkpoint.json"))),
            Case("SIGINT (Ctrl-C) after 1 record, then resume", run_cmd(), "accept",
                 custom=interrupted(1, signal.SIGINT)),
            Case("SIGTERM after 1 record, then resume", run_cmd(), "accept", custom=interrupted(1, signal.SIGTERM))]

# ---------------------------------------------------------------------------------------------------------------
# Running and judging one case

def message_lines(text):
    "The non-empty lines of an output, without progress-bar frames (tqdm writes them to stderr)."
    frames = [part for line in text.splitlines() for part in line.split("\r")]
    return [part for part in frames if part.strip() and "%|" not in part]

def one_line(text): return len(message_lines(text)) == 1

def classify(code, out, err, hung):
    text = out + err
    if hung: return "other"
    if "Traceback" in text: return "traceback"
    if code == 0: return "accepted"
    usage = err.lstrip().startswith("Usage:") and "Error" in err
    if code == 2 and (one_line(err) or (not err.strip() and one_line(out)) or usage): return "clear error"
    return "other"

def judge_log(case, folder, ws, before, code):
    "(data_loss, repaired) for a case on ./run."
    after_bytes = read_bytes(folder / "run" / "log.jsonl")
    repaired = records(folder / "run" / "log.jsonl") == ws_reference(ws)
    if case.check == "finished": return (not repaired and after_bytes != before), repaired
    if code == 0: return not repaired, repaired                  # a resumed run must equal an uninterrupted one
    return after_bytes != before, repaired                       # an error rewrites nothing

def run_case(case: Case, index: int, ws: Path, timeout: float) -> dict:
    folder = ws / "cases" / f"{index:03d}"
    folder.mkdir(parents=True)
    start = time.time()
    if case.custom: result = case.custom(case, folder, ws, timeout)
    else: result = run_plain(case, folder, ws, timeout)
    result.update(name=case.name, command="expo " + " ".join(map(quote, expand(case.args, ws))).replace(str(ws), "$WS"),
                  expect=case.expect, note=case.note, seconds=round(time.time() - start, 1))
    result["failing"] = failing(result)
    return result

def run_plain(case, folder, ws, timeout):
    if case.template: shutil.copytree(ws / "templates" / case.template, folder / "run")
    if case.setup: case.setup(folder / "run" if case.template else folder)
    before = read_bytes(folder / "run" / "log.jsonl")
    prior = [expo(args, folder, ws, timeout) for args in case.before]
    code, out, err, hung = expo(case.args, folder, ws, timeout)
    outcome = classify(code, out, err, hung)
    if any(classify(*p) != "clear error" for p in prior): outcome = "other"
    loss, repaired = judge_log(case, folder, ws, before, code) if case.check else (False, False)
    return {"returncode": code, "outcome": outcome, "data_loss": loss, "repaired": repaired,
            "output": "".join(p[1] + p[2] for p in prior) + out + err}

def failing(result):
    "Why a result is a failure, or '' when it is a clear error or a legitimate acceptance."
    outcome, expect = result["outcome"], result["expect"]
    if result["data_loss"]: return "data loss"
    if outcome in ("traceback", "other"): return outcome
    if outcome == "accepted" and expect == "error": return "accepted a bad input"
    if outcome == "accepted" and expect == "repair" and not result.get("repaired"):
        return "accepted a damaged run as it is"
    if outcome == "clear error" and expect == "accept": return "refused a valid input"
    return ""

def quote(arg): return arg if arg and all(c.isalnum() or c in "-_.:/,=+@{}$" for c in arg) else repr(arg)

# ---------------------------------------------------------------------------------------------------------------
# Workspace: the variants file and the prepared run directories every case copies

def snapshot(ws: Path):
    "Copy expo_nb into the workspace: others may export new code while the battery runs, and every case must test one."
    shutil.copytree(ROOT / "expo_nb", ws / "snapshot" / "expo_nb", ignore=shutil.ignore_patterns("__pycache__"))
    probe = [str(ROOT / ".venv" / "bin" / "python"), "-c", "import expo_nb; print(expo_nb.__file__)"]
    where = subprocess.run(probe, cwd=ws, env={**ENV, "PYTHONPATH": str(ws / "snapshot")}, capture_output=True,
                           text=True)
    if not where.stdout.startswith(str(ws)): sys.exit(f"the snapshot is not the imported package: {where.stdout}")

def prepare(ws: Path, timeout):
    snapshot(ws)
    (ws / "variants.json").write_text(json.dumps(VARIANTS))
    templates = ws / "templates"
    templates.mkdir()
    runs = {"finished": run_cmd("finished"), "finished-16": run_cmd("finished-16", embedder="hashing:16"),
            "partial": run_cmd("partial", iterations=str(PARTIAL)), "opro": run_cmd("opro", method="opro")}
    for name, args in runs.items():
        code, out, err, _ = expo(args, templates, ws, timeout)
        if code != 0: sys.exit(f"cannot prepare the {name} run:\n{out}{err}")
    for name in ("summary.json", "config.json"): (templates / "partial" / name).unlink()   # resumable to ITERATIONS
    (ws / "reference.json").write_text(json.dumps(records(templates / "finished" / "log.jsonl")))

def all_cases():
    return option_cases() + domain_file_cases() + out_and_prompt_cases() + other_command_cases() + damage_cases() \
        + timed_cases()

# ---------------------------------------------------------------------------------------------------------------
# Report

COLUMNS = ("tried", "clear errors", "tracebacks", "accepted", "other", "data loss", "failing")

def counts(results):
    by = lambda outcome: sum(r["outcome"] == outcome for r in results)
    return {"tried": len(results), "clear errors": by("clear error"), "tracebacks": by("traceback"),
            "accepted": by("accepted"), "other": by("other"), "data loss": sum(r["data_loss"] for r in results),
            "failing": sum(bool(r["failing"]) for r in results)}

def tail(text, n=4):
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-n:]

def report(results, seconds):
    total = counts(results)
    print("\n" + " | ".join(f"{c:>12s}" for c in COLUMNS))
    print(" | ".join(f"{total[c]:>12d}" for c in COLUMNS))
    print(f"\n{len(results)} cases in {seconds:.0f} s")
    bad = [r for r in results if r["failing"]]
    if bad: print(f"\n{len(bad)} failing cases:")
    for r in bad:
        print(f"\n- [{r['failing']}] {r['name']} (exit {r['returncode']}){' -- ' + r['note'] if r['note'] else ''}")
        print(f"  $ {r['command'][:300]}")
        for line in tail(r["output"]): print(f"  | {line[:300]}")
    return total

def code_version():
    "The commit and the files of expo_nb that differ from it (taken with the snapshot)."
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_in_expo_nb": git("status", "--short", "--", "expo_nb").splitlines()}

def write_results(results, total, seconds, version):
    failing_cases = [{"name": r["name"], "why": r["failing"], "command": r["command"], "returncode": r["returncode"],
                      "note": r["note"], "output_tail": tail(r["output"], 8)} for r in results if r["failing"]]
    RESULTS.write_text(json.dumps({
        **version, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds),
        "counts": total, "failing": failing_cases,
        "cases": [{"name": r["name"], "expect": r["expect"], "outcome": r["outcome"], "data_loss": r["data_loss"]}
                  for r in results]}, indent=1) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--timeout", type=float, default=180, help="seconds before a command counts as hung")
    parser.add_argument("--only", default="", help="run only the cases whose name matches this regular expression")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    cases = [c for c in all_cases() if re.search(args.only, c.name)]
    ws = Path(tempfile.mkdtemp(prefix="expo-hostile-"))
    start, version = time.time(), code_version()
    try:
        prepare(ws, args.timeout)
        done = threading.Lock()
        def one(item):
            index, case = item
            result = run_case(case, index, ws, args.timeout)
            with done: print(f"{index + 1:3d}/{len(cases)} {result['outcome']:11s} {result['failing'] or 'ok':22s} "
                             f"{result['seconds']:5.1f}s  {case.name}", flush=True)
            return result
        with ThreadPoolExecutor(max(1, args.jobs)) as pool: results = list(pool.map(one, enumerate(cases)))
    finally:
        if args.keep: print(f"workspace kept: {ws}")
        else: shutil.rmtree(ws, ignore_errors=True)
    seconds = time.time() - start
    total = report(results, seconds)
    if not args.no_write and not args.only: write_results(results, total, seconds, version)

if __name__ == "__main__":
    main()
