"""Embedded LLM speed on this machine, and what batching the samples of an iteration and keeping prompt states gain.

Reports, in one run: load time; raw prompt and decode throughput (one sequence, and 8 sequences in one llama_batch:
the limit for our 8-sample iterations); one sample, 8 samples one after the other (the earlier path) and 8 decoded
together; one 8-sample iteration with and without prompt-prefix reuse (earlier path); EXPO runs on TSP-10 and linear
regression at the paper's settings (8 samples per iteration, the tasks' own max_tokens) with the earlier path and the
new one; the rephrasings of a 21 x 21 domain with both paths; and the fraction of prompt tokens reused.
The machine is shared with other jobs: before/after pairs run back to back in one process and the ratios are the result.

Usage: python benchmarks/local_llm.py [--model qwen1.5b|smollm135m] [--paper-iterations 10] [--threads N]
                                     [--no-reuse]"""
import argparse
import json
import tempfile
import time
from pathlib import Path

from expo_nb.core import batch_requests
from expo_nb.local import LocalChat, chat_prompt


def meta_prompt(n_rows: int = 40) -> list[dict]:
    "An OPRO linear-regression-like meta-prompt of roughly 900 tokens."
    rows = "\n".join(f"input:\nw={10 + (7 * i) % 23}, b={3 + (11 * i) % 31}\nvalue:\n{90000 - 2000 * i}"
                     for i in range(n_rows))
    return [{"role": "user", "content": "Now you will help me minimize a function with two input variables w, b. "
             "I have some (w, b) pairs and the function values at those points. The pairs are arranged in "
             f"descending order based on their function values, where lower values are better.\n\n{rows}\n\n"
             "Give me a new (w, b) pair that is different from all pairs above, and has a function value lower than "
             "any of the above. Do not write code. The output must end with a pair [w, b], where w and b are "
             "numerical values."}]

def timed(fn) -> tuple[float, object]:
    start = time.perf_counter(); out = fn(); return time.perf_counter() - start, out

def raw_throughput(chat: LocalChat, messages, steps: int = 16) -> dict:
    """Prompt tokens/s (from scratch) and the cost of one decode step of 1, 2, ..., 8 sequences, straight on the
    engine (no sampling, no stop checks): the limit our batched path is measured against."""
    prompt, _ = chat_prompt(chat.load(), messages)
    engine = chat._engine
    prompt_s, _ = timed(lambda: engine.prepare(prompt, reuse=False))
    step_s = {}
    for n in [*range(1, 9)] * 2:                                    # interleaved, best of two
        for seq in range(1, n + 1): engine.lc.llama_memory_seq_cp(engine.mem, 0, seq, -1, -1)
        def run():
            for k in range(steps):
                engine.fill([(1000 + k, len(prompt) + k, seq, True) for seq in range(1, n + 1)]); engine.decode()
        seconds, _ = timed(run); step_s[n] = min(step_s.get(n, 1e9), seconds / steps)
        for seq in range(1, n + 1): engine.lc.llama_memory_seq_rm(engine.mem, seq, -1, -1)
    return {"raw_prompt_tok_s": round(len(prompt) / prompt_s, 1), "raw_decode_tok_s": round(1 / step_s[1], 1),
            "batch8_decode_tok_s": round(8 / step_s[8], 1), "step_ms_1": round(1000 * step_s[1], 1),
            "step_ms_8": round(1000 * step_s[8], 1),
            "step_ms_by_batch": [round(1000 * step_s[n], 1) for n in range(1, 9)]}

def decode_limit_s(lengths: list[int], step_ms_by_batch: list[float]) -> float:
    """The raw engine time of decoding samples of these lengths together: one step per token after the first
    (which comes from the prompt's logits), each step costing what a step of that many live sequences costs."""
    steps = [sum(length - 1 > t for length in lengths) for t in range(max(lengths) - 1)]
    return sum(step_ms_by_batch[n - 1] for n in steps if n) / 1000

