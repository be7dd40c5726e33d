"""Edge cases of domain generation (expo_nb.domain): chatter cleaning, de-duplication and re-asking, bounds, caching,
save/load."""
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expo_nb.core import ExpoError, MetaInstruction, PromptDomain, TaskDescription
from expo_nb.domain import (
    REPHRASE_TEMPLATE,
    build_domain,
    clean_rephrasing,
    domain_from_texts,
    generate_rephrasings,
    load_variants,
    rephrase_request,
)
from expo_nb.embed import HashingEmbedder
from expo_nb.testing import ScriptedChat


@pytest.mark.parametrize("reply, expected", [
    ("Press blue.", "Press blue."),
    ("Sure, here is the rephrased text:\nPress blue.", "Press blue."),
    ("Certainly! Here's a clearer version:\n\n\"Press blue.\"\n\nLet me know if you'd like more changes.",
     "Press blue."),
    ("Of course.\n'Press blue.'", "Press blue."),
    ("\u201cPress blue.\u201d", "Press blue."),
    ('"""\nPress blue.\n"""', "Press blue."),
    ("```\nPress blue.\n```", "Press blue."),
    ("Rewritten version: Press blue.", "Press blue."),
    ("1. Press blue.", "Press blue."),
    ("- Press blue.", "Press blue."),
    ("Press blue.\nThen wait.\n\nI hope this helps!", "Press blue.\nThen wait."),
    ("Here is what you must do: press blue.", "Here is what you must do: press blue."),   # one line of content: kept
])
def test_clean_rephrasing(reply, expected):
    assert clean_rephrasing(reply) == expected


@pytest.mark.parametrize("reply", ["", " ", "\n\n", '""', "``````", "Sure! Here is the rewritten text:", None, 3])
def test_clean_rephrasing_empty_is_none(reply):
    assert clean_rephrasing(reply) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_clean_rephrasing_never_raises(reply):
    out = clean_rephrasing(reply)
    assert out is None or (isinstance(out, str) and out == out.strip() and out)


def test_request_wording_is_our_own_and_fences_the_text():
    content = rephrase_request("Text with \"quotes\".")[0]["content"]
    assert content == REPHRASE_TEMPLATE.format(text='Text with "quotes".')
    assert "Keep its meaning, every fact and number" in content and "rewritten text only" in content


def test_duplicates_are_dropped_and_reasked():
    # 3 wanted; replies: dup of original, good, dup of good (case/space), empty, good, good
    chat = ScriptedChat(["ORIGINAL  text.", "Variant A.", "variant   a.", "Sure:", "Variant B.", "Variant C."])
    out = generate_rephrasings(chat, "Original text.", k=3, batch=2, progress=False)
    assert out == ["Original text.", "Variant A.", "Variant B.", "Variant C."]
    # round 1: 3 requests in batches of 2 and 1 -> keeps A; round 2: 2 requests -> keeps B; round 3: 1 -> C
    assert [r.sample_index for r in chat.requests] == [0, 1, 2, 3, 4, 5]
    assert all(r.temperature == 1.3 and r.tag == "" for r in chat.requests)


def test_batches_never_exceed_batch_size():
    sizes = []
    class Counting(ScriptedChat):
        def complete(self, requests):
            sizes.append(len(requests)); return super().complete(requests)
    generate_rephrasings(Counting(lambda r: f"Variant {r.sample_index}."), "Original.", k=19, batch=8, progress=False)
    assert sizes == [8, 8, 3]


def test_bounded_rounds_raise_or_warn():
    chat = ScriptedChat(["Only one."])
    with pytest.raises(ExpoError, match="only 1 unique rephrasings of 5 after 3 rounds"):
        generate_rephrasings(chat, "Text.", k=5, max_rounds=3, progress=False)
    assert len(chat.requests) == 5 + 4 + 4                                 # each round asks for all still missing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = generate_rephrasings(ScriptedChat(["Only one."]), "Text.", k=5, max_rounds=1, on_shortfall="warn",
                                   progress=False)
    assert out == ["Text.", "Only one."] and any("returning fewer" in str(w.message) for w in caught)


def test_cached_chat_gives_identical_domain_and_no_second_call(tmp_path):
    from expo_nb.cache import ResponseCache
    from expo_nb.llm import CachedChat
    calls = []
    def inner_reply(request):
        calls.append(request.sample_index)
        return f"Variant {len(calls)} of the text."                      # a different reply per model call
    texts = []
    for _ in range(2):
        cache = ResponseCache(tmp_path / "cache.sqlite")
        chat = CachedChat(ScriptedChat(inner_reply, identity="scripted-counter"), cache)
        texts.append(generate_rephrasings(chat, "The text.", k=6, batch=4, progress=False))
        cache.close()
    assert texts[0] == texts[1] and len(set(texts[0])) == 7
    assert len(calls) == 6                 # distinct sample indices: 6 cache entries, rerun free


