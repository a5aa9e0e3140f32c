"""The server's side of the shared engine: take it, load the named model, start an answer.

`ServeRunner.begin` runs on a worker thread: it finds the model in the catalog (400/404 in
words), waits for the engine (the window may be answering; `EngineShare`), loads the model
with the planner's settings for this machine when another one is loaded (one model at a
time: a request for another model waits for the current answer, then switches), refuses a
model the planner says is too large with its reason, and starts the answer. It returns once
the engine has accepted the prompt, so a conversation longer than the context is still an
HTTP error, not a broken stream. `ServedAnswer.parts()` then yields the thinking and answer
text as the engine sends it (the `stop` strings applied to the answer) and ends with a
`Finish` carrying exact usage. No Qt, no HTTP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.core.engine.events import StreamDone, StreamError, StreamStarted, TextDelta
from app.core.engine_share import SERVER, EngineShare
from app.serve.catalog import ModelCatalog, ServedModel
from app.serve.errors import ServeError, from_engine
from app.serve.stops import StopCutter

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often a waiting request looks whether its client is still there


@dataclass(frozen=True)
class LoadPlan:
    """How to load a model here: the engine's load options, or why it cannot run here."""

    settings: dict[str, Any]
    refusal: str | None = None


def planned_load(model: ServedModel) -> LoadPlan:
    """The planner's settings for this machine (as the model manager loads a model)."""
    if model.engine == "mlx":
        return LoadPlan({"engine": "mlx"})
    from app.core import model_choice
    from backends.gguf_check import GGUFError

    try:
        info = model_choice.describe_gguf(model.path, _profile())
    except (GGUFError, OSError, ValueError):
        return LoadPlan({})  # the engine says what is wrong with the file
    if info.plan is not None:
        option = model_choice.Option(info.plan)
        if not option.runs_here:
            return LoadPlan({}, f"{model.id} is too large for this computer: "
                                f"{option.where_words()}.")  # fmt: skip
    return LoadPlan(info.load_settings())


_PROFILE: list[Any] = []


def _profile() -> Any:
    if not _PROFILE:
        from app.core import model_choice

        _PROFILE.append(model_choice.detect())
    return _PROFILE[0]


