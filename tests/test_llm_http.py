"Real openai client against FakeOpenAIServer: retries, faults, key hygiene, concurrency, cache (offline)."
import logging
import time

import pytest

from expo_nb.cache import ResponseCache
from expo_nb.core import ChatRequest
from expo_nb.llm import CachedChat, LLMCallError, OpenAIChat
from expo_nb.testing import FakeOpenAIServer

KEY = "sk-test-ZZQX-distinctive-4242"
REQ = ChatRequest(({"role": "user", "content": "hello there"},))

@pytest.fixture(autouse=True)
def key(monkeypatch): monkeypatch.setenv("EXPO_NB_TEST_KEY", KEY)

def make(server, **kw):
    kw = {"backoff_base": 0.01, "max_retries": 2, "timeout": 5.0, **kw}
    return OpenAIChat("fake", base_url=server.url, api_key_env="EXPO_NB_TEST_KEY", **kw)

def test_happy_path():
    with FakeOpenAIServer() as s:
        out = make(s).complete([REQ])
    assert out[0].text == "echo: hello there" and out[0].prompt_tokens == 2 and out[0].completion_tokens == 3
    assert s.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"

def test_429_then_success():
    with FakeOpenAIServer() as s:
        s.add_fault(429); out = make(s).complete([REQ])
    assert out[0].text == "echo: hello there" and len(s.requests) == 2

def test_500_exhausts_retries():
    with FakeOpenAIServer() as s:
        s.add_fault(*[500] * 5)
        with pytest.raises(LLMCallError, match=r"model fake at http://127\.0\.0\.1.*status 500 after 3 attempt"):
            make(s).complete([REQ])
    assert len(s.requests) == 3

def test_400_fails_fast():
    with FakeOpenAIServer() as s:
        s.add_fault(400)
        with pytest.raises(LLMCallError, match="status 400 after 1 attempt"): make(s).complete([REQ])
    assert len(s.requests) == 1

def test_timeout_then_error():
    with FakeOpenAIServer(delay=0.5) as s:
        with pytest.raises(LLMCallError, match="APITimeoutError after 2 attempt"):
            make(s, timeout=0.1, max_retries=1).complete([REQ])

@pytest.mark.parametrize("fault", ["broken_json", "drop"])
def test_malformed_and_dropped_are_retried(fault):
    with FakeOpenAIServer() as s:
        s.add_fault(fault); out = make(s).complete([REQ])
    assert out[0].text == "echo: hello there" and len(s.requests) >= 2

def test_missing_key_names_variable(monkeypatch):
    monkeypatch.delenv("EXPO_NB_TEST_KEY")
    with pytest.raises(LLMCallError, match="EXPO_NB_TEST_KEY"):
        OpenAIChat("m", base_url="https://example.invalid/v1", api_key_env="EXPO_NB_TEST_KEY").complete([REQ])

def test_key_never_leaks(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer() as s:
        s.add_fault(429)
        chat = CachedChat(make(s), ResponseCache(tmp_path / "c.sqlite"))
        chat.complete([REQ]); chat.cache.close()
    assert KEY not in repr(chat) and KEY not in repr(chat.inner) and KEY not in str(vars(chat.inner))
    assert all(KEY.encode() not in p.read_bytes() for p in tmp_path.iterdir())
    assert KEY not in caplog.text

def test_concurrency():
    with FakeOpenAIServer(delay=0.2) as s:
        chat = make(s)
        t0 = time.perf_counter(); chat.complete([REQ]); single = time.perf_counter() - t0
        reqs = [ChatRequest(REQ.messages, sample_index=i) for i in range(8)]
        t0 = time.perf_counter(); out = chat.complete(reqs); batch = time.perf_counter() - t0
    assert len(out) == 8 and batch < 2 * single, (batch, single)

def test_cached_second_call_makes_no_requests(tmp_path):
    with FakeOpenAIServer() as s:
        chat = CachedChat(make(s), ResponseCache(tmp_path / "c.sqlite"))
        reqs = [ChatRequest(REQ.messages, sample_index=i) for i in range(4)]
        first = chat.complete(reqs); n = len(s.requests); second = chat.complete(reqs)
    assert n == 4 and len(s.requests) == 4
    assert [c.text for c in first] == [c.text for c in second] and all(c.cached for c in second)
