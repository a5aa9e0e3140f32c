"""One conversation's chat logic, without Qt: what is sent, whether it fits, and each answer.

`ChatSession` owns, for one conversation in the chat store: the history sent to the model
(earlier thinking stripped, roles always alternating, app/core/history.py), the generation
settings (the model family's preset plus what the conversation saved), the length and
context policy (no length cap by default, room kept for the answer, a prompt that does not
fit refused in words) and the start of each answer: `send`, `regenerate` and `edit` save
the user's turn, insert the assistant's as `streaming` and return an `AnswerStream`
(app/core/answer_stream.py) holding the messages and engine parameters, the buffers, the
exact token counts and the save schedule.

`ModelRunner` holds the engine client and the model loaded in it, for the one thread that
drives the engine (the window's worker thread, the CLI, a test): `stream(answer)` runs an
answer to its end; `load` first stops an answer still streaming (it is finished as partial
and its speed recorded under the model that produced it), then loads.

The window's ChatController and the CLI are thin adapters over this; it is tested against
the real engine process in tests/test_chat_session.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from app.core.answer_stream import AnswerResult, AnswerStream, MeasureHook, ModelRef
from app.core.chat_store import ChatStore, Conversation, Message
from app.core.engine.events import StreamDone, StreamError, StreamEvent
from app.core.generation_settings import (
    ContextUse,
    GenerationSettings,
    apply_system_prompt,
    estimate_tokens,
    preset_for_model,
    room_to_answer,
    settings_for,
)

TURN_OVERHEAD = 4  # template tokens around each turn (role markers), for estimates


class PromptTooLong(Exception):
    """The next turn would not leave the model room to think and answer; `message` says so."""

    def __init__(self, message: str, used: int, needed: int, n_ctx: int) -> None:
        super().__init__(message)
        self.message, self.used, self.needed, self.n_ctx = message, used, needed, n_ctx


@dataclass(frozen=True)
class FitCheck:
    fits: bool
    used: int  # tokens the history takes (exact from the last answer when known)
    needed: int  # room the model should have to think and answer
    n_ctx: int
    message: str = ""


class ChatSession:
    """The chat logic of one conversation (`conversation_id` None: not saved yet)."""

    def __init__(
        self,
        store: ChatStore,
        conversation_id: int | None = None,
        *,
        on_measured: MeasureHook | None = None,
        pending_settings: GenerationSettings | None = None,
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.on_measured = on_measured
        self.pending_settings = pending_settings  # for a conversation not created yet

    # -- settings ------------------------------------------------------------------------
    def conversation(self) -> Conversation | None:
        if self.conversation_id is None:
            return None
        return self.store.conversation(self.conversation_id)

    def settings(self, model_name: str | None) -> GenerationSettings:
        """The model family's defaults, overridden by what the conversation saved."""
        if self.conversation_id is None:
            return self.pending_settings or settings_for(model_name)
        conv = self.conversation()
        return settings_for(model_name, conv.settings if conv else None)

    def set_settings(self, settings: GenerationSettings) -> None:
        if self.conversation_id is None:
            self.pending_settings = settings
            return
        conv = self.conversation()
        merged = {**(conv.settings if conv else {}), **settings.to_dict()}
        self.store.set_conversation_settings(self.conversation_id, merged)

    def _set_setting(self, key: str, value: Any) -> None:
        assert self.conversation_id is not None
        conv = self.conversation()
        merged = {**(conv.settings if conv else {}), key: value}
        self.store.set_conversation_settings(self.conversation_id, merged)

    # -- history and context -------------------------------------------------------------
    def messages(self) -> list[Message]:
        if self.conversation_id is None:
            return []
        return self.store.messages(self.conversation_id)

    def history(self) -> list[dict[str, str]]:
        """The turns to send to the model (no thinking, roles alternating)."""
        if self.conversation_id is None:
            return []
        return self.store.history_for_model(self.conversation_id)

    def context_use(self, n_ctx: int) -> ContextUse:
        """The context the last answer used (the engine's counts), else an estimate."""
        messages = self.messages()
        last = next((m for m in reversed(messages) if m.role == "assistant"), None)
        if last is not None and last.stats.get("prompt_tokens"):
            st = last.stats
            return ContextUse(n_ctx, int(st.get("prompt_tokens", 0)),
                              int(st.get("thinking_tokens", 0)),
                              int(st.get("answer_tokens", 0)))  # fmt: skip
        return ContextUse(n_ctx, self._estimate(self.history()))

    @staticmethod
    def _estimate(turns: list[dict[str, str]]) -> int:
        return sum(estimate_tokens(t["content"]) + TURN_OVERHEAD for t in turns)

    def check_fit(self, text: str, n_ctx: int, settings: GenerationSettings) -> FitCheck:
        """Whether history + `text` leaves the model room to think and answer (the engine's
        counts when known, else a character estimate; the larger)."""
        use = self.context_use(n_ctx)
        used = max(use.prompt + use.answer, self._estimate(self.history()))
        needed = room_to_answer(settings, n_ctx)
        fits = n_ctx <= 0 or used + estimate_tokens(text) + 8 + needed <= n_ctx
        message = "" if fits else (
            f"The next turn may not fit in the {n_ctx:,}-token context: about {used:,} tokens "
            "are used, and the model needs room to think and answer."
        )  # fmt: skip
        return FitCheck(fits, used, needed, n_ctx, message)

    def drop_old_turns(self, text: str, n_ctx: int, settings: GenerationSettings) -> int:
        """Stop sending the oldest turns until `text` fits; returns the first position kept."""
        if self.conversation_id is None:
            return 0
        messages = self.messages()
        needed = room_to_answer(settings, n_ctx)
        start = 0
        while start < len(messages):
            kept = [{"role": m.role, "content": m.content} for m in messages[start:]]
            if self._estimate(kept) + estimate_tokens(text) + needed <= n_ctx:
                break
            start += 2 if start + 1 < len(messages) else 1
        position = messages[start].position if start < len(messages) else (
            messages[-1].position + 1 if messages else 0
        )  # fmt: skip
        self._set_setting("history_from", position)
        return position

    # -- starting an answer --------------------------------------------------------------
    def send(self, text: str, model: ModelRef, *, force: bool = False,
             route: dict[str, Any] | None = None,
             thinking: bool = True) -> AnswerStream:  # fmt: skip
        """Save the user's turn and start the answer; PromptTooLong unless it fits or `force`.
        `route` (Auto routing: which model answers and why) is saved with the answer;
        `thinking=False` asks the model to answer without thinking (where its chat template
        has a switch, e.g. Qwen3), for this turn only."""
        text = text.strip()
        if not text:
            raise ValueError("empty message")
        settings = self.settings(model.name)
        if not force:
            fit = self.check_fit(text, model.n_ctx, settings)
            if not fit.fits:
                raise PromptTooLong(fit.message, fit.used, fit.needed, fit.n_ctx)
        if self.conversation_id is None:
            conv = self.store.create_conversation(model=model.name, settings=settings.to_dict())
            self.conversation_id = conv.id
        self.store.add_message(self.conversation_id, "user", text)
        return self._begin(model, route, thinking)

    def answer_again(self, model: ModelRef, route: dict[str, Any],
                     thinking: bool = True) -> AnswerStream | None:  # fmt: skip
        """Think harder: answer the last user turn once more, keeping the answer it has (the
        new one is a second assistant message for the same turn; only the newest answer of a
        turn is sent to models later, app/core/history.py)."""
        messages = self.messages()
        if not messages or messages[-1].role != "assistant":
            return None
        return self._begin(model, {**route, "again": True}, thinking)

    def regenerate(self, model: ModelRef) -> AnswerStream | None:
        """Answer the last user turn again (the last assistant turn is replaced). An Auto
        answer by this same model keeps its route and its thinking (one answered without
        thinking is answered again without); by another model, it is a plain answer."""
        messages = self.messages()
        if not messages or messages[-1].role != "assistant":
            return None
        assert self.conversation_id is not None
        last = messages[-1]
        self.store.delete_messages_from(self.conversation_id, last.position)
        route = last.settings.get("route")
        if isinstance(route, dict) and route.get("model") == model.name:
            return self._begin(model, route, last.settings.get("thinking") is not False)
        return self._begin(model)

    def edit(self, message_id: int, text: str, model: ModelRef, *,
             route: dict[str, Any] | None = None,
             thinking: bool = True) -> AnswerStream | None:  # fmt: skip
        """Replace a user turn (and everything after it) and answer it; `route` and
        `thinking` as for `send`."""
        msg = self.store.message(message_id)
        if msg is None or msg.role != "user" or msg.conversation_id != self.conversation_id:
            return None
        self.store.delete_messages_from(msg.conversation_id, msg.position)
        self.store.add_message(msg.conversation_id, "user", text.strip())
        return self._begin(model, route, thinking)

    def _begin(self, model: ModelRef, route: dict[str, Any] | None = None,
               thinking: bool = True) -> AnswerStream:  # fmt: skip
        assert self.conversation_id is not None
        settings = self.settings(model.name)
        turns = self.history()
        while turns and turns[-1]["role"] == "assistant":
            turns.pop()  # an answer is always to the last user turn (Think harder keeps one)
        history = apply_system_prompt(turns, settings, preset_for_model(model.name))
        saved = settings.to_dict() if route is None else {**settings.to_dict(), "route": route}
        params = engine_params(settings, model.n_ctx)
        if not thinking:  # this turn only; recorded with the answer
            params["thinking"] = saved["thinking"] = False
        msg = self.store.begin_assistant(self.conversation_id, model.name, saved)
        return AnswerStream(
            history,
            params,
            store=self.store,
            message_id=msg.id,
            model=model,
            on_measured=self.on_measured,
        )


