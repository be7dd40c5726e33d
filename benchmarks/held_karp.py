"Held-Karp (expo_nb.task_tsp.held_karp) on the paper's TSP sizes: wall time and peak numpy memory, one core."
import json
import os
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
from expo_nb.task_tsp import TspTask, held_karp


def main(sizes=(10, 15, 20), repeats=2):
    rows = []
    for n in sizes:
        distances = TspTask(n=n, instance_seed=0).distances
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); length, tour = held_karp(distances); times.append(time.perf_counter() - start)
        tracemalloc.start(); held_karp(distances); peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
        rows.append({"n": n, "seconds_best_of": min(times), "repeats": repeats, "peak_mib": peak / 2**20,
                     "optimal_length": length})
    print(f"{'n':>3}{'seconds':>10}{'peak MiB':>10}{'optimum':>10}")
    for r in rows: print(f"{r['n']:>3}{r['seconds_best_of']:>10.3f}{r['peak_mib']:>10.1f}{r['optimal_length']:>10.1f}")
    out = Path(__file__).parent / "results" / "held_karp.json"; out.parent.mkdir(exist_ok=True)
    note = "instance_seed=0, integer coordinates; shared 2-core machine"
    out.write_text(json.dumps({"rows": rows, "note": note}, indent=2) + "\n")

if __name__ == "__main__": main()
