"""What every engine shares: the parsed `chat` request, the answer stream and its rules.

`AnswerStream` is the one path a generated token takes inside the engine process: its bytes
go through an incremental UTF-8 decoder (a character split over several byte tokens is held
back until complete), the text through the one think-tag state machine
(backends/think_tags.py), and the typed parts, with exact token counts, to `emit_parts`
(the host batches them by time). Nothing here grows with the text already produced.

`end_thinking_reason` is the one rule for ending the thinking early: Answer now, the
thinking budget, or the context filling up (room is kept for the answer).
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass, field
from typing import Any

from backends.base import EmitParts, EngineFailure, GenerationControl
from backends.think_tags import ThinkSplitter, close_tag_for
from backends.util import process_rss

DEFAULT_N_CTX = 16384  # answers run to 2K-20K tokens; capped by the model
DEFAULT_ANSWER_RESERVE = 1024


@dataclass
class ChatRequest:
    request_id: str
    messages: list[dict[str, str]]
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int | None = None  # None: the rest of the context
    thinking_budget: int | None = None
    answer_reserve: int = DEFAULT_ANSWER_RESERVE
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks only: keep generating past the end token
    # False: answer without thinking where the chat template has a switch (Qwen3's
    # enable_thinking); a template without one thinks as usual
    thinking: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise EngineFailure("bad_request", f"{name} must be a whole number.") from None


def parse_request(cmd: dict[str, Any]) -> ChatRequest:
    """Validate a `chat` command; raise EngineFailure("bad_request") in words."""
    messages = cmd.get("messages")
    if not isinstance(messages, list) or not messages:
        raise EngineFailure("bad_request", "There is nothing to answer: the message list is empty.")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise EngineFailure("bad_request", "Each message needs a role and a text content.")
        if m.get("role") not in ("system", "user", "assistant"):
            raise EngineFailure("bad_request", f"Unknown message role {m.get('role')!r}.")
    p = cmd.get("params") or {}
    max_tokens = _int_or_none(p.get("max_tokens"), "max_tokens")
    budget = _int_or_none(p.get("thinking_budget"), "thinking_budget")
    reserve = _int_or_none(p.get("answer_reserve"), "answer_reserve")
    try:
        temperature, top_p = float(p.get("temperature", 0.6)), float(p.get("top_p", 0.95))
    except (TypeError, ValueError):
        raise EngineFailure("bad_request", "temperature and top_p must be numbers.") from None
    thinking = p.get("thinking", True)
    if not isinstance(thinking, bool):
        raise EngineFailure("bad_request", "thinking must be true or false.")
    return ChatRequest(
        request_id=str(cmd.get("id")),
        messages=messages,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max(1, max_tokens) if max_tokens is not None else None,
        thinking_budget=budget if budget and budget > 0 else None,
        answer_reserve=max(0, reserve) if reserve is not None else DEFAULT_ANSWER_RESERVE,
        seed=_int_or_none(p.get("seed"), "seed"),
        ignore_eos=bool(p.get("ignore_eos", False)),
        thinking=thinking,
    )


class AnswerStream:
    """One answer in the making: bytes or text per token in, typed parts out."""

    def __init__(self, open_tag: str | None, emit_parts: EmitParts) -> None:
        self.splitter = ThinkSplitter(open_tag is not None, open_tag or "<think>")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._emit = emit_parts
        self._raw: list[str] = []
        self.produced = 0  # tokens the model generated (not the ones Ponder inserted)
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.thinking_ended_by: str | None = None
        self._in_field = False  # a server is sending reasoning in its own field

    @property
    def thinking(self) -> bool:
        return self.splitter.in_thinking or self._in_field

    def add_bytes(self, piece: bytes) -> None:
        """One generated token's bytes (possibly part of a multi-byte character)."""
        self.add_text(self._decoder.decode(piece), 1)

    def add_text(self, text: str, tokens: int = 1) -> None:
        """Generated text and the tokens that made it (text may be empty: bytes held back)."""
        self._count(tokens)
        if text:
            self._raw.append(text)
        self._send(self.splitter.feed(text, tokens))

    def add_reasoning(self, text: str, tokens: int = 1) -> None:
        """Reasoning a server sent in its own field: thinking, never scanned for tags."""
        self._count(tokens)
        if not self._in_field:
            self._raw.append("<think>")
            self._in_field = True
        self._raw.append(text)
        self._send(self.splitter.feed_thinking(text, tokens))

    def add_answer(self, text: str, tokens: int = 1) -> None:
        """Answer text from a server that sends reasoning separately: never scanned for tags."""
        self._count(tokens)
        if self._in_field:
            self._raw.append("</think>\n\n")
            self._in_field = False
        self._raw.append(text)
        self._send(self.splitter.feed_answer(text, tokens))

    def _count(self, tokens: int) -> None:
        if tokens and self.first is None:
            self.first = time.perf_counter()
        self.produced += tokens

    def insert_text(self, text: str) -> None:
        """Text Ponder puts into the answer (the closing tag of Answer now): no tokens."""
        self._raw.append(self._decoder.decode(b"", final=True) + text)
        self._decoder.reset()
        self._send(self.splitter.feed(text, 0))

    def close_thinking(self, reason: str) -> str:
        """Record why the thinking ended early; the text that closes the block."""
        self.thinking_ended_by = reason
        closing = "\n" + self.splitter.close_tag + "\n\n"
        self.insert_text(closing)
        return closing

    def finish(self) -> None:
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._raw.append(tail)
        self._send(self.splitter.feed(tail, 0) + self.splitter.finish())

    def _send(self, split: Any) -> None:
        if split:
            self._emit(split.thinking, split.answer, split.thinking_tokens, split.answer_tokens)

    def raw(self) -> str:
        return "".join(self._raw)

    def done_stats(self, prompt_tokens: int, stop: str, **extra: Any) -> dict[str, Any]:
        """The `done` event's numbers, the same keys for every engine (plus engine `extra`)."""
        now = time.perf_counter()
        first = self.first
        decode_s = (now - first) if first else 0.0
        produced = self.produced
        tps = round((produced - 1) / decode_s, 2) if produced > 1 and decode_s else None
        return {
            "completion_tokens": produced,
            "prompt_tokens": prompt_tokens,
            "thinking_tokens": self.splitter.thinking_tokens,
            "answer_tokens": self.splitter.answer_tokens,
            "ttft_s": round(first - self.t0, 4) if first else None,
            "decode_tps": tps,
            "elapsed_s": round(now - self.t0, 4),
            "stop_reason": stop,
            "thinking_ended_by": self.thinking_ended_by,
            "ended_in_thinking": self.thinking,
            "peak_rss_bytes": process_rss(),
            "raw": self.raw(),
            **extra,
        }


