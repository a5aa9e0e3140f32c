"""Reading a server's answer stream: SSE or Ollama JSON lines into thinking-tagged text.

Reasoning a server sends in its own field (`reasoning_content`, `reasoning`, Ollama's
`thinking`) goes straight to the thinking; plain `<think>` text in `content` goes through
the engines' one think-tag state machine (`Framer`, over `AnswerStream`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from backends.base import EngineFailure
from backends.generation import AnswerStream, EmitParts
from backends.remote_http import server_message
from backends.think_tags import TAG_STYLES


class MalformedChunk(ValueError):
    """A piece of the stream that is not what the server's API sends (says what was wrong)."""


def sse_events(lines: Iterable[bytes]) -> Iterator[str]:
    """The `data` payloads of a server-sent-event stream (multi-line data joined by \\n).

    llama-server builds of 2025 send a failure as a non-standard `error:` field at HTTP 200
    (then `data: [DONE]`); it comes out as a `{"error": …}` payload.
    """
    data: list[str] = []
    for raw in lines:
        if not raw.endswith(b"\n"):
            break  # a line cut off by a lost connection is not an event
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "error":
            try:
                said: Any = json.loads(value)
            except ValueError:
                said = {"message": value}
            yield json.dumps({"error": said})
    if data:
        yield "\n".join(data)


@dataclass
class Piece:
    """One parsed chunk: reasoning text, answer text, and what ended the stream."""

    reasoning: str = ""
    content: str = ""
    finish: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    done: bool = False


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):  # content parts
        return "".join(p["text"] for p in value if isinstance(p.get("text"), str))
    raise MalformedChunk(f"{what} is {type(value).__name__}, not text")


def _error_text(obj: dict[str, Any]) -> str:
    said = server_message(json.dumps(obj).encode())
    if not any(c.isalpha() for c in said):  # `{"error": 0}`, `{"error": {"code": 500}}`
        return f"no reason given (it sent {json.dumps(obj)[:120]})"
    return said


def parse_openai_chunk(payload: str) -> Piece:
    """One SSE `data` payload of /v1/chat/completions; MalformedChunk for anything else."""
    if payload.strip() == "[DONE]":
        return Piece(done=True)
    try:
        obj = json.loads(payload)
    except ValueError:
        raise MalformedChunk(f"not JSON: {payload[:80]!r}") from None
    if not isinstance(obj, dict):
        raise MalformedChunk(f"a JSON {type(obj).__name__}, not an object: {payload[:80]!r}")
    if obj.get("error") not in (None, "", {}, []):
        return Piece(error=_error_text(obj))
    usage = obj.get("usage")
    piece = Piece(usage=usage if isinstance(usage, dict) else None)
    choices = obj.get("choices") or []
    if not isinstance(choices, list) or (choices and not isinstance(choices[0], dict)):
        raise MalformedChunk("`choices` is not a list of objects")
    if choices:
        choice = choices[0]
        delta = choice.get("delta") or choice.get("message") or {}
        if not isinstance(delta, dict):
            raise MalformedChunk("`delta` is not an object")
        piece.reasoning = (_text(delta.get("reasoning_content"), "reasoning_content")
                           or _text(delta.get("reasoning"), "reasoning")
                           or _text(delta.get("thinking"), "thinking"))  # fmt: skip
        piece.content = _text(delta.get("content"), "content")
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise MalformedChunk("`finish_reason` is not text")
        piece.finish = finish or None
    return piece


def parse_ollama_line(line: bytes) -> Piece:
    """One JSON line of Ollama's native /api/chat stream; MalformedChunk for anything else."""
    try:
        obj = json.loads(line)
    except ValueError:
        raise MalformedChunk(f"not JSON: {line[:80]!r}") from None
    if not isinstance(obj, dict):
        raise MalformedChunk(f"a JSON {type(obj).__name__}, not an object")
    if obj.get("error") not in (None, "", {}, []):
        return Piece(error=_error_text(obj))
    msg = obj.get("message") or {}
    if not isinstance(msg, dict):
        raise MalformedChunk("`message` is not an object")
    piece = Piece(reasoning=_text(msg.get("thinking"), "thinking"),
                  content=_text(msg.get("content"), "content"))  # fmt: skip
    if obj.get("done"):
        piece.finish = str(obj.get("done_reason") or "stop")
        counts = (obj.get("prompt_eval_count"), obj.get("eval_count"))
        piece.usage = {
            "prompt_tokens": counts[0] if isinstance(counts[0], int) else None,
            "completion_tokens": counts[1] if isinstance(counts[1], int) else None,
        }
        piece.done = True
    return piece


