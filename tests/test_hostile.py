"""Hostile inputs at the boundaries this package owns: malformed 200 replies and refused keys from an
OpenAI-compatible server, damaged or unusable cache files, and megabytes of adversarial text for the reply
parsers. Each case must end in a one-line ExpoError (or a clean invalid parse), never in a traceback, a wrong
value in the cache or a parse that takes minutes. The servers are real local HTTP servers (offline)."""
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from expo_nb.cache import ResponseCache
from expo_nb.core import ChatRequest, ExpoError
from expo_nb.embed import CachedEmbedder
from expo_nb.llm import CachedChat, LLMCallError, OpenAIChat, OpenAIEmbedder
from expo_nb.task_linreg import parse_pair
from expo_nb.task_mab import parse_distribution
from expo_nb.task_tsp import parse_tour
from expo_nb.testing import FakeOpenAIServer

KEY_ENV, KEY = "EXPO_NB_HOSTILE_KEY", "sk-hostile-QQZX-7781-do-not-print"

@pytest.fixture(autouse=True)
def key(monkeypatch): monkeypatch.setenv(KEY_ENV, KEY)


# ---- a local server whose replies a test writes -------------------------------------------------------------------
def chat_reply(body: dict) -> dict:
    "A well-formed /chat/completions reply echoing the last user message."
    text = "echo: " + body["messages"][-1]["content"]
    return {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}}

def embed_reply(body: dict, dimension: int = 4) -> dict:
    "A well-formed /embeddings reply: one deterministic vector per input."
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return {"object": "list", "model": body.get("model", ""), "usage": {"prompt_tokens": 0, "total_tokens": 0},
            "data": [{"object": "embedding", "index": i, "embedding": FakeOpenAIServer.vector(t, dimension)}
                     for i, t in enumerate(inputs)]}

def normal(path: str, body: dict, headers: dict) -> tuple[int, dict]:
    return 200, chat_reply(body) if path.endswith("/chat/completions") else embed_reply(body)

@contextmanager
def server(respond=normal, # (path, body, headers) -> (status, JSON payload); headers["n"]: the request's number
           ):
    "A loopback HTTP server answering with `respond`; yields (base url, list of received (path, body))."
    seen, lock = [], threading.Lock()
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args): pass
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with lock: seen.append((self.path, body)); n = len(seen)
            status, payload = respond(self.path, body, {k.lower(): v for k, v in self.headers.items()} | {"n": n})
            data = json.dumps(payload).encode()
            self.send_response(status); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler); httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try: yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen
    finally: httpd.shutdown(); httpd.server_close()

def first_n(n: int, mangle):
    "A responder whose first `n` replies are passed through `mangle` (reply dict -> reply dict)."
    def respond(path, body, headers):
        status, reply = normal(path, body, headers)
        return status, mangle(reply) if headers["n"] <= n else reply
    return respond

def chat(url, **kw):
    kw = {"backoff_base": 0.001, "max_retries": 2, "timeout": 5.0, **kw}
    return OpenAIChat("m", base_url=url, api_key_env=KEY_ENV, **kw)

def embedder(url, **kw):
    kw = {"backoff_base": 0.001, "max_retries": 2, "timeout": 5.0, **kw}
    return OpenAIEmbedder("e", base_url=url, api_key_env=KEY_ENV, **kw)

def one_line(error) -> str:
    text = str(error)
    assert "\n" not in text and text.strip(), repr(text)
    return text

REQ = ChatRequest(({"role": "user", "content": "hello"},))
no_choices = lambda reply: {**reply, "choices": []}
null_content = lambda reply: {**reply, "choices": [{**reply["choices"][0],
                                                    "message": {"role": "assistant", "content": None}}]}
one_short = lambda reply: {**reply, "data": reply["data"][:-1]}


# ---- malformed 200 replies: retried, never cached, a clear error after the last retry ------------------------------
@pytest.mark.parametrize("mangle", [no_choices, null_content], ids=["no-choices", "null-content"])
def test_malformed_chat_reply_is_retried_and_the_good_one_cached(tmp_path, mangle):
    with server(first_n(1, mangle)) as (url, seen):
        cached = CachedChat(chat(url), ResponseCache(tmp_path / "c.sqlite"))
        out = cached.complete([REQ]); again = cached.complete([REQ])
    assert out[0].text == "echo: hello" and len(seen) == 2
    assert again[0].cached and again[0].text == "echo: hello"

@pytest.mark.parametrize("mangle", [no_choices, null_content], ids=["no-choices", "null-content"])
def test_malformed_chat_reply_every_time_is_one_line_error_and_nothing_cached(tmp_path, mangle):
    with server(first_n(10**6, mangle)) as (url, seen):
        cached = CachedChat(chat(url), ResponseCache(tmp_path / "c.sqlite"))
        with pytest.raises(LLMCallError) as error: cached.complete([REQ])
    text = one_line(error.value)
    assert "malformed" in text and "after 3 attempt" in text and len(seen) == 3
    assert len(cached.cache) == 0

