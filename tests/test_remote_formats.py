"""The Framer's Auto rule on its own (issue 16): untagged text is held only up to a bound,
a bare `</think>` inside the hold makes everything before it thinking, a long untagged
reply streams as thinking and ends with words that name the Reasoning format setting."""

from __future__ import annotations

from backends.remote_stream import AUTO_HOLD_CHARS, Framer, Piece, ending_failure


def framer(fmt: str = "auto") -> tuple[Framer, list[tuple[str, str]]]:
    parts: list[tuple[str, str]] = []
    f = Framer(False, lambda open_: None, lambda t, a, *_: parts.append((t, a)), fmt)
    return f, parts


def joined(parts: list[tuple[str, str]]) -> tuple[str, str]:
    return "".join(t for t, _ in parts), "".join(a for _, a in parts)


def test_a_bare_close_tag_makes_the_held_text_thinking():
    f, parts = framer()
    for text in ["42/6", "=7.", "</th", "ink>", "So the product is 42."]:
        f.feed(Piece(content=text))
    f.finish()
    assert joined(parts) == ("42/6=7.", "So the product is 42.")


def test_the_hold_is_bounded_and_a_long_untagged_reply_is_explained():
    f, parts = framer()
    for _ in range(5000):
        f.feed(Piece(content="word "))
        assert len(f._held) <= AUTO_HOLD_CHARS + 5
    f.finish()
    thinking, answer = joined(parts)
    assert answer == "" and len(thinking) > 20_000
    err = ending_failure("stop", f, "gpu-box:8000", None)
    assert err is not None and err.message == (
        "The whole reply is in the thinking panel: it never closed a think block. If this "
        "model does not think, set its Reasoning format to \u201cnone\u201d in Connect to a "
        "server."
    )


def test_a_short_untagged_reply_is_the_answer():
    f, parts = framer()
    f.feed(Piece(content="Hello! How can I help? Here is <think> in a sentence."))
    f.finish()
    assert joined(parts) == ("", "Hello! How can I help? Here is <think> in a sentence.")