def earlier_keys(model: str, messages, max_tokens: int, threads: int, no_reuse: bool, previous: dict) -> dict:
    """The keys of the first version of this benchmark, on the earlier path (one request after the other). The iteration
    without prefix reuse evaluates the prompt 8 times (minutes on a busy machine): measured only with `no_reuse`,
    else carried over from the previous result file."""
    chat = LocalChat(model, n_ctx=2048, n_threads=threads, batched=False)
    load_s, llama = timed(chat.load)
    llama.reset()
    prompt_s, first = timed(lambda: llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=1))
    prompt_tokens = first["usage"]["prompt_tokens"]
    gen_s, gen = timed(lambda: llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=max_tokens))
    batch = batch_requests(messages, [1.0] * 7 + [0.0], max_tokens=max_tokens, tag="bench")
    timings = {}
    for reuse in (True, False) if no_reuse else (True,):
        chat.reuse_prefix = reuse; llama.reset(); timings[reuse], _ = timed(lambda: chat.complete(batch))
    timings.setdefault(False, previous.get("iteration_s_without_reuse", float("nan")))
    return {"model": model, "load_s": round(load_s, 2), "prompt_tokens": prompt_tokens, "max_tokens": max_tokens,
            "prompt_tok_s": round(prompt_tokens / prompt_s, 1),
            "gen_tok_s": round(gen["usage"]["completion_tokens"] / gen_s, 1),
            "iteration_s_with_reuse": round(timings[True], 1), "iteration_s_without_reuse": round(timings[False], 1),
            "speedup_from_reuse": round(timings[False] / timings[True], 2), "n_threads": chat.n_threads}

def sample_timings(model: str, messages, max_tokens: int, threads: int) -> dict:
    "One sample, 8 samples one after the other, 8 together; the prompt already evaluated in each case (decode only)."
    old, new = LocalChat(model, n_threads=threads, batched=False), LocalChat(model, n_threads=threads)
    one = batch_requests(messages, [1.0], max_tokens, tag="one")
    eight = batch_requests(messages, [1.0] * 7 + [0.0], max_tokens, tag="eight")
    for chat in (old, new): chat.complete(batch_requests(messages, [0.0], 1, tag="warm"))  # load, evaluate the prompt
    out = {}
    for rep in range(2):                                            # interleaved, best of two
        for key, chat, batch in (("single_sample_s", new, one), ("batch8_sequential_s", old, eight),
                                 ("batch8_batched_s", new, eight)):
            seconds, replies = timed(lambda: chat.complete(batch))
            if seconds < out.get(key, (1e9,))[0]: out[key] = (seconds, [r.completion_tokens for r in replies])
    lengths = out["batch8_batched_s"][1]
    tokens = sum(lengths)
    out = {k: (v[0], sum(v[1])) for k, v in out.items()}
    return {**{k: round(v[0], 2) for k, v in out.items()}, "batch8_tokens": tokens, "batch8_lengths": lengths,
            "batch8_batched_tok_s": round(tokens / out["batch8_batched_s"][0], 1),
            "batch8_sequential_tok_s": round(out["batch8_sequential_s"][1] / out["batch8_sequential_s"][0], 1)}

def domain_rephrasings(chat: LocalChat, task_name: str, k: int, tag: str) -> tuple[float, list[str]]:
    """The rephrasing part of a (k + 1) x (k + 1) domain for `task_name`: k rephrasings of its description and k of
    its meta-instruction, one round (no re-asking, so that both paths do the same number of requests)."""
    import warnings

    from expo_nb.domain import generate_rephrasings
    from expo_nb.runner import RunConfig, build_task
    task = build_task(RunConfig(task=task_name, task_settings={"n": 10} if task_name == "tsp" else {}))
    def generate():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [generate_rephrasings(chat, text, k=k, batch=8, max_rounds=1, on_shortfall="warn", progress=False,
                                         tag=f"{tag}/{part}")
                    for part, text in (("description", task.description0.text),
                                       ("instruction", task.instruction0.text))]
    seconds, (descriptions, _) = timed(generate)
    return seconds, descriptions

def variants_file(task_name: str, rephrasings: list[str], folder: Path) -> Path:
    "A small fixed domain for the timed runs: the original description plus three generated rephrasings."
    from expo_nb.runner import RunConfig, build_task
    task = build_task(RunConfig(task=task_name, task_settings={"n": 10} if task_name == "tsp" else {}))
    path = folder / f"{task_name}_variants.json"
    path.write_text(json.dumps({"descriptions": [task.description0.text] + rephrasings[1:4],
                                "instructions": [task.instruction0.text]}))
    return path

