"""The reasoning splitter: tags in any chunking, pre-opened blocks, unfinished streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.reasoning import ReasoningSplitter, Split, prompt_opens_thinking, split_text


def feed_all(chunks: list[str], start_in_thinking: bool = False) -> Split:
    splitter = ReasoningSplitter(start_in_thinking=start_in_thinking)
    total = Split()
    for chunk in chunks:
        total = total + splitter.feed(chunk)
    return total + splitter.finish()


def test_plain_think_block_then_answer():
    assert split_text("<think>\nTwo plus two.\n</think>\n\nThe answer is 4.") == Split(
        "Two plus two.", "The answer is 4."
    )


def test_preopened_block_has_only_the_closing_tag():
    out = split_text("Let me add.\n</think>\n\n4", start_in_thinking=True)
    assert out == Split("Let me add.", "4")


def test_no_tags_is_all_answer():
    assert split_text("Hello there.") == Split("", "Hello there.")


def test_stream_that_ends_inside_thinking_keeps_everything():
    splitter = ReasoningSplitter(start_in_thinking=True)
    got = splitter.feed("step one, step tw") + splitter.finish()
    assert got == Split("step one, step tw", "")
    assert splitter.in_thinking


def test_unfinished_tag_at_the_end_is_kept_as_text():
    assert split_text("<think>abc</thi", start_in_thinking=False) == Split("abc</thi", "")


def test_empty_thinking():
    assert split_text("<think>\n\n</think>\n\nJust 4.") == Split("", "Just 4.")


def test_several_blocks_are_all_thinking():
    out = split_text("<think>a</think>x<think>b</think>y")
    assert out == Split("a\n\nb", "xy")


def test_other_tag_styles():
    assert split_text("<thinking>hm</thinking>ok") == Split("hm", "ok")
    assert split_text("[THINK]hm[/THINK]ok") == Split("hm", "ok")


def test_stray_close_tag_is_dropped_from_the_answer():
    assert split_text("abc</think>def") == Split("", "abcdef")


def test_angle_brackets_that_are_not_tags_stay():
    assert split_text("<think>a < b and [x]</think>if a<b then [1]") == Split(
        "a < b and [x]", "if a<b then [1]"
    )


def test_tag_split_at_every_position():
    text = "<think>\nreason\n</think>\n\nanswer"
    for cut in range(len(text) + 1):
        assert feed_all([text[:cut], text[cut:]]) == Split("reason", "answer"), cut


def test_prompt_opens_thinking():
    assert prompt_opens_thinking("<｜User｜>hi<｜Assistant｜><think>\n") == "<think>"
    assert prompt_opens_thinking("<｜User｜>hi<｜Assistant｜>") is None
    assert prompt_opens_thinking("<think>old</think>again") is None


alphabet = st.sampled_from(
    ["<think>", "</think>", "<thinking>", "</thinking>", "[THINK]", "[/THINK]", "<", "[", "/"]
    + ["a", "b", " ", "\n", "think", ">", "é", "4"]
)


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(alphabet, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    start=st.booleans(),
)
def test_any_chunking_gives_the_same_result(pieces, cuts, start):
    text = "".join(pieces)
    bounds = sorted({c % (len(text) + 1) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)], strict=True)]
    assert feed_all(chunks, start) == split_text(text, start)
    one_char = feed_all(list(text), start)
    assert one_char == split_text(text, start)