@dataclass(frozen=True)
class Finish:
    """How an answer ended: OpenAI's finish_reason and exact token counts."""

    reason: str  # "stop", "length", "cancelled"
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int

    def usage(self) -> dict[str, Any]:
        details = {"reasoning_tokens": self.reasoning_tokens}
        return {"prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "completion_tokens_details": details}  # fmt: skip


@dataclass(frozen=True)
class Part:
    """New text: thinking (reasoning_content) and answer (content)."""

    thinking: str = ""
    answer: str = ""


@dataclass
class ServeStatus:
    """What the window's status line shows."""

    model: str | None = None  # the id of the model loaded by the server
    requests_served: int = 0
    answering: bool = False


class ServedAnswer:
    """One answer in progress; read `parts()` on one thread, `cancel()` from any."""

    def __init__(self, runner: ServeRunner, model: ServedModel, generation: Any,
                 started: StreamStarted, stops: list[str]) -> None:  # fmt: skip
        self.model = model
        self.generation = generation
        self.prompt_tokens = started.prompt_tokens
        self._runner = runner
        self._cutter = StopCutter(stops)
        self._closed = False
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop the engine now (the client left); parts() ends at the engine's `done`."""
        self.cancelled.set()
        self.generation.cancel()

    def parts(self) -> Iterator[Part | Finish]:
        """The text as the engine sends it, then one Finish; ServeError for a failure."""
        try:
            yield from self._read()
        finally:
            self.close()

    def _read(self) -> Iterator[Part | Finish]:
        stopped = False
        while True:
            event = self.generation.next_event(0.25)
            if event is None:
                if self.generation.finished:  # its end was read before this answer began
                    yield Finish("cancelled", self.prompt_tokens, 0, 0)
                    return
                continue
            if isinstance(event, TextDelta) and not stopped:
                answer, stopped = self._cutter.feed(event.answer)
                if stopped:
                    self.generation.cancel()
                if event.thinking or answer:
                    yield Part(event.thinking, answer)
            elif isinstance(event, StreamDone):
                tail = "" if stopped else self._cutter.flush()
                if tail:
                    yield Part("", tail)
                reason = {"eos": "stop", "length": "length"}.get(event.stop_reason, "cancelled")
                yield Finish("stop" if stopped else reason,
                             event.prompt_tokens or self.prompt_tokens,
                             event.completion_tokens, event.thinking_tokens)  # fmt: skip
                return
            elif isinstance(event, StreamError):
                raise from_engine(event.kind, event.message)

    def close(self) -> None:
        """Give the engine back (once); counted as a request served."""
        if not self._closed:
            self._closed = True
            self._runner._finished()


@dataclass
class ServeRunner:
    """The engine client as the server uses it: one answer at a time, shared with the window."""

    client: Any
    catalog: ModelCatalog
    share: EngineShare = field(default_factory=EngineShare)
    plan_for: Callable[[ServedModel], LoadPlan] = planned_load
    on_status: Callable[[ServeStatus], None] | None = None
    status: ServeStatus = field(default_factory=ServeStatus)
    active: ServedAnswer | None = None
    _loaded: tuple[str, int] | None = None  # (model path, load ticket)

    def begin(self, model_name: str, messages: list[dict[str, str]], params: dict[str, Any],
              stops: list[str], gone: threading.Event) -> ServedAnswer | None:  # fmt: skip
        """Start an answer (blocking); None when the client left first (`gone` set)."""
        model = self.catalog.find(model_name)
        if not self.share.acquire(SERVER, should_stop=gone.is_set):
            return None
        try:
            self._tell(answering=True)
            self._ensure_loaded(model)
            if gone.is_set():
                raise _Gone
            generation = self.client.chat(messages, **params)
            started = _first_event(generation, gone)
            self.active = ServedAnswer(self, model, generation, started, stops)
            return self.active
        except _Gone:
            self._finished(served=False)
            return None
        except BaseException:
            self._finished(served=False)
            raise

    def _ensure_loaded(self, model: ServedModel) -> None:
        loaded = self._loaded
        current = loaded and self.share.is_current(loaded[1]) and self.client.model_info
        if loaded and loaded[0] == model.path and current:
            return
        plan = self.plan_for(model)
        if plan.refusal:
            raise ServeError(400, plan.refusal, param="model", code="model_too_large")
        self._loaded = None
        self._tell(model=None)
        log.info("serve: loading %s with %s", model.id, plan.settings)
        try:
            self.client.load(model.path, **plan.settings)
        except Exception as exc:
            raise from_engine(getattr(exc, "kind", "internal"),
                              getattr(exc, "message", "") or str(exc)) from None  # fmt: skip
        self._loaded = (model.path, self.share.note_load())
        self._tell(model=model.id)

    def cancel_active(self) -> None:
        """Stop the answer in progress, if any (the server is stopping)."""
        answer = self.active
        if answer is not None:
            answer.cancel()

    def _finished(self, served: bool = True) -> None:
        self.active = None
        if served:
            self.status.requests_served += 1
        self._tell(answering=False)
        self.share.release(SERVER)

    def _tell(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        if self.on_status is not None:
            self.on_status(ServeStatus(**vars(self.status)))


class _Gone(Exception):
    """The client disconnected while its request waited."""


def _first_event(generation: Any, gone: threading.Event) -> StreamStarted:
    """Wait until the engine accepted the prompt; its refusal becomes a ServeError."""
    while True:
        event = generation.next_event(POLL_S)
        if isinstance(event, StreamStarted):
            return event
        if isinstance(event, StreamError):
            raise from_engine(event.kind, event.message)
        if isinstance(event, StreamDone):  # ended before it began (a Stop came first)
            return StreamStarted(event.request_id, event.prompt_tokens, False)
        if event is None and gone.is_set():
            generation.cancel()
            deadline = time.monotonic() + 5.0
            while not generation.finished and time.monotonic() < deadline:
                generation.next_event(POLL_S)
            raise _Gone
