"""Reading a server's answer stream: SSE or Ollama JSON lines into thinking-tagged text.

Reasoning a server sends in its own field (`reasoning_content`, `reasoning`, Ollama's
`thinking`) goes straight to the thinking; plain `<think>` text in `content` goes through
the engines' one think-tag state machine (`Framer`, over `AnswerStream`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from backends.generation import AnswerStream, EmitParts
from backends.remote_http import server_message
from backends.think_tags import TAG_STYLES


def sse_events(lines: Iterator[bytes]) -> Iterator[str]:
    """The `data` payloads of a server-sent-event stream (multi-line data joined by \\n)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
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


def parse_openai_chunk(payload: str) -> Piece:
    """One SSE `data` payload of /v1/chat/completions."""
    if payload.strip() == "[DONE]":
        return Piece(done=True)
    try:
        obj = json.loads(payload)
    except ValueError:
        return Piece()
    if not isinstance(obj, dict):
        return Piece()
    if obj.get("error"):
        return Piece(error=server_message(json.dumps(obj).encode()))
    piece = Piece(usage=obj.get("usage") if isinstance(obj.get("usage"), dict) else None)
    choices = obj.get("choices") or []
    if choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta") or choice.get("message") or {}
        piece.reasoning = (delta.get("reasoning_content") or delta.get("reasoning")
                           or delta.get("thinking") or "")  # fmt: skip
        piece.content = delta.get("content") or ""
        if not isinstance(piece.content, str):  # content parts
            piece.content = "".join(p.get("text", "") for p in piece.content if isinstance(p, dict))
        piece.finish = choice.get("finish_reason")
    return piece


def parse_ollama_line(line: bytes) -> Piece:
    """One JSON line of Ollama's native /api/chat stream."""
    try:
        obj = json.loads(line)
    except ValueError:
        return Piece()
    if not isinstance(obj, dict):
        return Piece()
    if obj.get("error"):
        return Piece(error=str(obj["error"])[:300])
    msg = obj.get("message") or {}
    piece = Piece(reasoning=msg.get("thinking") or "", content=msg.get("content") or "")
    if obj.get("done"):
        piece.finish = obj.get("done_reason") or "stop"
        piece.usage = {"prompt_tokens": obj.get("prompt_eval_count"),
                       "completion_tokens": obj.get("eval_count")}  # fmt: skip
        piece.done = True
    return piece


class Framer:
    """Feeds a server's pieces into the engine's `AnswerStream`.

    Reasoning in its own field (`reasoning_content`, `reasoning`, Ollama's `thinking`) is
    thinking as it is, and once a server has sent one, its `content` is answer as it is:
    neither is scanned for tags again (a literal `<think>` in an answer stays there). A
    server without a reasoning parser sends `<think>` text in `content`; that goes through
    the think-tag state machine.

    The `started` event waits for the first text, because only then is it known whether the
    server sends reasoning as a field or as text, and whether that text opens its own think
    block or starts inside one (a template that pre-opens `<think>`).
    """

    def __init__(self, assume_open: bool, emit_started: Any, emit_parts: EmitParts) -> None:
        self.assume_open = assume_open
        self._emit_started = emit_started
        self._emit_parts = emit_parts
        self.started = False
        self.thinking_open = False
        self.fields = False  # the server sends reasoning in its own field
        self._held = ""
        self._held_tokens = 0
        self.answer = AnswerStream(None, emit_parts)
        self.pieces = 0

    def _start(self, thinking_open: bool) -> None:
        self.started = True
        self.thinking_open = thinking_open
        t0 = self.answer.t0
        self.answer = AnswerStream("<think>" if thinking_open else None, self._emit_parts)
        self.answer.t0 = t0
        self._emit_started(thinking_open)

    def feed(self, piece: Piece) -> None:
        if piece.reasoning:
            if not self.started:
                self._start(False)
            elif self._held:
                self._flush_held()
            self.fields = True
            self.pieces += 1
            self.answer.add_reasoning(piece.reasoning, 1)
        if piece.content:
            self.pieces += 1
            if self.fields:
                self.answer.add_answer(piece.content, 1)
                return
            if self.started and not self._held:
                self.answer.add_text(piece.content, 1)
                return
            self._held += piece.content
            self._held_tokens += 1
            head = self._held.lstrip()
            opens = any(head.startswith(o) for o, _ in TAG_STYLES)
            maybe = any(o.startswith(head) for o, _ in TAG_STYLES)
            if opens or not maybe:
                self._flush_held()

    def _flush_held(self) -> None:
        head = self._held.lstrip()
        opens = next((o for o, _ in TAG_STYLES if head.startswith(o)), None)
        if not self.started:
            self._start(self.assume_open and opens is None)
        text, self._held = self._held, ""
        tokens, self._held_tokens = self._held_tokens, 0
        if text or tokens:
            self.answer.add_text(text, tokens)

    def finish(self) -> None:
        if self._held or not self.started:
            self._flush_held()
        self.answer.finish()
