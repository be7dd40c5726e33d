"Concurrency of OpenAIChat: 8 requests to a server with 200 ms latency, serial vs one concurrent complete()."
import json
import os
import time
from pathlib import Path

from expo_nb.core import ChatRequest
from expo_nb.llm import OpenAIChat
from expo_nb.testing import FakeOpenAIServer


def main(delay=0.2, n=8):
    os.environ.setdefault("EXPO_NB_BENCH_KEY", "sk-bench")
    reqs = [ChatRequest(({"role": "user", "content": "hi"},), sample_index=i) for i in range(n)]
    with FakeOpenAIServer(delay=delay) as server:
        chat = OpenAIChat("fake", base_url=server.url, api_key_env="EXPO_NB_BENCH_KEY", max_concurrency=n)
        chat.complete(reqs[:1])  # warm-up
        t0 = time.perf_counter(); chat.complete(reqs[:1]); single = time.perf_counter() - t0
        t0 = time.perf_counter(); [chat.complete([r]) for r in reqs]; serial = time.perf_counter() - t0
        t0 = time.perf_counter(); chat.complete(reqs); concurrent = time.perf_counter() - t0
    result = {"single_request_s": single, "serial_s": serial, "concurrent_s": concurrent,
              "ratio_to_single": concurrent / single, "n_requests": n, "server_delay_s": delay,
              "serial_over_concurrent": serial / concurrent}
    print(f"{'measure':<24}{'value':>10}")
    for k, v in result.items(): print(f"{k:<24}{v:>10.3f}")
    out = Path(__file__).parent / "results" / "concurrency.json"; out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

if __name__ == "__main__": main()
