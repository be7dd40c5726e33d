"""Embedded LLM speed on this machine: load time, prompt and generation tokens/s, and one 8-sample EXPO iteration
with and without llama.cpp prompt-prefix reuse. Usage: python benchmarks/local_llm.py [--model qwen1.5b|smollm135m]"""
import argparse, json, os, time
from pathlib import Path
from expo_nb.core import batch_requests
from expo_nb.local import LocalChat

def meta_prompt(n_rows: int = 40) -> list[dict]:
    "An OPRO linear-regression-like meta-prompt of roughly 600 tokens."
    rows = "\n".join(f"input:\nw={10 + (7 * i) % 23}, b={3 + (11 * i) % 31}\nvalue:\n{90000 - 2000 * i}" for i in range(n_rows))
    return [{"role": "user", "content": "Now you will help me minimize a function with two input variables w, b. "
             "I have some (w, b) pairs and the function values at those points. The pairs are arranged in "
             f"descending order based on their function values, where lower values are better.\n\n{rows}\n\n"
             "Give me a new (w, b) pair that is different from all pairs above, and has a function value lower than "
             "any of the above. Do not write code. The output must end with a pair [w, b], where w and b are numerical values."}]

def main(model: str, max_tokens: int = 24):
    chat = LocalChat(model, n_ctx=2048)
    start = time.perf_counter(); llama = chat.load(); load_s = time.perf_counter() - start
    messages = meta_prompt()
    llama.reset(); start = time.perf_counter()
    first = llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=1)
    prompt_tokens = first["usage"]["prompt_tokens"]; prompt_tok_s = prompt_tokens / (time.perf_counter() - start)
    start = time.perf_counter()   # prompt now cached: this times generation (plus one re-evaluated token)
    gen = llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=max_tokens)
    gen_tok_s = gen["usage"]["completion_tokens"] / (time.perf_counter() - start)
    batch = batch_requests(messages, [1.0] * 7 + [0.0], max_tokens=max_tokens, tag="bench")
    timings = {}
    for reuse in (True, False):
        chat.reuse_prefix = reuse; llama.reset(); start = time.perf_counter()
        chat.complete(batch); timings[reuse] = time.perf_counter() - start
    result = {"model": model, "load_s": round(load_s, 2), "prompt_tokens": prompt_tokens, "max_tokens": max_tokens,
              "prompt_tok_s": round(prompt_tok_s, 1), "gen_tok_s": round(gen_tok_s, 1),
              "iteration_s_with_reuse": round(timings[True], 1), "iteration_s_without_reuse": round(timings[False], 1),
              "speedup_from_reuse": round(timings[False] / timings[True], 2), "n_threads": chat.n_threads,
              "note": "2-core machine shared with other jobs while measuring; absolute figures are noisy"}
    for key, value in result.items(): print(f"{key:28s} {value}")
    out = Path(__file__).parent / "results" / "local_llm.json"
    out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(result, indent=2) + "\n")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(); parser.add_argument("--model", default="qwen1.5b"); parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args(); main(args.model, args.max_tokens)
