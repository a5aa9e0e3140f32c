"""OpenAI's chat API in and out: a request body read into engine parameters, and the shapes of
a completion, a streamed chunk and usage.

Thinking goes out as `reasoning_content` (vLLM's and SGLang's reasoning parsers) and, with
the same text, `reasoning` (newer vLLM), never inside `content`. Extension: `thinking_budget`
(tokens of thinking before the model must answer, as Ponder's budget; 0 or null: none) and
`answer_reserve` (context kept for the answer). `chat_template_kwargs: {"enable_thinking":
false}` (as vLLM and SGLang take it for Qwen3) answers without thinking where the model's
template has that switch. Sampling defaults are the model family's (DeepSeek's 0.6 / 0.95
for R1). Earlier assistant turns go back without their reasoning.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.core.generation_settings import settings_for
from app.serve.errors import ServeError
from app.serve.stops import MAX_STOPS
from backends.think_tags import TAG_STYLES

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass
class ChatCall:
    """One /v1/chat/completions request, checked: what goes to the engine and back."""

    model: str
    messages: list[dict[str, str]]
    params: dict[str, Any]  # EngineClient.chat keyword arguments
    stops: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))


def _bad(message: str, param: str | None = None) -> ServeError:
    return ServeError(400, message, param=param, code="invalid_value" if param else None)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _bad(f"{name} must be a number from {low:g} to {high:g}.", name)
    return float(value)


def _whole(body: dict[str, Any], name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(f"{name} must be a whole number of at least {low}.", name)
    return value


def _text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _bad(f"messages[{index}]: Ponder's models read text only.", "messages")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise _bad(f"messages[{index}].content must be text.", "messages")


def without_reasoning(text: str) -> str:
    """An earlier answer as it goes back to the model: the text after its thinking."""
    for _, close in TAG_STYLES:
        if close in text:
            text = text.split(close)[-1].lstrip()
    return text


def read_messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise _bad("messages must be a list with at least one message.", "messages")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else None
            raise _bad(f"messages[{i}]: the role {role!r} is not one Ponder can send to a "
                       "model (system, developer, user, assistant).", "messages")  # fmt: skip
        role = ROLES[m["role"]]
        text = _text(m.get("content"), i)
        out.append({"role": role, "content": without_reasoning(text) if role == "assistant"
                    else text})  # fmt: skip
    return out


def read_stops(raw: Any) -> list[str]:
    stops = [raw] if isinstance(raw, str) else raw if raw is not None else []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("stop must be a string or a list of strings.", "stop")
    if len(stops) > MAX_STOPS:
        raise _bad(f"stop takes at most {MAX_STOPS} strings.", "stop")
    return [s for s in stops if s]


def parse_chat(body: Any) -> ChatCall:
    """Check a request body; ServeError 400 in words for what Ponder cannot do."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("Say which model should answer: `model` is missing (GET /v1/models lists "
                   "them).", "model")  # fmt: skip
    if body.get("n") not in (None, 1):
        raise _bad("Ponder writes one answer per request: n must be 1.", "n")
    choice = body.get("tool_choice")
    if choice == "required" or isinstance(choice, dict):
        raise _bad("Ponder's server does not call tools.", "tool_choice")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise _bad("Ponder's server writes plain text: response_format must be text.",
                   "response_format")  # fmt: skip
    preset = settings_for(model)
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0)
    max_tokens = _whole(body, "max_completion_tokens", 1)
    max_tokens = max_tokens if max_tokens is not None else _whole(body, "max_tokens", 1)
    budget = _whole(body, "thinking_budget", 0)
    reserve = _whole(body, "answer_reserve", 0)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad("seed must be a whole number.", "seed")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("stream must be true or false.", "stream")
    options = body.get("stream_options") or {}
    params = {
        "temperature": preset.temperature if temperature is None else temperature,
        "top_p": preset.top_p if top_p is None else top_p,
        "max_tokens": max_tokens,
        "thinking_budget": budget or None,
        "answer_reserve": preset.answer_reserve if reserve is None else reserve,
        "seed": seed,
    }
    kwargs = body.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False:
        params["thinking"] = False
    return ChatCall(model.strip(), read_messages(body.get("messages")), params,
                    read_stops(body.get("stop")), stream,
                    bool(isinstance(options, dict) and options.get("include_usage")))  # fmt: skip


# -- what goes back ------------------------------------------------------------------------
def delta_of(thinking: str, answer: str) -> dict[str, str]:
    delta: dict[str, str] = {}
    if thinking:
        delta["reasoning_content"] = thinking
        delta["reasoning"] = thinking
    if answer:
        delta["content"] = answer
    return delta


def chunk(call: ChatCall, model_id: str, delta: dict[str, Any],
          finish: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One `chat.completion.chunk`."""
    return {"id": call.id, "object": "chat.completion.chunk", "created": call.created,
            "model": model_id, "system_fingerprint": "ponder",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}  # fmt: skip


def usage_chunk(call: ChatCall, model_id: str, usage: dict[str, Any]) -> dict[str, Any]:
    """The last chunk when the client asked for usage: no choices, the token counts."""
    return {"id": call.id, "object": "chat.completion.chunk", "created": call.created,
            "model": model_id, "system_fingerprint": "ponder", "choices": [],
            "usage": usage}  # fmt: skip


def completion(call: ChatCall, model_id: str, thinking: str, answer: str, finish: str,
               usage: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The whole `chat.completion` (not streamed)."""
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    if thinking:
        message["reasoning_content"] = thinking
        message["reasoning"] = thinking
    return {"id": call.id, "object": "chat.completion", "created": call.created,
            "model": model_id, "system_fingerprint": "ponder",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": usage}  # fmt: skip
