"Batched sampling and the prompt-state cache of LocalChat, on the small SmolLM2 model so that they stay fast."
import pytest

from expo_nb.core import ChatRequest, ExpoError, batch_requests
from expo_nb.local import LocalChat, chat_prompt

ASK = [{"role": "user", "content": "List three prime numbers and say why each one is prime."}]
OTHER = [{"role": "user", "content": "Write two sentences about the sea."}]
LONGER = [{"role": "user", "content": ASK[0]["content"] + " Then name the smallest prime larger than 100."}]

def smol(**kw): return LocalChat("smollm135m", n_ctx=1024, n_threads=1, **kw)
def texts(replies): return [r.text for r in replies]

@pytest.fixture(scope="module")
def batch8():
    "Eight samples (seven at T=1, the last greedy) of one prompt, from a fresh model, and that model."
    chat = smol()
    return chat, chat.complete(batch_requests(ASK, [1.0] * 7 + [0.0], max_tokens=24, tag="b"))

def test_greedy_sample_of_a_batch_equals_the_single_greedy_completion(batch8):
    chat, replies = batch8
    alone = smol().complete(batch_requests(ASK, [1.0] * 7 + [0.0], max_tokens=24, tag="b")[7:])[0]
    assert replies[7].text == alone.text and replies[7].completion_tokens == alone.completion_tokens
    earlier = smol(batched=False).complete([ChatRequest(tuple(ASK), 0.0, 24, (), 7, "b")])[0]   # the one-by-one path
    assert earlier.prompt_tokens == alone.prompt_tokens and 1 <= earlier.completion_tokens <= 24

def test_a_seeded_batch_is_reproducible_and_its_t1_samples_differ(batch8):
    chat, replies = batch8
    again = smol().complete(batch_requests(ASK, [1.0] * 7 + [0.0], max_tokens=24, tag="b"))
    assert texts(again) == texts(replies)
    assert len(set(texts(replies[:7]))) >= 6, texts(replies)
    other_seed = smol(seed=1).complete(batch_requests(ASK, [1.0] * 7 + [0.0], max_tokens=24, tag="b"))
    assert texts(other_seed)[:7] != texts(replies)[:7] and texts(other_seed)[7] == replies[7].text

def test_token_counts_are_exact(batch8):
    chat, replies = batch8
    prompt, _ = chat_prompt(chat._llama, ASK)
    assert {r.prompt_tokens for r in replies} == {len(prompt)}
    assert chat.stats["samples"] == 8 and chat.stats["prompt_tokens_evaluated"] == len(prompt)   # evaluated once
    greedy = replies[7]                                            # its count, checked by asking for one token fewer
    n = greedy.completion_tokens
    same = smol().complete([ChatRequest(tuple(ASK), 0.0, n, (), 7, "b")])[0]
    cut = smol().complete([ChatRequest(tuple(ASK), 0.0, n - 1, (), 7, "b")])[0]
    assert (same.text, same.completion_tokens) == (greedy.text, n)
    assert cut.completion_tokens == n - 1 and greedy.text.startswith(cut.text)
    capped = smol().complete(batch_requests(ASK, [1.0, 1.0], max_tokens=5, tag="c"))
    assert [r.completion_tokens for r in capped] == [5, 5]

def test_stop_sequences_cut_the_text_per_request():
    requests = [ChatRequest(tuple(ASK), 0.0, 40, (), 0, "s"), ChatRequest(tuple(ASK), 0.0, 40, (" ",), 1, "s")]
    free, stopped = smol().complete(requests)
    assert " " in free.text and stopped.text == free.text.split(" ")[0]
    assert stopped.completion_tokens < free.completion_tokens

def test_a_prompt_longer_than_the_context_is_a_clear_error_and_the_model_still_works():
    chat = smol()
    with pytest.raises(ExpoError, match=r"the prompt has \d+ tokens but the context holds 1024"):
        chat.complete([ChatRequest(({"role": "user", "content": "prime " * 1500},))])
    assert chat.complete(batch_requests(ASK, [0.0], max_tokens=4))[0].completion_tokens == 4

def test_prefix_cache_hits_change_no_reply_and_are_counted():
    calls = [(ASK, "1"), (OTHER, "2"), (LONGER, "3"), (ASK, "4"), (OTHER, "5")]
    cached, fresh = smol(), smol(reuse_prefix=False)
    for messages, tag in calls:
        requests = batch_requests(messages, [1.0, 1.0, 0.0], max_tokens=24, tag=tag)
        assert texts(cached.complete(requests)) == texts(fresh.complete(requests)), tag
    assert cached.stats["prefix_cache_hits"] >= 2                   # LONGER restores ASK's state, ASK restores it again
    assert cached.stats["prompt_tokens_reused"] > 0 and fresh.stats["prompt_tokens_reused"] == 0
    total = sum(len(chat_prompt(cached._llama, m)[0]) for m, _ in calls)
    assert cached.stats["prompt_tokens_evaluated"] + cached.stats["prompt_tokens_reused"] == total
    assert cached.stats["prompt_tokens_evaluated"] < fresh.stats["prompt_tokens_evaluated"] == total

def test_rounds_split_a_group_that_does_not_fit_and_keep_request_order():
    small = smol(max_batch=2)
    requests = (batch_requests(ASK, [1.0, 0.0, 1.0, 1.0, 0.0], max_tokens=12, tag="r")
                + batch_requests(OTHER, [0.0], max_tokens=12))
    replies = small.complete(requests)
    assert texts(replies) == texts(smol().complete(requests))        # same answers as one round of 5
    assert replies[1].text == replies[4].text and replies[5].text != replies[1].text

def test_a_full_prefix_cache_never_evicts_the_state_it_is_about_to_restore():
    # with room for one state: ASK is saved when OTHER arrives; LONGER then restores ASK's state while OTHER's is
    # saved, which evicts ASK. The state must be taken before the save (a reproduction run died of this: KeyError).
    cached, fresh = smol(prefix_cache=1), smol(reuse_prefix=False)
    for messages, tag in [(ASK, "1"), (OTHER, "2"), (LONGER, "3")]:
        requests = batch_requests(messages, [1.0, 0.0], max_tokens=8, tag=tag)
        assert texts(cached.complete(requests)) == texts(fresh.complete(requests)), tag
    assert cached.stats["prefix_cache_hits"] == 1