FORMATS = ("auto", "field", "tags", "none")
AUTO_HOLD_CHARS = 800  # Auto holds untagged text this long, waiting for a `</think>`
_CLOSE_TAGS = tuple(c for _, c in TAG_STYLES)
_TAIL = max(len(c) for c in _CLOSE_TAGS) - 1


class Framer:
    """Feeds a server's pieces into the engine's `AnswerStream`, by the reasoning format.

    - "field": reasoning comes in its own field (`reasoning_content`, `reasoning`, Ollama's
      `thinking`); `content` is the answer as it is, never scanned for tags.
    - "tags": `content` carries `<think>…</think>`; when it does not open a block itself,
      it starts inside one (a template that pre-opens `<think>`).
    - "none": `content` is the answer as it is.
    - "auto": a reasoning field when the server sends one (then `content` is never scanned
      again); otherwise `content` starting with an open tag is tagged text, and text that
      does not is held (at most AUTO_HOLD_CHARS plus one piece) until a closing tag shows
      that everything before it was thinking; past the limit it streams as thinking, and
      at the end of a short reply with no tag it is the answer.

    In every format, once a think block has closed, `content` is the answer as it is: tags
    in the answer (a code block about `<think>`) stay where they are. A field's reasoning is
    never scanned for tags either.

    The `started` event waits for that decision, since it says whether the answer starts in
    the thinking.
    """

    def __init__(self, assume_open: bool, emit_started: Any, emit_parts: EmitParts,
                 fmt: str = "auto") -> None:  # fmt: skip
        self.assume_open = assume_open
        self.fmt = fmt if fmt in FORMATS else "auto"
        self._emit_started = emit_started
        self._emit_parts = emit_parts
        self.started = False
        self.thinking_open = False
        self.fields = False  # the server sends reasoning in its own field
        self.provisional = False  # untagged text taken for thinking only because it ran long
        self.seen_thinking = False  # non-blank thinking was sent
        self.seen_answer = False  # non-blank answer was sent
        self._answer_only = False  # from now on `content` is the answer as it is
        self._held = ""
        self._held_tokens = 0
        self._tail = ""  # the end of the tagged text fed so far (a close tag may span pieces)
        self.answer = AnswerStream(None, self._parts)
        self.pieces = 0

    def _parts(self, thinking: str, answer: str, t_tokens: int, a_tokens: int) -> None:
        self.seen_thinking = self.seen_thinking or bool(thinking.strip())
        self.seen_answer = self.seen_answer or bool(answer.strip())
        self._emit_parts(thinking, answer, t_tokens, a_tokens)

    def _start(self, open_tag: str | None) -> None:
        self.started = True
        self.thinking_open = open_tag is not None
        t0 = self.answer.t0
        self.answer = AnswerStream(open_tag, self._parts)
        self.answer.t0 = t0
        self._emit_started(self.thinking_open)

    def feed(self, piece: Piece) -> None:
        if piece.reasoning:
            if not self.started:
                self._start(None)
            elif self._held:
                self._flush_held(None)
            self.fields = True
            self.pieces += 1
            self.answer.add_reasoning(piece.reasoning, 1)
        if not piece.content:
            return
        self.pieces += 1
        if self._answer_only or self.fmt in ("field", "none") or self.fields:
            if not self.started:
                self._start(None)
            self._answer_text(piece.content, 1)
            return
        if self.started and not self._held:
            self._tagged(piece.content, 1)
            return
        self._held += piece.content
        self._held_tokens += 1
        decision = self._decide()
        if decision is not False:
            self._flush_held(decision)

    def _decide(self) -> str | None | Literal[False]:
        """The open tag the answer starts inside, None if it starts outside, False: hold on."""
        head = self._held.lstrip()
        if any(head.startswith(o) for o, _ in TAG_STYLES):
            return None
        if any(o.startswith(head) for o, _ in TAG_STYLES):
            return False  # maybe the start of an open tag
        if self.fmt == "tags" or self.assume_open:
            return "<think>"
        found = [(self._held.find(c), o) for o, c in TAG_STYLES if c in self._held]
        if found:  # a closing tag with no opening one: everything before it was thinking
            return min(found)[1]
        if len(self._held) > AUTO_HOLD_CHARS:
            self.provisional = True
            return "<think>"
        return False

    def _flush_held(self, open_tag: str | None) -> None:
        if not self.started:
            self._start(open_tag)
        text, self._held = self._held, ""
        tokens, self._held_tokens = self._held_tokens, 0
        if text or tokens:
            self._tagged(text, tokens)

    def _answer_text(self, text: str, tokens: int) -> None:
        self.answer.add_answer(text, tokens)

    def _tagged(self, text: str, tokens: int) -> None:
        """Tagged text: up to the first closing tag through the splitter, then answer."""
        splitter = self.answer.splitter
        while text:
            if self._answer_only:
                self._answer_text(text, tokens)
                return
            buf = self._tail + text
            ends = [at + len(c) - len(self._tail) for c in _CLOSE_TAGS
                    if (at := buf.find(c, max(0, len(self._tail) - len(c) + 1))) >= 0]  # fmt: skip
            if not ends:
                self.answer.add_text(text, tokens)
                self._tail = buf[-_TAIL:]
                return
            head, text = text[: min(ends)], text[min(ends) :]
            closed = splitter.blocks_closed
            self.answer.add_text(head, tokens)
            tokens = 0
            self._tail = (self._tail + head)[-_TAIL:]
            if splitter.blocks_closed > closed and not splitter.in_thinking:
                self._answer_only = True

    def finish(self) -> None:
        if self._held or not self.started:
            decision = self._decide() if self._held.strip() else None
            if decision is False:  # a short reply with no tag at all: the answer
                if not self.started:
                    self._start(None)
                text, self._held = self._held, ""
                self._answer_text(text, self._held_tokens)
                self._held_tokens = 0
            else:
                self._flush_held(decision)
        self.answer.finish()


