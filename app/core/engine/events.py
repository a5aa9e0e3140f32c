"""What a generation stream delivers to the GUI and the CLI, after the reasoning split.

The engine process sends raw text; the client runs it through the `ReasoningSplitter` and
hands out these values, so no consumer ever parses think tags itself.
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
    """A batch of new text: `thinking` and `answer` are the split parts, `raw` the exact text."""

    request_id: str
    thinking: str
    answer: str
    raw: str
    tokens: int = 0  # tokens in this batch (approximate when the engine batches)


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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamError:
    request_id: str | None
    kind: str  # one of backends.base.ERROR_KINDS
    message: str  # a sentence a person can act on
    detail: str = ""  # e.g. the last lines of the engine's stderr


StreamEvent = StreamStarted | TextDelta | StreamDone | StreamError