def test_build_domain_arm0_provenance_and_round_trip(tmp_path):
    d0, i0 = TaskDescription("Describe the task."), MetaInstruction("Answer in the format X.")
    chat = ScriptedChat(lambda r: f"Rephrasing number {r.sample_index} of {r.tag}.", identity="scripted-x")
    domain = build_domain(chat, HashingEmbedder(16), d0, i0, k_descriptions=4, k_instructions=3, temperature=1.1,
                          progress=False)
    assert domain.shape == (5, 4) and domain.texts(0) == (d0, i0)
    assert domain.descriptions[1:] == [f"Rephrasing number {k} of domain/description." for k in range(4)]
    prov = domain.provenance
    assert (prov["chat"], prov["embedder"], prov["k_descriptions"], prov["k_instructions"], prov["temperature"]) == \
        ("scripted-x", "hashing:16", 4, 3, 1.1)
    assert prov["method"] == "llm-rephrasing" and prov["created"].endswith("Z")
    assert {r.temperature for r in chat.requests} == {1.1}
    loaded = PromptDomain.load(domain.save(tmp_path / "dom"))
    assert loaded.descriptions == domain.descriptions and loaded.instructions == domain.instructions
    assert loaded.provenance == json.loads(json.dumps(prov))
    np.testing.assert_array_equal(loaded.features([0, 7, 19]), domain.features([0, 7, 19]))
    np.testing.assert_allclose(domain.features([0])[0, :16], HashingEmbedder(16).embed([d0.text])[0])


def test_variants_file(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"descriptions": ["D0", "D1"], "instructions": ["I0"]}))
    domain = domain_from_texts(*load_variants(path), HashingEmbedder(8))
    assert domain.shape == (2, 1) and domain.provenance["method"] == "given-texts"
    for bad, message in [("[1, 2]", "must hold"), ('{"descriptions": [], "instructions": ["I"]}', "non-empty list"),
                         ('{"descriptions": ["D", 3], "instructions": ["I"]}', "non-empty strings"),
                         ("{", "not valid JSON")]:
        path.write_text(bad)
        with pytest.raises(ExpoError, match=message): load_variants(path)


def test_generation_validation():
    chat = ScriptedChat(["x"])
    for kwargs, message in [({"k": 2.5}, "k must be an int"), ({"k": True}, "k must be an int"),
                            ({"k": 2, "batch": 0}, "must be >= 1"), ({"k": 2, "max_rounds": 0}, "must be >= 1")]:
        with pytest.raises(ExpoError, match=message): generate_rephrasings(chat, "T.", progress=False, **kwargs)
    with pytest.raises(ExpoError, match="non-empty string"): generate_rephrasings(chat, "  ", k=1, progress=False)


class _RecordingBar:
    "Stands in for tqdm: records every update and the state at close."
    made = []
    def __init__(self, total=None, **kwargs):
        self.total, self.n, self.updates, self.closed_at = total, 0, [], None
        _RecordingBar.made.append(self)
    def update(self, n=1): self.updates.append(n); self.n += n
    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs): self.postfix = kwargs
    def close(self): self.closed_at = self.n
    def __enter__(self): return self
    def __exit__(self, *exc): self.close()

def test_progress_bar_counts_unique_rephrasings_and_ends_at_k(monkeypatch):
    import tqdm.auto
    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar); _RecordingBar.made.clear()
    replies = ["Press the button you think is best.", "press the button  you think is BEST.", "Here you go:",
               "Choose the button you expect to pay most.", "Pick the most rewarding button."]
    generate_rephrasings(ScriptedChat(replies), "Press the button with the highest expected reward.", k=3, batch=4)
    (bar,) = _RecordingBar.made
    assert (bar.total, bar.n, bar.closed_at) == (3, 3, 3)     # unique rephrasings out of k, complete when closed
    assert bar.updates == [1, 2] and bar.postfix == {"requests": 5}   # one update per batch; 5 requests were needed

def test_progress_bar_output_ends_at_k_over_k_when_a_batch_arrives_at_once(monkeypatch):
    "The main job's log showed '1/3': a slow batch drew the first of three quick updates, then the bar was erased."
    import functools
    import io
    import time

    import tqdm.auto
    screen = io.StringIO()
    monkeypatch.setattr(tqdm.auto, "tqdm", functools.partial(tqdm.std.tqdm, file=screen, ascii=True))
    def slow(request): time.sleep(0.05); return f"Variant number {request.sample_index}."
    generate_rephrasings(ScriptedChat(slow), "Original text.", k=3, batch=8, tag="t")
    last = screen.getvalue().rstrip().split("\r")[-1]
    assert "3/3" in last and "100%" in last, repr(screen.getvalue())
