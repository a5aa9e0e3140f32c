"""The one think-tag state machine: raw model text in, thinking and answer parts out.

Reasoning models wrap their chain of thought in tags (`<think>…</think>`, `<thinking>…`,
`[THINK]…[/THINK]`). DeepSeek-R1's templates already open the block in the prompt, so the
output often carries only the closing tag: start the splitter in thinking mode then
(`prompt_opens_thinking` tells). Tags may arrive split across chunks at any character; a
partial tag at the end of a chunk is held back until the next chunk decides it, so the
result never depends on how the text was chunked.

Token counts travel with the text: each `feed(text, tokens)` counts its tokens as thinking
when the block is open as the text starts (so a closing tag counts as thinking, and a
thinking budget of N lets exactly N thinking tokens through). Servers that send reasoning
in its own field use `feed_thinking` / `feed_answer`, which never scan for tags.

Used by every engine (llama.cpp, MLX, remote) and by the UI's scripted stand-in; plain
Python, no engine imports. Changing the tag styles is a change to this file only. The cost
of a feed depends only on the chunk, never on the text produced before it.
"""

from __future__ import annotations

from dataclasses import dataclass

# (open, close) pairs, longest open tags first so "<thinking>" is not read as "<think>" + "ing>".
TAG_STYLES: tuple[tuple[str, str], ...] = (
    ("<thinking>", "</thinking>"),
    ("<think>", "</think>"),
    ("[THINK]", "[/THINK]"),
)
_OPEN_TAGS = tuple(o for o, _ in TAG_STYLES)
_CLOSE_TAGS = tuple(c for _, c in TAG_STYLES)


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


@dataclass(frozen=True)
class Split:
    """New text since the last call, split in two, with the tokens behind each part."""

    thinking: str = ""
    answer: str = ""
    thinking_tokens: int = 0
    answer_tokens: int = 0

    def __add__(self, other: Split) -> Split:
        return Split(
            self.thinking + other.thinking,
            self.answer + other.answer,
            self.thinking_tokens + other.thinking_tokens,
            self.answer_tokens + other.answer_tokens,
        )

    def __bool__(self) -> bool:
        return bool(self.thinking or self.answer or self.thinking_tokens or self.answer_tokens)


class ThinkSplitter:
    """Feed raw text chunks (with their token counts), get `Split` parts; then `finish()`."""

    def __init__(self, start_in_thinking: bool = False, open_tag: str = "<think>") -> None:
        self._close: str | None = close_tag_for(open_tag) if start_in_thinking else None
        self._pending = ""  # text that may be the start of a tag
        self._held_space = ""  # whitespace at the end of thinking, dropped if a close tag follows
        self._at_block_start = True  # leading whitespace of a block is dropped
        self._separate = False  # a second think block starts on a new paragraph
        self._seen_thinking = False
        self._seen_answer = False
        self.blocks_closed = 0
        self.thinking_tokens = 0
        self.answer_tokens = 0

    @property
    def in_thinking(self) -> bool:
        return self._close is not None

    @property
    def close_tag(self) -> str:
        """The tag that closes the current (or, outside one, the usual) think block."""
        return self._close or "</think>"

    def feed(self, text: str, tokens: int = 0) -> Split:
        """Take the next chunk of raw model output; return what it adds."""
        t_tokens, a_tokens = (tokens, 0) if self._close else (0, tokens)
        out_thinking: list[str] = []
        out_answer: list[str] = []
        buf = self._pending + text
        self._pending = ""
        i = 0
        while i < len(buf):
            wanted = (self._close,) if self._close else _OPEN_TAGS
            stray = () if self._close else _CLOSE_TAGS
            lt = _next_tag_start(buf, i)
            if lt < 0:
                self._emit(buf[i:], out_thinking, out_answer)
                break
            self._emit(buf[i:lt], out_thinking, out_answer)
            rest = buf[lt : lt + 16]
            tag = next((t for t in wanted + stray if rest.startswith(t)), None)
            if tag is None:
                if lt + 16 > len(buf) and any(t.startswith(rest) for t in wanted + stray):
                    self._pending = buf[lt:]  # a tag may be completed by the next chunk
                    break
                self._emit(buf[lt], out_thinking, out_answer)
                i = lt + 1
                continue
            if tag in stray:
                self._held_space = ""  # a close tag with no open one: drop it
            elif self._close:
                self._close = None
                self._held_space = ""
                self.blocks_closed += 1
            else:
                self._close = close_tag_for(tag)
                self._separate = self._seen_thinking or bool(out_thinking)
            self._at_block_start = True
            i = lt + len(tag)
        return self._record(out_thinking, out_answer, t_tokens, a_tokens)

    def feed_thinking(self, text: str, tokens: int = 0) -> Split:
        """Reasoning that arrived in its own field (no tags): all of it is thinking."""
        if not self._seen_thinking:
            text = text.lstrip()  # leading whitespace of a block is dropped, as with tags
        return self._record([text] if text else [], [], tokens, 0)

    def feed_answer(self, text: str, tokens: int = 0) -> Split:
        """Answer text that arrived in its own field: all of it is answer, never scanned."""
        if not self._seen_answer:
            text = text.lstrip()
        return self._record([], [text] if text else [], 0, tokens)

    def finish(self) -> Split:
        """End of stream: release held-back text (an unfinished tag is plain text then)."""
        out_thinking: list[str] = []
        out_answer: list[str] = []
        pending, self._pending = self._pending, ""
        self._emit(pending, out_thinking, out_answer)
        if self._held_space:
            out_thinking.append(self._held_space)
            self._held_space = ""
        return self._record(out_thinking, out_answer, 0, 0)

    def _emit(self, text: str, out_thinking: list[str], out_answer: list[str]) -> None:
        if not text:
            return
        if self._at_block_start:
            text = text.lstrip()
            if not text:
                return
            self._at_block_start = False
            if self._close and self._separate:
                text = "\n\n" + text
                self._separate = False
        if self._close:
            body = text.rstrip()
            if body:
                out_thinking.append(self._held_space + body)
                self._held_space = text[len(body) :]
            else:
                self._held_space += text
        else:
            out_answer.append(text)

    def _record(
        self, out_thinking: list[str], out_answer: list[str], t_tokens: int, a_tokens: int
    ) -> Split:
        split = Split("".join(out_thinking), "".join(out_answer), t_tokens, a_tokens)
        self._seen_thinking = self._seen_thinking or bool(split.thinking)
        self._seen_answer = self._seen_answer or bool(split.answer)
        self.thinking_tokens += t_tokens
        self.answer_tokens += a_tokens
        return split


def _next_tag_start(buf: str, start: int) -> int:
    lt = buf.find("<", start)
    br = buf.find("[", start)
    if lt < 0:
        return br
    if br < 0:
        return lt
    return min(lt, br)


def split_text(text: str, start_in_thinking: bool = False, open_tag: str = "<think>") -> Split:
    """Split a whole text at once (the same result as feeding it in any chunks)."""
    splitter = ThinkSplitter(start_in_thinking, open_tag)
    return splitter.feed(text) + splitter.finish()