def paper_run(task_name: str, chat: LocalChat, iterations: int, variants: Path, folder: Path) -> tuple[float, int]:
    """(seconds, completion tokens) of an EXPO run at the paper's settings (8 samples per iteration) with `chat`,
    domain fixed. The two paths draw different samples, so the replies' lengths differ between them."""
    from expo_nb.runner import RunConfig, read_log, run
    config = RunConfig(task=task_name, task_settings={"n": 10} if task_name == "tsp" else {}, iterations=iterations,
                       samples=8, seed=0, domain=str(variants), embedder="hashing:64")
    chat.load()
    run_dir = folder / f"{task_name}_{'batched' if chat.batched else 'sequential'}"
    seconds, _ = timed(lambda: run(config, run_dir, chat=chat, progress=False))
    return seconds, sum(int(r["completion_tokens"]) for r in read_log(run_dir / "log.jsonl"))

def simulated_reuse(model: str, task_name: str, iterations: int, variants: Path, folder: Path,
                    cache_size: int = 4) -> tuple[int, int]:
    """(prompt tokens reused, prompt tokens) over an EXPO run whose replies are scripted valid random answers: the
    sequence of meta-prompts of a run without decoding, tokenized for `model` and replayed through the same rule as
    BatchEngine.prepare (the live prompt plus a PrefixCache of `cache_size` states)."""
    import random

    from expo_nb.local import PrefixCache, common_prefix
    from expo_nb.runner import RunConfig, run
    from expo_nb.testing import ScriptedChat
    rng = random.Random(0)
    def reply(request):
        if task_name == "tsp": return "<trace>" + ",".join(map(str, rng.sample(range(10), 10))) + "</trace>"
        return f"[{rng.randint(5, 30)}, {rng.randint(5, 30)}]"
    chat = ScriptedChat(reply)
    config = RunConfig(task=task_name, task_settings={"n": 10} if task_name == "tsp" else {}, iterations=iterations,
                       samples=8, seed=0, domain=str(variants), embedder="hashing:64")
    run(config, folder / f"{task_name}_simulated", chat=chat, progress=False)
    calls = [r.messages for k, r in enumerate(chat.requests) if k == 0 or r.messages != chat.requests[k - 1].messages]
    llama = LocalChat(model, n_threads=1).load()
    live, cache, reused, total = [], PrefixCache(cache_size), 0, 0
    for messages in calls:
        prompt, _ = chat_prompt(llama, messages)
        keep, (_, cached) = common_prefix(live, prompt), cache.best(prompt)
        if keep < len(live) and live not in cache: cache.put(live, b"")
        keep = min(max(keep, cached), len(prompt) - 1)
        reused, total, live = reused + keep, total + len(prompt), prompt
    return reused, total

def reuse_variants(task_name: str, folder: Path) -> Path:
    "A 4 x 1 domain whose descriptions differ from their first word on (as rephrasings do)."
    from expo_nb.runner import RunConfig, build_task
    task = build_task(RunConfig(task=task_name, task_settings={"n": 10} if task_name == "tsp" else {}))
    text = task.description0.text
    path = folder / f"{task_name}_reuse_variants.json"
    heads = ("Task:", "Problem statement:", "Read carefully.")
    path.write_text(json.dumps({"descriptions": [text] + [f"{head} {text}" for head in heads],
                                "instructions": [task.instruction0.text]}))
    return path

