"""Repetitions are independent samples: the run seed enters every request's tag, hence the local sampler seed,
the HTTP `seed` and the cache key. Two runs that differ only in the seed (same warm start, same prompt) get
different temperature-1 replies, and the greedy reply stays the same."""
from expo_nb.llm import OpenAIChat
from expo_nb.local import LocalChat
from expo_nb.runner import RunConfig, build_task, request_tag
from expo_nb.testing import FakeOpenAIServer

SETTINGS = {"w": 2, "b": 30, "init_seed": 0, "max_tokens": 24}   # the same warm start, hence the same prompt

def replies_of_two_repetitions(make_chat):
    "Each repetition gets a fresh model (as a fresh process would): no prompt state carries over between them."
    replies = []
    for seed in (0, 1):
        chat = make_chat()
        config = RunConfig(seed=seed, samples=3, task_settings=SETTINGS)
        task = build_task(config)
        outcome = task.step(chat, task.description0, task.instruction0, tag=request_tag(config, 0))
        replies.append(outcome.replies)
    return replies

def test_two_seeds_get_different_temperature_one_replies_from_the_local_model():
    first, second = replies_of_two_repetitions(lambda: LocalChat("smollm135m", n_ctx=1024, n_threads=1))
    assert first[:2] != second[:2]      # temperature 1: each repetition draws its own
    assert first[2] == second[2]        # temperature 0: the same prompt gives the same greedy reply

def test_two_seeds_get_different_temperature_one_replies_over_http(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    def reply(body):   # a server that honours `seed` at temperature > 0, like a sampling backend
        seed = body.get("seed", 0) if body.get("temperature", 1) > 0 else 0
        return f"[{10 + seed % 7}, {20 + seed % 11}]"
    with FakeOpenAIServer(reply=reply) as server:
        first, second = replies_of_two_repetitions(lambda: OpenAIChat("fake", base_url=server.url))
        seeds = [r["body"].get("seed") for r in server.requests if r["path"].endswith("/chat/completions")]
    assert first[:2] != second[:2] and first[2] == second[2]
    assert len(set(seeds)) == len(seeds) == 6