def test_embeddings_one_short_is_retried(tmp_path):
    texts = [f"text {i}" for i in range(5)]
    with server(first_n(1, one_short)) as (url, seen):
        vectors = embedder(url).embed(texts)
    assert vectors.shape == (5, 4) and len(seen) == 2
    assert np.allclose(vectors[3], FakeOpenAIServer.vector("text 3", 4))

def test_embeddings_one_short_every_time_is_one_line_error_and_nothing_cached(tmp_path):
    with server(first_n(10**6, one_short)) as (url, seen):
        cached = CachedEmbedder(embedder(url), ResponseCache(tmp_path / "c.sqlite"))
        with pytest.raises(LLMCallError) as error: cached.embed(["a", "b", "c"])
    text = one_line(error.value)
    assert "2 embeddings for 3 inputs" in text and len(seen) == 3
    assert len(cached.cache) == 0

def test_embeddings_of_unequal_length_are_retried():
    ragged = lambda reply: {**reply, "data": [{**reply["data"][0], "embedding": [0.5]}] + reply["data"][1:]}
    with server(first_n(1, ragged)) as (url, seen):
        vectors = embedder(url).embed(["a", "b"])
    assert vectors.shape == (2, 4) and len(seen) == 2


# ---- the cache key names the endpoint that answered --------------------------------------------------------------
def answering(word):
    return lambda path, body, headers: (200, {**chat_reply(body), "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": word}}]})

def test_cache_key_includes_the_endpoint_from_the_environment(tmp_path, monkeypatch):
    "`openai:MODEL` leaves base_url unset, so the openai client reads OPENAI_BASE_URL: the key must follow it."
    cache = ResponseCache(tmp_path / "shared.sqlite")
    with server(answering("from A")) as (url_a, seen_a), server(answering("from B")) as (url_b, seen_b):
        monkeypatch.setenv("OPENAI_BASE_URL", url_a)
        a = CachedChat(OpenAIChat("m", api_key_env=KEY_ENV), cache).complete([REQ])
        embedder_a = OpenAIEmbedder("e", api_key_env=KEY_ENV)
        monkeypatch.setenv("OPENAI_BASE_URL", url_b)
        b = CachedChat(OpenAIChat("m", api_key_env=KEY_ENV), cache).complete([REQ])
        embedder_b = OpenAIEmbedder("e", api_key_env=KEY_ENV)
    assert a[0].text == "from A" and b[0].text == "from B" and not b[0].cached and len(seen_b) == 1
    assert url_a in embedder_a.identity and url_b in embedder_b.identity

def test_identity_of_explicit_and_default_endpoints_is_unchanged(monkeypatch):
    "Keys already in users' caches stay valid: explicit base URLs and the default endpoint keep their identity."
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert OpenAIChat("m").identity == "openai-chat:https://api.openai.com/v1:m"
    assert OpenAIEmbedder("e").identity == "openai-embed:https://api.openai.com/v1:e"
    assert OpenAIChat("m", base_url="http://h:1/v1").identity == "openai-chat:http://h:1/v1:m"
    assert OpenAIEmbedder().dimension == 3072        # the published dimension, no probe request


# ---- a refused key names its variable, never the key ---------------------------------------------------------------
def test_401_names_the_variable_and_never_the_key():
    def refuse(path, body, headers):   # like OpenAI's 401, the message quotes the key it was sent
        return 401, {"error": {"message": f"Incorrect API key provided: {headers['authorization']}",
                               "type": "invalid_request_error", "code": "invalid_api_key"}}
    with server(refuse) as (url, seen):
        with pytest.raises(LLMCallError) as error: chat(url).complete([REQ])
        with pytest.raises(LLMCallError) as error_emb: embedder(url).embed(["a"])
    for e in (error.value, error_emb.value):
        text = one_line(e)
        assert KEY_ENV in text and "401" in text and KEY not in text and KEY[-8:] not in text
    assert len(seen) == 2       # not retried


# ---- a partly failed batch keeps what it paid for -----------------------------------------------------------------
def test_successes_of_a_partly_failed_batch_are_cached(tmp_path):
    poison = lambda path, body, headers: ((400, {"error": {"message": "bad request"}}) if "poison" in json.dumps(body)
                                          else normal(path, body, headers))
    requests = [ChatRequest(({"role": "user", "content": word},)) for word in ("a", "b", "poison", "c")]
    with server(poison) as (url, seen):
        cached = CachedChat(chat(url), ResponseCache(tmp_path / "c.sqlite"))
        with pytest.raises(LLMCallError) as error: cached.complete(requests)
        n = len(seen)
        good = cached.complete([requests[i] for i in (0, 1, 3)])
    one_line(error.value)
    assert n == 4 and len(seen) == 4, "the rerun paid again for samples that had succeeded"
    assert [c.text for c in good] == ["echo: a", "echo: b", "echo: c"] and all(c.cached for c in good)