def engine_params(settings: GenerationSettings, n_ctx: int) -> dict[str, Any]:
    """`client.chat` keyword arguments: no length cap unless set, the answer reserve kept
    below half the context (the engine keeps at most a quarter)."""
    reserve = min(settings.answer_reserve, n_ctx // 2) if n_ctx else settings.answer_reserve
    return replace(settings, answer_reserve=reserve).engine_kwargs()


class ModelRunner:
    """The engine client and its loaded model, driven from one thread (plus `stop`/`cancel`
    from any thread)."""

    STOP_TIMEOUT_S = 20.0

    def __init__(self, client: Any) -> None:
        self.client = client
        self.model: ModelRef | None = None
        self.active: AnswerStream | None = None
        self._idle = threading.Event()
        self._idle.set()

    def load(self, path: str, name: str | None = None, **opts: Any) -> dict[str, Any]:
        """Stop a streaming answer (finished as partial first), then load `path`; raises
        the client's error in words."""
        self.stop()
        self.model = None
        info = dict(self.client.load(path, **opts))
        n_ctx = int(info.get("n_ctx") or opts.get("n_ctx") or 0)
        label = name or info.get("name") or os.path.basename(str(path)) or None
        self.model = ModelRef(str(path), label, n_ctx)
        return info

    def stop(self, timeout_s: float | None = None) -> bool:
        """Cancel the streaming answer, if any, and wait until it is finished and saved."""
        stream = self.active
        if stream is not None:
            stream.cancel()
        return self._idle.wait(self.STOP_TIMEOUT_S if timeout_s is None else timeout_s)

    def stream(
        self, answer: AnswerStream, on_event: Callable[[StreamEvent], None] | None = None
    ) -> AnswerResult:
        """Generate `answer` to its end (a Stop that came first ends it at once)."""
        self._idle.clear()
        self.active = answer
        try:
            if answer.cancel_requested:
                return self._end_early(answer, StreamDone("", "cancelled", 0, 0, None, None, 0.0),
                                       on_event)  # fmt: skip
            try:
                gen = self.client.chat(answer.messages, **answer.params)
            except Exception as exc:  # EngineError and the like: reported, never swallowed
                error = StreamError(None, getattr(exc, "kind", "internal"),
                                    getattr(exc, "message", "") or f"The engine failed: {exc}",
                                    getattr(exc, "detail", ""))  # fmt: skip
                return self._end_early(answer, error, on_event)
            return answer.run(gen, on_event)
        finally:
            self.active = None
            self._idle.set()

    @staticmethod
    def _end_early(answer: AnswerStream, event: StreamEvent,
                   on_event: Callable[[StreamEvent], None] | None) -> AnswerResult:  # fmt: skip
        try:
            answer.apply(event)
            if on_event is not None:
                on_event(event)
        finally:
            result = answer.finish()
        return result
