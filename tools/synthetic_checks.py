"""Run open checks 1 and 2 on the synthetic prompt bandit (35_claims: SYNTHETIC_CHECKS x SYNTHETIC_METHODS) and write
their runs table to nbs/results/paper/synthetic/runs.csv, which the verdict table reads. 60 seeds by default (6 seeds
left both checks inconclusive, needing about 40 and 190 seeds at the variance they showed); about 7 s per seed on
one core: `python tools/synthetic_checks.py [OUT.csv] [--seeds N]`."""
import argparse
from pathlib import Path

from expo_nb.claims import RUN_COLUMNS, SYNTHETIC_RUNS, synthetic_runs_table


def main(out: Path, seeds: int = 60) -> None:
    table = synthetic_runs_table(seeds=range(seeds))
    out.parent.mkdir(parents=True, exist_ok=True)
    table[list(RUN_COLUMNS)].to_csv(out, index=False, float_format="%.17g")
    print(f"wrote {out}: {table.run.nunique()} runs")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1] / "nbs" / "results" / "paper"
    parser = argparse.ArgumentParser(description="open checks 1 and 2 on the synthetic prompt bandit")
    parser.add_argument("out", nargs="?", type=Path, default=root / SYNTHETIC_RUNS)
    parser.add_argument("--seeds", type=int, default=60)
    args = parser.parse_args()
    main(args.out, args.seeds)
