"""The engine interface: the JSON-lines protocol between the GUI side and the engine process.

Commands go to the engine process on its stdin, events come back on a private pipe, one JSON
object per line. This module holds the names and the shapes; `host.py` speaks it and
`app.core.engine` drives it. Nothing here imports an engine library.

Every command carries an "id" (a string chosen by the client); every reply to it carries the
same id, so a late reply to an abandoned command is recognised and dropped.

Commands (key "cmd"):
  load        id, path, n_ctx, n_gpu_layers, n_threads, type_k, engine ("llama_cpp" | "mlx" |
              "openai")
  chat        id, messages [{role, content}], params {temperature, top_p, max_tokens (null:
              the rest of the context), thinking_budget (tokens or null), answer_reserve
              (tokens kept for the answer when the thinking fills the context), seed,
              thinking (false: no thinking where the chat template has a switch, e.g.
              Qwen3's enable_thinking; default true)}
  answer_now  id (of the chat)   end the thinking now and let the model answer from it
  cancel      id (of the chat)
  unload      id
  ping        id
  shutdown
Events (key "event"):
  ready       pid, protocol
  loaded      id, info {path, architecture, context_length, n_ctx, n_layers, chat_template,
              thinking_switch (the model can answer without thinking: its template reads
              enable_thinking; null when unknown, a server), gpu_offload, n_gpu_layers,
              rss_bytes, size_bytes, load_seconds, ...}
  unloaded    id, rss_bytes
  pong        id, rss_bytes, busy
  started     id, prompt_tokens, thinking_open (the rendered prompt ends inside a think block)
  delta       id, thinking, answer, thinking_tokens, answer_tokens: typed parts split by the
              engine (backends/think_tags.py), exact token counts, batched by time in one
              place (EventWriter), the first never delayed
  done        id, raw (exactly what the model wrote), stats {completion_tokens,
              thinking_tokens, answer_tokens, prompt_tokens, ttft_s, decode_tps, elapsed_s,
              stop_reason ("eos" | "length" | "cancelled"), thinking_ended_by ("answer_now" |
              "budget" | "context" | null), ended_in_thinking, thinking_off (the prompt
              was rendered with the thinking switched off), peak_rss_bytes}
  error       id (or null), kind (ERROR_KINDS), message, detail
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

PROTOCOL_VERSION = 2

ErrorKind = Literal[
    "bad_model",
    "out_of_memory",
    "context_overflow",
    "engine_crashed",
    "engine_hung",
    "bad_request",
    "internal",
]
ERROR_KINDS: tuple[str, ...] = (
    "bad_model",
    "out_of_memory",
    "context_overflow",
    "engine_crashed",
    "engine_hung",  # the engine process stopped answering (the client gave up waiting)
    "bad_request",
    "internal",
)
STOP_REASONS: tuple[str, ...] = ("eos", "length", "cancelled")

# Time-based batching of deltas: the first delta of a request goes out at once, later ones
# at most every DELTA_FLUSH_S so a fast model does not flood the pipe or the GUI. 30 a second
# reads as smooth; each batch wakes three threads (flusher, client reader, GUI) that take a
# core from llama.cpp's threads, which wait for each other at every step: at 60 a second a
# fast CPU model lost 8-11% of its speed with all cores busy, at 30 about 3-5%
# (bench/long_reasoning.py, scripted model, 2 threads on 2 cores).
DELTA_FLUSH_S = 0.033

# Environment variables the engine process must never see (it reads untrusted files).
SECRET_ENV_VARS: tuple[str, ...] = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_API_TOKEN",
    "OPENAI_API_KEY",
)


class EngineFailure(Exception):
    """An error the engine reports in words: `kind` is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail

    def to_event(self, request_id: str | None = None) -> dict[str, Any]:
        return {"event": "error", "id": request_id, "kind": self.kind, "message": self.message}


@dataclass
class GenerationControl:
    """Flags the host sets from its command loop while a generation runs on its thread."""

    cancelled: bool = False
    answer_now: bool = False


# emit(event) sends a protocol event; emit_parts(thinking, answer, thinking_tokens,
# answer_tokens) queues typed text (the host batches it by time).
Emit = Callable[[dict[str, Any]], None]
EmitParts = Callable[[str, str, int, int], None]


class Engine(Protocol):
    """What every engine in the engine process provides (llama.cpp, MLX, a remote server).

    `generate` must send one `started` event through `emit`, send the answer as typed parts
    through `emit_parts` (backends/generation.AnswerStream does the splitting and counting),
    check `control` after every token, and return the `done` stats (with the exact model
    text under "raw"). Failures raise EngineFailure.
    """

    name: str
    info: dict[str, Any]

    def load(self, path: str, **opts: Any) -> dict[str, Any]: ...

    def generate(
        self, cmd: dict[str, Any], control: GenerationControl, emit: Emit, emit_parts: EmitParts
    ) -> dict[str, Any]: ...

    def unload(self) -> None: ...


# engine name -> "module:Class", imported only when that engine is first used
ENGINES: dict[str, str] = {
    "llama_cpp": "backends.llama_cpp:LlamaCppEngine",
    "mlx": "backends.mlx:MlxEngine",
    "openai": "backends.openai_compat:OpenAICompatEngine",
}