# ---- a per-request seed -------------------------------------------------------------------------------------------
def test_each_request_sends_its_own_seed():
    "Different tags or sample indices get independent seeds (where the server honours `seed`); a repeat, the same."
    from expo_nb.llm import sampling_seed
    requests = [ChatRequest(REQ.messages, sample_index=i, tag=tag) for tag in ("t=0", "t=1") for i in range(3)]
    with server() as (url, seen):
        chat(url).complete(requests); chat(url).complete(requests[:1])
    sent = [body.get("seed") for _, body in seen]
    assert all(isinstance(s, int) for s in sent) and len(set(sent[:6])) == 6, sent
    assert sorted(sent[:6]) == sorted(sampling_seed(r) for r in requests) and sent[6] == sampling_seed(requests[0])
    assert sampling_seed(ChatRequest(REQ.messages, temperature=0.3)) == sampling_seed(REQ)   # tag and index only


# ---- cache files that cannot be used ------------------------------------------------------------------------------
def cache_error(cache, action) -> str:
    with pytest.raises(ExpoError) as error: action(cache)
    text = one_line(error.value)
    assert str(cache.path) in text, text
    return text

def test_cache_of_random_bytes(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    text = cache_error(ResponseCache(path), lambda c: c.get("k"))
    assert "not" in text and "SQLite" in text and ("move" in text or "delete" in text)
    assert "not a readable SQLite database" in cache_error(ResponseCache(path), lambda c: c.put("k", {"v": 1}))

def test_cache_path_is_a_directory(tmp_path):
    text = cache_error(ResponseCache(tmp_path), lambda c: c.get_many(["k"]))
    assert "directory" in text and "cache.sqlite" in text

def test_cache_locked_longer_than_the_timeout(tmp_path):
    path = tmp_path / "cache.sqlite"
    ResponseCache(path).put("k", {"v": 1})
    holder = sqlite3.connect(str(path), isolation_level=None); holder.execute("BEGIN EXCLUSIVE")
    try:
        text = cache_error(ResponseCache(path, timeout=0.2), lambda c: c.put("k2", {"v": 2}))
        assert "locked" in text and "0.2 s" in text
    finally: holder.execute("ROLLBACK"); holder.close()
    cache = ResponseCache(path); cache.put("k2", {"v": 2})
    assert cache.get_many(["k", "k2"]) == {"k": {"v": 1}, "k2": {"v": 2}}

def test_cache_on_a_full_disk(tmp_path):
    "SQLite's own size limit stands in for a full disk: the same error code (SQLITE_FULL) and the same rollback path."
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k", {"v": 1})
    db = cache._db()
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
    text = cache_error(cache, lambda c: c.put_many({f"big{i}": {"v": "x" * 5000} for i in range(20)}))
    assert "disk is full" in text and "free" in text
    assert cache.get_many(["k", "big0"]) == {"k": {"v": 1}}      # old entries intact, the failed batch absent


# ---- parsers stay linear on adversarial input ----------------------------------------------------------------------
MB = 1_000_000
COLOURS = ("blue", "green", "red", "yellow", "purple")
ADVERSARIAL = {
    "letters": "a" * MB,
    "tagged-letters": "<answer>" + "a" * MB,
    "tagged-words": "<Answer>" + "blue button " * (MB // 12),
    "colons": "a:" * (MB // 2),
    "brackets": "[" * MB,
    "bracket-groups": "[1,x]" * (MB // 5),
    "bracket-numbers": "[" + "1," * (MB // 2) + "]",
    "traces": "<trace>" * (MB // 7),
    "trace-groups": "<trace>1</trace>" * (MB // 16),
    "padded-trace-groups": ("<trace>1" + " " * 30 + "</trace>") * (MB // 46),
    "long-trace": "<trace>" + "1," * (MB // 2) + "</trace>",
    "digits": "blue:" + "9" * MB,
}
PARSERS = {"bandit": lambda s: parse_distribution(s, COLOURS),
           "bandit-tag": lambda s: parse_distribution(s, COLOURS, require_tag=True),
           "linreg": parse_pair, "tsp": lambda s: parse_tour(s, 10)}

@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_parser_is_fast_on_a_megabyte_of_adversarial_text(parser, name):
    """The issue's bound: a 1 MB reply parses in under a second (a quadratic parser took a minute on 16 KB).
    The best of up to three tries counts, so that a busy shared machine does not fail a linear parser."""
    elapsed = []
    for _ in range(3):
        start = time.perf_counter()
        parsed = PARSERS[parser](ADVERSARIAL[name])
        elapsed.append(time.perf_counter() - start)
        if elapsed[-1] < 1.0: break
    assert min(elapsed) < 1.0, f"{parser} took {min(elapsed):.2f} s on {name!r}"
    assert parsed.valid or parsed.reason
