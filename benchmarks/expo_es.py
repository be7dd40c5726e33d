"""Cost of one EXPO-ES ask() with a long parameter history.

At t = 300 stored exemplar networks (hidden 512) and 257 candidates, for embedding dimension 384 (MiniLM,
the offline default) and 3072 (text-embedding-3-large, the paper), measure:
  * one full `ExpoEsSelector.ask()` (candidate draw + cached embedding look-up + batched scoring + sampling),
  * the batched evaluation of all stored networks (`NetworkHistory.predict_sum`),
  * the same sum computed with a Python loop over networks (the naive implementation),
  * one `tell()` at t records (retraining the network on all of them for the default 50 epochs),
  * the memory held by the parameter history.
Networks are random (their values do not change the cost); embeddings come from a deterministic stand-in
embedder so no model is loaded. Prints a table and writes benchmarks/results/expo_es.json.

usage: python benchmarks/expo_es.py [--threads 1] [--networks 300] [--repeats 3]
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from expo_nb.core import Exemplar
from expo_nb.expo_es import ExpoEsSelector

RESULTS = Path(__file__).resolve().parent / "results" / "expo_es.json"


class RandomEmbedder:
    "Deterministic stand-in: a fixed random unit vector per text."
    def __init__(self, dimension):
        self.dimension, self.identity = dimension, f"random-{dimension}"
    def embed(self, texts):
        out = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=self.dimension) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def render(seq):
    return "\n".join(f"x={e.action} value={e.objective:g}" for e in seq)


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return min(times)


def loop_sum(history, x):
    "The naive way: one forward pass per stored network, in Python."
    xt = torch.as_tensor(x)
    buffers, total = history._buffers, torch.zeros(x.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for i in range(len(history)):
            total += (torch.relu(xt @ buffers["W1"][i].T + buffers["b1"][i]) @ buffers["w2"][i]
                      + buffers["b2"][i]).double()
    return total.numpy()


def measure(dimension, networks, hidden, repeats):
    es = ExpoEsSelector(RandomEmbedder(dimension), render, size=20, pool=30, n_random=256, eta=10.0, hidden=hidden,
                        seed=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(networks):   # random stored networks: same cost as trained ones, no 300 trainings needed
        es.networks.append({"W1": torch.randn(hidden, dimension, generator=gen) / dimension ** 0.5,
                            "b1": torch.randn(hidden, generator=gen) * 0.1,
                            "w2": torch.randn(hidden, generator=gen) / hidden ** 0.5, "b2": torch.zeros(())})
    rng = np.random.default_rng(0)
    history = [Exemplar(k, float(v), float(-v)) for k, v in enumerate(rng.random(networks + 5))]
    es.ask(history)                                          # warm-up; fills the embedding cache for these candidates
    candidates = es.last_candidates
    x = es.embed(candidates)
    ask_s = best_of(lambda: es.ask(history), repeats)        # new random candidates each call: embedding included
    batched_s = best_of(lambda: es.networks.predict_sum(x), repeats)
    loop_s = best_of(lambda: loop_sum(es.networks, x), repeats)
    max_diff = float(np.abs(es.networks.predict_sum(x) - loop_sum(es.networks, x)).max())
    parameter_bytes = es.parameter_bytes
    # one tell() at t records: embed (cached) + retrain the network on all t records + store it
    es.features = list(RandomEmbedder(dimension).embed([f"record {i}" for i in range(networks - 2)]))
    es.scores = list(rng.random(networks - 2))
    tells = []
    for _ in range(2):   # the first tell also pays one-off warm-up costs; keep the faster one
        pick = es.ask(history)
        start = time.perf_counter(); es.tell(pick, 0.5); tells.append(time.perf_counter() - start)
    tell_s = min(tells)
    return {"dimension": dimension, "networks": networks, "hidden": hidden, "candidates": len(candidates),
            "ask_s": ask_s, "tell_s": tell_s, "batched_s": batched_s, "loop_s": loop_s,
            "loop_over_batched": loop_s / batched_s,
            "max_abs_diff": max_diff, "parameter_bytes": parameter_bytes,
            "parameter_mib": parameter_bytes / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--networks", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=["384x512", "3072x512", "64x32"],
                        help="DIMENSIONxHIDDEN; the last default is a tiny network where per-network overhead "
                             "dominates")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = (shape.split("x") for shape in args.shapes)
    rows = [measure(int(d), args.networks, int(h), args.repeats) for d, h in shapes]
    print(f"EXPO-ES ask() cost, {args.networks} stored networks, torch threads={args.threads}, best of {args.repeats}")
    print(f"{'dim':>5} {'hidden':>6} {'cands':>5} {'ask() s':>8} {'tell() s':>8} {'batched s':>9} {'loop s':>8} "
          f"{'loop/batched':>12} {'params MiB':>10} {'max|diff|':>10}")
    for r in rows:
        print(f"{r['dimension']:>5} {r['hidden']:>6} {r['candidates']:>5} {r['ask_s']:>8.3f} {r['tell_s']:>8.3f} "
              f"{r['batched_s']:>9.3f} {r['loop_s']:>8.3f} {r['loop_over_batched']:>12.2f} {r['parameter_mib']:>10.1f} "
              f"{r['max_abs_diff']:>10.2e}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "expo_es", "torch": torch.__version__, "threads": args.threads,
                                   "machine": f"{platform.machine()} {os.cpu_count()} cpus (shared)",
                                   "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
