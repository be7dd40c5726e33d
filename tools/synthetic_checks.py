"""Run open checks 1 and 2 on the synthetic prompt bandit (35_claims: SYNTHETIC_CHECKS x SYNTHETIC_METHODS, 6 seeds)
and write their runs table to nbs/results/paper/synthetic/runs.csv, which the verdict table reads. About 40 s on 2
cores; `python tools/synthetic_checks.py [OUT.csv]`."""
import sys
from pathlib import Path

from expo_nb.claims import RUN_COLUMNS, SYNTHETIC_RUNS, synthetic_runs_table


def main(out: Path) -> None:
    table = synthetic_runs_table()
    out.parent.mkdir(parents=True, exist_ok=True)
    table[list(RUN_COLUMNS)].to_csv(out, index=False, float_format="%.17g")
    print(f"wrote {out}: {table.run.nunique()} runs")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1] / "nbs" / "results" / "paper"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else root / SYNTHETIC_RUNS)