def end_thinking_reason(
    stream: AnswerStream,
    req: ChatRequest,
    control: GenerationControl,
    used: int,
    n_ctx: int,
) -> str | None:
    """Why the thinking must end now ("answer_now", "budget", "context"), or None.

    `used` is the number of tokens in the context (prompt + generated). Room for the answer
    is kept: when the thinking reaches the context minus the answer reserve, it is ended the
    way Answer now ends it, so a reasoning answer never stops at the limit with no answer.
    """
    if not stream.thinking:
        return None
    if control.answer_now:
        return "answer_now"
    if req.thinking_budget is not None and stream.splitter.thinking_tokens >= req.thinking_budget:
        return "budget"
    reserve = min(req.answer_reserve, n_ctx // 4)
    if reserve and used >= n_ctx - reserve:
        return "context"
    return None


def token_limit(req: ChatRequest, prompt_tokens: int, n_ctx: int) -> int:
    """How many tokens this answer may generate: max_tokens, or the rest of the context."""
    room = n_ctx - prompt_tokens
    return room if req.max_tokens is None else min(req.max_tokens, room)


def check_fits(prompt_tokens: int, n_ctx: int) -> None:
    """Refuse, in words, a conversation that does not fit the loaded context."""
    if prompt_tokens >= n_ctx:
        raise EngineFailure(
            "context_overflow",
            f"The conversation is {prompt_tokens:,} tokens long but the model was loaded "
            f"with a {n_ctx:,}-token context: start a new chat, drop old turns, or reload "
            "with a larger context.",
        )


def started_event(request_id: str, prompt_tokens: int, open_tag: str | None) -> dict[str, Any]:
    """The `started` event: prompt size and whether the prompt pre-opened the thinking."""
    return {
        "event": "started",
        "id": request_id,
        "prompt_tokens": prompt_tokens,
        "thinking_open": open_tag is not None,
        "think_start": open_tag or "<think>",
        "think_end": close_tag_for(open_tag or "<think>"),
    }
