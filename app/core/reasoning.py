"""Split a model's raw text stream into thinking and answer, chunk by chunk.

Reasoning models wrap their chain of thought in tags (`<think>…</think>`, `<thinking>…`,
`[THINK]…[/THINK]`). The DeepSeek-R1 templates already open the block in the prompt, so
the output often carries only the closing tag: start the splitter with
`start_in_thinking=True` then. Tags may arrive split across chunks at any character; a
partial tag at the end of a chunk is held back until the next chunk decides it. The
result never depends on how the text was chunked.

Servers that send reasoning as a separate field (`reasoning_content`, Ollama's
`thinking`) bypass the tags: feed those with `feed_thinking`.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.think_tags import TAG_STYLES, close_tag_for, prompt_opens_thinking

__all__ = [
    "TAG_STYLES",
    "ReasoningSplitter",
    "Split",
    "close_tag_for",
    "prompt_opens_thinking",
    "split_text",
]


@dataclass(frozen=True)
class Split:
    """New text since the last call: the part that is thinking and the part that is answer."""

    thinking: str = ""
    answer: str = ""

    def __add__(self, other: Split) -> Split:
        return Split(self.thinking + other.thinking, self.answer + other.answer)

    def __bool__(self) -> bool:
        return bool(self.thinking or self.answer)


class ReasoningSplitter:
    """Feed raw text chunks, get `Split` deltas; call `finish()` at the end of the stream."""

    def __init__(self, start_in_thinking: bool = False, open_tag: str = "<think>") -> None:
        self._close: str | None = close_tag_for(open_tag) if start_in_thinking else None
        self._pending = ""  # text that may be the start of a tag
        self._held_space = ""  # whitespace at the end of thinking, dropped if a close tag follows
        self._at_block_start = True  # leading whitespace of a block is dropped
        self._separate = False  # a second think block starts on a new paragraph
        self.thinking_text = ""
        self.answer_text = ""
        self.blocks_closed = 0

    @property
    def in_thinking(self) -> bool:
        return self._close is not None

    def feed(self, text: str) -> Split:
        """Take the next chunk of raw model output; return what it adds."""
        out_thinking: list[str] = []
        out_answer: list[str] = []
        buf = self._pending + text
        self._pending = ""
        i = 0
        while i < len(buf):
            wanted = (self._close,) if self._close else tuple(o for o, _ in TAG_STYLES)
            stray = () if self._close else tuple(c for _, c in TAG_STYLES)
            lt = _next_tag_start(buf, i)
            if lt < 0:
                self._emit(buf[i:], out_thinking, out_answer)
                break
            self._emit(buf[i:lt], out_thinking, out_answer)
            rest = buf[lt:]
            tag = next((t for t in wanted + stray if rest.startswith(t)), None)
            if tag is None:
                if any(t.startswith(rest) for t in wanted + stray):
                    self._pending = rest  # a tag may be completed by the next chunk
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
                self._separate = bool(self.thinking_text or out_thinking)
            self._at_block_start = True
            i = lt + len(tag)
        return self._record(out_thinking, out_answer)

    def feed_thinking(self, text: str) -> Split:
        """Reasoning that arrived as its own field (no tags): all of it is thinking."""
        return self._record([text], [])

    def finish(self) -> Split:
        """End of stream: release held-back text (an unfinished tag is plain text then)."""
        out_thinking: list[str] = []
        out_answer: list[str] = []
        pending, self._pending = self._pending, ""
        self._emit(pending, out_thinking, out_answer)
        if self._held_space:
            out_thinking.append(self._held_space)
            self._held_space = ""
        return self._record(out_thinking, out_answer)

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

    def _record(self, out_thinking: list[str], out_answer: list[str]) -> Split:
        split = Split("".join(out_thinking), "".join(out_answer))
        self.thinking_text += split.thinking
        self.answer_text += split.answer
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
    splitter = ReasoningSplitter(start_in_thinking, open_tag)
    return splitter.feed(text) + splitter.finish()
