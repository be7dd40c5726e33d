"""The table of finished reproduction runs in nbs/results/paper/PROTOCOL.md, rewritten from the committed runs
(between the markers RUNS_BEGIN and RUNS_END). tools/repro_commit.py calls it for every run it commits;
`python tools/protocol_table.py` rewrites it by hand. Standard library only (the reproduction runs beside it)."""
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "paper"
BEGIN, END = "<!-- RUNS_BEGIN (tools/protocol_table.py) -->", "<!-- RUNS_END -->"
HEADER = ("| group | method | seed | iterations | wall time (median per iteration) | final metric | arms played "
          "| entropy, first -> last (nats) |\n|---|---|---|---|---|---|---|---|")


def run_row(run_dir: Path, root: Path) -> str:
    "One Markdown row for a finished run directory."
    summary = json.loads((run_dir / "summary.json").read_text())
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    config = json.loads((run_dir / "config.json").read_text())
    walls = [r["wall_s"] for r in log if isinstance(r.get("wall_s"), (int, float))]
    median = f" ({statistics.median(walls):.0f} s)" if walls else ""
    entropy = [r.get("entropy") for r in (log[0], log[-1])] if log else [None, None]
    spread = " -> ".join(f"{e:.2f}" for e in entropy) if None not in entropy else "-"
    group = "/".join(run_dir.relative_to(root).parts[:-2])
    return (f"| {group} | {run_dir.parent.name} | {config.get('seed')} | {len(log)} / {config.get('iterations')} "
            f"| {summary.get('wall_s', 0):,.0f} s{median} | {summary.get('final_metric'):.4g} "
            f"| {summary.get('arms_used', '-')} | {spread} |")


def update(root: Path = ROOT) -> Path:
    "Rewrite the runs table of root/PROTOCOL.md; return its path."
    path = root / "PROTOCOL.md"
    text = path.read_text()
    if BEGIN not in text or END not in text: sys.exit(f"{path} has no {BEGIN} ... {END} markers")
    rows = [run_row(summary.parent, root) for summary in sorted(root.glob("**/seed-*/summary.json"))]
    table = "\n".join([HEADER, *rows]) if rows else "(no finished runs yet)"
    head, rest = text.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}")
    return path


if __name__ == "__main__":
    print(f"rewrote {update(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)}")