def ending_failure(finish: str | None, framer: Framer, where: str,
                   max_tokens: int | None) -> EngineFailure | None:  # fmt: skip
    """Why an answer that ended without an error is still not an answer, in words; or None.

    `finish` is the server's finish reason ("" when the stream ended with only [DONE]).
    """
    if finish == "abort":
        return EngineFailure("internal", f"The server at {where} aborted the answer (finish "
                             "reason \u201cabort\u201d): it was stopped on the server, by a "
                             "restart, a timeout or running out of memory there. What arrived "
                             "is kept; ask again.", "finish_reason: abort")  # fmt: skip
    said = f"finish reason \u201c{finish}\u201d" if finish else "only [DONE]"
    if not framer.seen_thinking and not framer.seen_answer:
        return EngineFailure("internal", f"The server at {where} ended the answer without "
                             f"sending any text ({said}). Its log may say why; ask again.",
                             f"empty stream: {said}")  # fmt: skip
    if framer.seen_answer:
        return None
    if finish == "length":
        if max_tokens is not None:
            return None  # the user's own length limit: the window says so
        return EngineFailure("internal", f"The server's own length limit ended the answer "
                             f"while the model was still thinking ({framer.answer.produced:,} "
                             "pieces), so there is no answer. Raise the server's limit (its "
                             "context size or max tokens), or set a thinking budget in Settings.",
                             "finish_reason: length, no answer")  # fmt: skip
    if framer.provisional:
        return EngineFailure("internal", "The whole reply is in the thinking panel: it never "
                             "closed a think block. If this model does not think, set its "
                             "Reasoning format to \u201cnone\u201d in Connect to a server.",
                             f"{said}, no closing tag")  # fmt: skip
    return EngineFailure("internal", "The model ended its thinking without writing an answer "
                         f"({said}). The thinking is kept above; ask again, or ask it to give "
                         "the answer.", f"{said}, thinking only")  # fmt: skip
