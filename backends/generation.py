"""What every local engine shares: the parsed `chat` request and the think-block tracker.

The llama.cpp and MLX engines both stream raw text and end the thinking on request (Answer
now, thinking budget) by closing the think tag in the prompt; this module holds the parts
they must agree on, so the two cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from backends.base import EngineFailure, GenerationControl
from backends.think_tags import close_tag_for
from backends.util import process_rss

DEFAULT_N_CTX = 8192


@dataclass
class ChatRequest:
    request_id: str
    messages: list[dict[str, str]]
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 4096
    thinking_budget: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
    budget = p.get("thinking_budget")
    return ChatRequest(
        request_id=str(cmd.get("id")),
        messages=messages,
        temperature=float(p.get("temperature", 0.6)),
        top_p=float(p.get("top_p", 0.95)),
        max_tokens=max(1, int(p.get("max_tokens", 4096))),
        thinking_budget=int(budget) if budget else None,
        seed=p.get("seed"),
    )


class ThinkState:
    """Tracks whether the stream is inside the think block, for Answer now and the budget."""

    def __init__(self, thinking: bool, close_tag: str) -> None:
        self.thinking = thinking
        self.close_tag = close_tag
        self.open_tag = {"</think>": "<think>", "</thinking>": "<thinking>"}.get(
            close_tag, "[THINK]"
        )
        self.text = ""
        self.thinking_tokens = 0

    def feed(self, text: str, tokens: int = 1) -> None:
        start = max(0, len(self.text) - len(self.close_tag))
        self.text += text
        if self.thinking:
            self.thinking_tokens += tokens
        tail = self.text[start:]
        if self.thinking and self.close_tag in tail:
            self.thinking = False
        elif not self.thinking and self.open_tag in tail:
            self.thinking = True


def done_stats(
    produced: int,
    prompt_tokens: int,
    t0: float,
    first: float | None,
    stop: str,
    state: ThinkState,
    **extra: Any,
) -> dict[str, Any]:
    """The `done` event's numbers, the same keys for every engine (plus engine `extra`)."""
    now = time.perf_counter()
    decode_s = (now - first) if first else 0.0
    return {
        "completion_tokens": produced,
        "prompt_tokens": prompt_tokens,
        "ttft_s": round(first - t0, 4) if first else None,
        "decode_tps": round((produced - 1) / decode_s, 2) if produced > 1 and decode_s else None,
        "elapsed_s": round(now - t0, 4),
        "stop_reason": stop,
        "thinking_tokens": state.thinking_tokens,
        "ended_in_thinking": state.thinking,
        "peak_rss_bytes": process_rss(),
        **extra,
    }


def should_end_thinking(state: ThinkState, req: ChatRequest, control: GenerationControl) -> bool:
    """Inside the thinking and asked to answer now, or over the thinking budget."""
    over_budget = req.thinking_budget is not None and state.thinking_tokens >= req.thinking_budget
    return state.thinking and (control.answer_now or over_budget)


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
