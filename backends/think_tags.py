"""The think-tag styles reasoning models use, and whether a rendered prompt leaves one open.

Shared by the engine process (for Answer now and the thinking budget) and by
`app.core.reasoning` (the splitter); plain Python, no engine imports.
"""

from __future__ import annotations

# (open, close) pairs, longest open tags first so "<thinking>" is not read as "<think>" + "ing>".
TAG_STYLES: tuple[tuple[str, str], ...] = (
    ("<thinking>", "</thinking>"),
    ("<think>", "</think>"),
    ("[THINK]", "[/THINK]"),
)


def close_tag_for(open_tag: str) -> str:
    """The closing tag that matches `open_tag` (a known style), e.g. "<think>" -> "</think>"."""
    for opening, closing in TAG_STYLES:
        if opening == open_tag:
            return closing
    raise ValueError(f"unknown think tag {open_tag!r}")


def prompt_opens_thinking(prompt: str) -> str | None:
    """The open tag if the rendered prompt ends inside a think block, else None.

    DeepSeek-R1's templates end the generation prompt with "<think>\\n": the model's output
    then begins in the middle of its thinking.
    """
    best: tuple[int, str] | None = None
    for opening, closing in TAG_STYLES:
        at = prompt.rfind(opening)
        if at >= 0 and prompt.find(closing, at) < 0 and (best is None or at > best[0]):
            best = (at, opening)
    return best[1] if best else None
