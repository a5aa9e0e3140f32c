"""What a generation stream delivers to the GUI and the CLI.

The engine process splits thinking from answer itself (backends/think_tags.py, the one
think-tag state machine) and sends typed parts with exact token counts; the client turns
its JSON events into these values, so no consumer ever parses think tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StreamStarted:
    request_id: str
    prompt_tokens: int
    thinking_open: bool  # the prompt already opened a think block: output starts thinking


@dataclass(frozen=True)
class TextDelta:
    """A batch of new text, split by the engine, with the exact tokens behind each part."""

    request_id: str
    thinking: str
    answer: str
    thinking_tokens: int = 0
    answer_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens


@dataclass(frozen=True)
class StreamDone:
    request_id: str
    stop_reason: str  # "eos", "length", "cancelled"
    completion_tokens: int
    prompt_tokens: int
    ttft_s: float | None
    decode_tps: float | None
    elapsed_s: float
    thinking_tokens: int = 0
    ended_in_thinking: bool = False  # stopped before the think block closed
    answer_tokens: int = 0
    # what ended the thinking early: "answer_now", "budget", "context" (room kept for the
    # answer ran out), or None when the model closed it itself
    thinking_ended_by: str | None = None
    raw: str = ""  # exactly what the model wrote, tags included (sent once, at the end)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamError:
    request_id: str | None
    kind: str  # one of backends.base.ERROR_KINDS
    message: str  # a sentence a person can act on
    detail: str = ""  # e.g. the last lines of the engine's stderr


StreamEvent = StreamStarted | TextDelta | StreamDone | StreamError