def reuse_fraction(model: str, iterations: int = 10) -> dict:
    """Fraction of prompt tokens reused over 10-iteration TSP-10 and linear-regression runs (scripted replies), with the
    cache and live only."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cache_size, key in ((4, "prefix_reused_fraction"), (0, "prefix_reused_fraction_live_only")):
            pairs = [simulated_reuse(model, t, iterations, reuse_variants(t, Path(tmp)), Path(tmp) / f"c{cache_size}",
                                     cache_size) for t in ("tsp", "linreg")]
            out[key] = round(sum(r for r, _ in pairs) / sum(n for _, n in pairs), 3)
    return out

def main(model: str, max_tokens: int = 24, paper_iterations: int = 10, threads: int | None = None,
         no_reuse: bool = False):
    out = Path(__file__).parent / "results" / "local_llm.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    messages, result = meta_prompt(), {}
    result.update(earlier_keys(model, messages, max_tokens, threads, no_reuse, previous)); print(result, flush=True)
    result.update(raw_throughput(LocalChat(model, n_threads=threads), messages))
    print(result, flush=True)
    result.update(sample_timings(model, messages, max_tokens, threads))
    # the limit for these 8 samples: their own lengths at the raw step costs (a batch thins out as samples stop)
    result["batch8_limit_s"] = round(decode_limit_s(result["batch8_lengths"], result["step_ms_by_batch"]), 2)
    result["batch8_fraction_of_limit"] = round(result["batch8_limit_s"] / result["batch8_batched_s"], 2)
    result["batch8_fraction_of_full_batch"] = round(result["batch8_batched_tok_s"] / result["batch8_decode_tok_s"], 2)
    print(result, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp, runs = Path(tmp), {}
        old, new = LocalChat(model, n_threads=threads, batched=False), LocalChat(model, n_threads=threads)
        for chat in (old, new): chat.load()
        result["domain21_s_before"], _ = domain_rephrasings(old, "tsp", 20, "before")
        result["domain21_s_after"], found = domain_rephrasings(new, "tsp", 20, "after")
        print(result, flush=True)
        for task_name, order in (("tsp", (False, True)), ("linreg", (True, False))):  # alternate which path goes first
            variants = variants_file(task_name, found, tmp)
            for batched in order:
                chat = LocalChat(model, n_threads=threads, batched=batched)
                seconds, tokens = paper_run(task_name, chat, paper_iterations, variants, tmp)
                runs[task_name, batched] = (seconds, dict(chat.stats), tokens)
                print(task_name, batched, runs[task_name, batched], flush=True)
    for task_name, key in (("tsp", "tsp10"), ("linreg", "lr10")):
        result[f"{key}_paper_s_before"] = round(runs[task_name, False][0], 1)
        result[f"{key}_paper_s_after"] = round(runs[task_name, True][0], 1)
        result[f"{key}_speedup"] = round(runs[task_name, False][0] / runs[task_name, True][0], 2)
        # the prompt's share of the earlier path: what no faster decoding can remove
        prompt_s = runs[task_name, False][1]["prompt_tokens_evaluated"] / result["raw_prompt_tok_s"]
        result[f"{key}_prompt_share_before"] = round(prompt_s / runs[task_name, False][0], 2)
        for batched, side in ((False, "before"), (True, "after")):
            result[f"{key}_completion_tokens_{side}"] = runs[task_name, batched][2]
            seconds, _, tokens = runs[task_name, batched]
            result[f"{key}_ms_per_token_{side}"] = round(1000 * seconds / tokens, 1)
    result.update(reuse_fraction(model, 10))
    result["domain21_speedup"] = round(result["domain21_s_before"] / result["domain21_s_after"], 2)
    for key in ("domain21_s_before", "domain21_s_after"): result[key] = round(result[key], 1)
    note = (f"paper runs: {paper_iterations} iterations (keys named for the 10 of the issue; --paper-iterations 10 "
            "for the full length), 8 samples, fixed 4x1 domain, hashing embedder; prefix_reused_fraction: "
            "10-iteration TSP-10 + linear-regression runs with scripted valid replies, prompts tokenized for "
            "the model and replayed through BatchEngine.prepare's rule; domain21: the 20 + 20 rephrasings of "
            "a 21 x 21 TSP-10 domain, one round; *_prompt_share_before: prompt evaluation's share of the "
            "earlier path's time (evaluated tokens / raw_prompt_tok_s), which batching cannot remove; "
            "batch8_fraction_of_limit: batch8_limit_s (the raw engine time of decoding samples of batch8_lengths "
            "together, from step_ms_by_batch) over the measured batch8_batched_s; "
            "batch8_fraction_of_full_batch: against 8 live sequences at every step")
    result.update({"paper_iterations": paper_iterations, "n_threads": LocalChat(model, n_threads=threads).n_threads,
                   "iteration_s_without_reuse_from": ("this run" if no_reuse
                                                      else "the previous result file (--no-reuse to measure)"),
                   "note": note})
    for key, value in result.items(): print(f"{key:28s} {value}")
    out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(result, indent=2) + "\n")

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen1.5b")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--paper-iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-reuse", action="store_true",
                        help="also time the earlier path without prefix reuse (slow)")
    args = parser.parse_args()
    main(args.model, args.max_tokens, args.paper_iterations, args.threads, args.no_reuse)
