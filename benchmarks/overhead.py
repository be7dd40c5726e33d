"""EXPO's own overhead per iteration: train the score network, predict every arm, sample the next arm.

For domains of k x k arms (k = 11, 101, 301) with 3072-d embeddings per component (6144-d arm features, as
with text-embedding-3-large) and t told points of history, measure in a fresh process per row:
  Each time is the fastest of --repeats runs (the machine is shared).
  * `fit_ms`: `ScoreEstimator.fit` on t points (6144 -> 1536 -> 1 network, `EstimatorConfig()` defaults,
    i.e. 50 full-batch SGD-with-momentum steps, retrained from the seeded initialisation), once per
    `input_projection`: "domain" (the default: the first layer sees the 2k span coordinates of the domain and
    starts at W0 Q, so that under this optimizer it is exactly the raw network, 11_estimator) and "none" (raw
    6144-d inputs, the paper's literal network),
  * `predict_domain_ms`: the factorized prediction of all k*k arms,
  * `tell_ms`: one `ExpoSelector.tell` (fit + predict_domain + cumulative update),
  * `ask_ms`: one `ExpoSelector.ask` (max-shifted softmax over k*k arms + one draw), mean of 50,
  * `ms_per_iteration` = tell_ms + ask_ms,
  * `naive_predict_ms` (k <= 101): the same prediction from explicitly concatenated features, built in
    blocks of 4096 arms, and `factorized_speedup` = naive / factorized,
  * `peak_mb`: the process's peak resident memory (includes the ~0.3-0.5 GB of the Python + torch
    runtime), `domain_mb`: the embeddings held by the PromptDomain, `naive_features_mb`: what the
    materialized k*k x 6144 float32 feature matrix would take.
Embeddings are random unit vectors and scores random (values do not change the cost).
Prints a table and writes benchmarks/results/overhead.json (a list of rows).

usage: python benchmarks/overhead.py [--threads 2] [--epochs 50] [--repeats 2] [--sizes 11 101 301]
                                    [--histories 10 50 100 300] [--projections domain none]
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "overhead.json"


def best_ms(fn, repeats):
    "Fastest of `repeats` timed calls, in ms (the machine is shared: the minimum is the least disturbed)."
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(1e3 * (time.perf_counter() - start))
    return min(times)


def one_row(k, t, epochs, threads, repeats, projection):
    "Measure one (k, t) configuration in this process."
    import torch

    from expo_nb.core import PromptDomain, make_rng
    from expo_nb.estimator import EstimatorConfig, ScoreEstimator
    from expo_nb.exp3 import ExpoSelector
    torch.set_num_threads(threads)
    rng = make_rng(0)
    unit = lambda n: (lambda e: (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32))(
        rng.normal(size=(n, 3072)))
    domain = PromptDomain([f"D{i}" for i in range(k)], [f"I{j}" for j in range(k)], unit(k), unit(k))
    config = EstimatorConfig(epochs=epochs, input_projection=projection)
    arms, scores = rng.integers(0, domain.n_arms, size=t), rng.uniform(size=t)
    features = domain.features(arms)
    estimator = ScoreEstimator(config)
    # warm-up: torch's lazy init
    ScoreEstimator(EstimatorConfig(epochs=1)).fit(features, scores).predict_domain(domain)
    estimator.fit(features, scores, domain=domain)   # the span bases are computed once per domain, not per iteration
    fit_ms = best_ms(lambda: estimator.fit(features, scores, domain=domain), repeats)
    predict_ms = best_ms(lambda: estimator.predict_domain(domain), repeats)
    fast = estimator.predict_domain(domain)
    row = {"arms_per_part": k, "n_arms": domain.n_arms, "history": t, "input_projection": projection,
           "first_layer_inputs": estimator.network[0].in_features, "epochs": epochs, "threads": threads,
           "repeats": repeats, "fit_ms": fit_ms, "predict_domain_ms": predict_ms}
    if k <= 101:
        naive_predict = lambda: np.concatenate(
            [estimator.predict(domain.features(range(s, min(s + 4096, domain.n_arms))))
             for s in range(0, domain.n_arms, 4096)])
        row["naive_predict_ms"] = best_ms(naive_predict, repeats)
        naive = naive_predict()
        row["factorized_speedup"] = row["naive_predict_ms"] / predict_ms
        row["max_abs_difference"] = float(np.abs(naive - fast).max())
    selector = ExpoSelector(domain, eta=100.0, estimator=config, seed=0)
    def one_tell():
        selector.history = [(int(a), float(s)) for a, s in zip(arms[:-1], scores[:-1])]
        selector.tell(int(arms[-1]), float(scores[-1]))
    one_tell()   # warm-up: a running selector computed its domain bases at its first tell, long ago
    row["tell_ms"] = best_ms(one_tell, repeats)
    start = time.perf_counter()
    for _ in range(50): selector.ask()
    row["ask_ms"] = 1e3 * (time.perf_counter() - start) / 50
    row["ms_per_iteration"] = row["tell_ms"] + row["ask_ms"]
    row["domain_mb"] = (domain.description_embeddings.nbytes + domain.instruction_embeddings.nbytes) / 2**20
    row["naive_features_mb"] = domain.n_arms * domain.feature_dim * 4 / 2**20
    row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[11, 101, 301])
    parser.add_argument("--histories", type=int, nargs="+", default=[10, 50, 100, 300])
    parser.add_argument("--repeats", type=int, default=2, help="timed repetitions; the fastest is reported")
    parser.add_argument("--projections", nargs="+", default=["domain", "none"], choices=["domain", "none"])
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)   # internal: k t projection, run in this process
    args = parser.parse_args()
    if args.one:
        k, t, projection = args.one
        print(json.dumps(one_row(int(k), int(t), args.epochs, args.threads, args.repeats, projection))); return
    rows = []
    header = (f"{'inputs':>7} {'k x k':>9} {'t':>4} {'fit ms':>8} {'pred ms':>8} {'naive ms':>9} {'speedup':>8} "
              f"{'tell ms':>8} {'ask ms':>7} {'ms/iter':>8} {'peak MB':>8}")
    print(header); print("-" * len(header))
    for projection, k, t in ((p, k, t) for p in args.projections for k in args.sizes for t in args.histories):
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        command = [sys.executable, __file__, "--one", str(k), str(t), projection, "--epochs", str(args.epochs),
                   "--threads", str(args.threads), "--repeats", str(args.repeats)]
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1]); rows.append(row)
        naive = (f"{row['naive_predict_ms']:9.0f} {row['factorized_speedup']:7.0f}x" if "naive_predict_ms" in row
                 else f"{'-':>9} {'-':>8}")
        print(f"{projection:>7} {k:>4} x{k:<4} {t:>4} {row['fit_ms']:8.0f} {row['predict_domain_ms']:8.1f} {naive}"
              f" {row['tell_ms']:8.0f} {row['ask_ms']:7.2f} {row['ms_per_iteration']:8.0f} {row['peak_mb']:8.0f}",
              flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "torch_threads": args.threads, "python": platform.python_version()}
    RESULTS.write_text(json.dumps([{**row, **meta} for row in rows], indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
