"""Copy a finished reproduction run (or a generated domain) from its working directory into the committed
results tree in compact form, and commit it: config.json, log.jsonl, summary.json and the run's response cache
(only the chat replies this run used, vacuumed; embedding vectors are dropped), or a domain's domain.json and
embeddings.npz. Model files, checkpoints,
locks and figures are never copied.

    python tools/repro_commit.py WORK_DIR DEST_DIR [--no-commit] [--partial]
    python tools/repro_commit.py --unfinished WORK_ROOT KEEP_ROOT [--no-commit]

--partial keeps what an unfinished run or domain generation has done so far: its response cache, compacted, as
DEST/partial-cache.sqlite. The next session's tools/repro.sh restores it into the working directory, where the
run replays the cached iterations (seconds each, no model needed for them) and goes on from there, so a run
longer than what is left of a session is not lost. --unfinished does this for every unfinished run and domain
under WORK_ROOT (a session's last step). A finished run's partial cache is deleted in the commit that keeps it.
"""
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

RUN_FILES = ("config.json", "log.jsonl", "summary.json")
DOMAIN_FILES = ("domain.json", "embeddings.npz")

def compact_cache(source: Path, dest: Path) -> None:
    "A vacuumed single-file copy of a SQLite cache (its WAL folded in), without embedding vectors."
    dest.unlink(missing_ok=True)
    with sqlite3.connect(source) as conn: conn.execute("VACUUM INTO ?", (str(dest),))
    # EXPO-ES embeds 257 candidate exemplar blocks per iteration (~100 MB of vectors per run): too big to
    # commit. The chat replies stay, so EXPO / OPRO / NeuralUCB runs replay with no model at all; EXPO-ES
    # runs replay with the local embedder recomputing the vectors.
    conn = sqlite3.connect(dest)
    conn.execute("""DELETE FROM responses WHERE value LIKE '{"vector":%'""")
    conn.commit()
    conn.execute("VACUUM")
    conn.close()

def copy_compact(work: Path, dest: Path) -> list[Path]:
    "Copy what is worth keeping; return the copied paths (empty when `work` is not finished)."
    dest.mkdir(parents=True, exist_ok=True)
    if (work / "summary.json").exists():
        names = RUN_FILES
        if (work / "cache.sqlite").exists(): compact_cache(work / "cache.sqlite", dest / "cache.sqlite")
    elif (work / "domain.json").exists(): names = DOMAIN_FILES
    else: return []
    for name in names: shutil.copy2(work / name, dest / name)
    stale = dest / "partial-cache.sqlite"         # an earlier session's part of this run: superseded
    stale.unlink(missing_ok=True)
    return [dest / n for n in (*names, "cache.sqlite") if (dest / n).exists()] + [stale]

def commit(paths: list[Path], message: str) -> None:
    "git add + commit only these paths (a deleted one only if git tracks it), retrying while git is busy."
    tracked = subprocess.run(["git", "ls-files", "--", *map(str, paths)], capture_output=True, text=True).stdout
    paths = [p for p in paths if p.exists() or str(p) in tracked.splitlines()]
    for attempt in range(30):
        add = subprocess.run(["git", "add", "--", *map(str, paths)], capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(["git", "commit", "-q", "-m", message, "--", *map(str, paths)],
                                                      capture_output=True, text=True).returncode in (0, 1)
        if done: return
        time.sleep(2)
    print(f"repro_commit: could not commit {paths[0].parent}", file=sys.stderr)

def keep_partial(work: Path, dest: Path) -> list[Path]:
    "The replies an unfinished run or domain generation got so far, as DEST/partial-cache.sqlite."
    if not (work / "cache.sqlite").exists() or (dest / "summary.json").exists() or (dest / "domain.json").exists():
        return []
    dest.mkdir(parents=True, exist_ok=True)
    compact_cache(work / "cache.sqlite", dest / "partial-cache.sqlite")
    return [dest / "partial-cache.sqlite"]

def unfinished(work_root: Path) -> list[Path]:
    "Working directories under `work_root` with a response cache but no summary.json / domain.json."
    return sorted(cache.parent for cache in work_root.glob("**/cache.sqlite")
                  if not (cache.parent / "summary.json").exists() and not (cache.parent / "domain.json").exists())

def keep_unfinished(work_root: Path, keep_root: Path) -> None:
    "keep_partial for every unfinished working directory, one commit each."
    for work in unfinished(work_root):
        paths = keep_partial(work, keep_root / work.relative_to(work_root))
        if paths and "--no-commit" not in sys.argv: commit(paths, f"repro: {paths[0].parent} (partial)")
        print(f"kept {paths[0] if paths else 'nothing'} of {work}")

if __name__ == "__main__":
    if sys.argv[1] == "--unfinished":
        keep_unfinished(Path(sys.argv[2]), Path(sys.argv[3]))
        sys.exit(0)
    work, dest = Path(sys.argv[1]), Path(sys.argv[2])
    paths = keep_partial(work, dest) if "--partial" in sys.argv else copy_compact(work, dest)
    if not paths: sys.exit(f"repro_commit: {work} is neither a finished run nor a saved domain")
    kind = "partial" if "--partial" in sys.argv else "run" if (dest / "log.jsonl").exists() else "domain"
    protocol = next((p for p in dest.parents if (p / "PROTOCOL.md").exists()), None)
    if kind == "run" and protocol is not None:   # the runs table of PROTOCOL.md, in the same commit
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from protocol_table import update
        paths.append(update(protocol))
    if "--no-commit" not in sys.argv: commit(paths, f"repro: {dest} ({kind})")
    print(f"kept {dest}")
