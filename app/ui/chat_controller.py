"""The conversation logic behind the window: a thin Qt adapter over the core chat session.

Runs on the GUI thread. The policy lives in `app.core.chat_session.ChatSession` (history
with roles alternating, settings, the length and context policy, starting answers) and
`app.core.answer_stream.AnswerStream` (buffers, exact counts, saving, how an answer ends);
this class connects them to the view and the engine bridge: sending asks the session for an
answer and queues it on the worker thread, which streams and saves it; the worker's signals
go to the message widget (StreamHandlers). Stop, Answer now, Regenerate, Edit-and-resend,
the context check before sending and engine loads live here too; a load while an answer
streams stops that answer first (it is saved as partial, its speed recorded under its own
model through `sig_answer_measured`). In Auto (app/core/routing) a new prompt and an edited
one are routed alike; Regenerate on an Auto answer keeps its route and note.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.answer_stream import AnswerStream, ModelRef
from app.core.chat_session import ChatSession, PromptTooLong
from app.core.chat_store import ChatStore
from app.core.engine.events import StreamDone
from app.core.generation_settings import ContextUse, GenerationSettings, settings_for
from app.core.routing import AutoPair, RouteChoice, Router
from app.core.stream_owner import describe_save_error
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.chat_view import ChatView
from app.ui.engine_worker import EngineBridge
from app.ui.stream_handlers import LiveAnswer, StreamHandlers

DEFAULT_CTX = 16384


class ChatController(StreamHandlers, QObject):
    sig_busy = Signal(bool)
    sig_thinking = Signal(bool)  # the current answer is still in its thinking
    sig_model = Signal(object)  # model info dict, or None
    sig_loading = Signal(str)  # model name being loaded
    sig_context = Signal(object)  # ContextUse
    sig_speed = Signal(object)  # tokens/s of the last answer, or None
    sig_conversations = Signal()  # the list of conversations changed
    sig_current = Signal(object)  # the open conversation's id, or None
    sig_request_model = Signal()  # ask the window to show "Load model…"
    # model path, StreamDone, n_ctx: an answer's measured speed, for the model that wrote it
    # (emitted from the worker thread; queued to receivers on the GUI thread)
    sig_answer_measured = Signal(str, object, int)

    def __init__(
        self, store: ChatStore, bridge: EngineBridge, view: ChatView, n_ctx: int = DEFAULT_CTX
    ) -> None:
        super().__init__()
        self.store, self.bridge, self.view = store, bridge, view
        self.n_ctx = n_ctx
        self.model_info: dict[str, Any] | None = None
        self.model_path: str | None = None
        self.load_opts: dict[str, Any] = {"n_gpu_layers": -1}  # kept for Reload engine
        self.load_label: str | None = None  # the name the model list uses for this model
        self.load_failure: str | None = None  # the kind of error when the last load failed
        self.threads = 0  # the engine's threads from Settings (0: one per physical core)
        self.stream: LiveAnswer | None = None
        self.load_job = 0
        self.context = ContextUse(0)
        self.session = self._session(None)
        self.router: Router | None = None  # Auto: the small and big models installed
        self.auto = False  # Auto chosen: each prompt goes to the small or the big model
        w = bridge.worker
        w.sig_loaded.connect(self._on_loaded)
        w.sig_load_failed.connect(self._on_load_failed)
        w.sig_started.connect(self._on_started)
        w.sig_delta.connect(self._on_delta)
        w.sig_finished.connect(self._on_finished)
        view.sig_regenerate.connect(self.regenerate)
        view.sig_edit_submitted.connect(self.edit_and_resend)
        view.sig_reload_engine.connect(self.reload_engine)
        view.sig_new_chat.connect(self.new_conversation)
        view.sig_drop_turns.connect(self.drop_old_turns)

    def _session(self, conversation_id: int | None) -> ChatSession:
        pending = None if conversation_id is not None else settings_for(self.model_name)
        return ChatSession(self.store, conversation_id, on_measured=self._measured,
                           pending_settings=pending)  # fmt: skip

    def _measured(self, path: str, done: StreamDone, n_ctx: int) -> None:
        self.sig_answer_measured.emit(path, done, n_ctx)  # runs on the worker thread

    @property
    def conversation_id(self) -> int | None:
        return self.session.conversation_id

    # -- model ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.stream is not None

    @property
    def model_name(self) -> str | None:
        if self.model_info is None:
            return None
        path = self.model_info.get("path") or self.model_path or ""
        return self.load_label or self.model_info.get("name") or os.path.basename(path) or None

    @property
    def model(self) -> ModelRef | None:
        """The loaded model, as answers record it."""
        if self.model_info is None:
            return None
        path = self.model_info.get("path") or self.model_path or ""
        return ModelRef(str(path), self.model_name, self.n_ctx)

    def _stop_streaming(self) -> None:
        if self.stream is not None:
            self.stream.answer.cancel()  # the worker saves it as partial before the next job

    def load_model(self, path: str, label: str | None = None, **opts: Any) -> None:
        """Load `path` with `opts` (a plan's GPU layers, threads, KV cache; all GPU layers
        by default); Reload engine uses the same settings again. An answer still streaming
        is stopped first."""
        self._stop_streaming()
        self.model_path = path
        self.load_failure = None
        self.load_label = label or _file_label(path)
        self.load_opts = opts or {"n_gpu_layers": -1}
        if self.threads and not path.startswith(("http://", "https://")):
            self.load_opts = {**self.load_opts, "n_threads": self.threads}
        self.sig_loading.emit(self.load_label or os.path.basename(path))
        self.load_job = self.bridge.load(path, n_ctx=self.n_ctx, **self.load_opts)

    def reload_engine(self) -> None:
        """Restart the engine process and load the last model again."""
        if self.model_path is None:
            self.sig_request_model.emit()
            return
        self._stop_streaming()
        self.load_failure = None
        self.view.clear_banner()
        self.sig_loading.emit(os.path.basename(self.model_path))
        self.load_job = self.bridge.reload(self.model_path, n_ctx=self.n_ctx, **self.load_opts)

    def _on_loaded(self, job: int, info: dict) -> None:
        if job != self.load_job:
            return
        self.model_info = info
        self.load_failure = None
        self.n_ctx = int(info.get("n_ctx") or self.n_ctx)
        self.view.clear_banner()
        self.view.empty.set_model(self.model_name)
        self.sig_model.emit(info)
        self._emit_context()

    def _on_load_failed(self, job: int, kind: str, message: str, detail: str) -> None:
        if job != self.load_job:
            return
        self.model_info = None
        self.load_failure = kind or "internal"  # the status bar says the load failed
        self.sig_model.emit(None)
        from app.ui.message_widgets import ErrorCard

        card = ErrorCard(kind, message, detail)
        card.reload_button.setText("Try again")
        card.sig_reload.connect(self.reload_engine)
        self.view.show_widget_banner(card)

    # -- conversations -------------------------------------------------------------------
    def settings(self) -> GenerationSettings:
        return self.session.settings(self.model_name)

    def set_settings(self, settings: GenerationSettings) -> None:
        self.session.set_settings(settings)

    def set_thinking_budget(self, budget: int | None) -> None:
        self.set_settings(replace(self.settings(), thinking_budget=budget))

    def new_conversation(self) -> None:
        self._stop_streaming()
        self.session = self._session(None)
        self.view.clear()
        self.context = ContextUse(self.n_ctx if self.model_info else 0)
        self.sig_context.emit(self.context)
        self.sig_current.emit(None)

    def open_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            return
        self._stop_streaming()
        self.session = self._session(conversation_id)
        self.view.show_messages(self.store.messages(conversation_id))
        self._show_routes()
        # no model: no context size to measure against (not an invented one)
        self.context = self.session.context_use(self.n_ctx if self.model_info else 0)
        self.sig_context.emit(self.context)
        self.sig_current.emit(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            self.new_conversation()
        self.store.delete_conversation(conversation_id)
        self.sig_conversations.emit()

    # -- sending -------------------------------------------------------------------------
    def send(self, text: str, force: bool = False) -> bool:
        """Send a user message; False if it was not sent (busy, no model, will not fit)."""
        text = text.strip()
        if not text or self.stream is not None:
            return False
        choice, model = self._route(text)
        if model is None:
            self.view.show_banner(
                "Load a model to start chatting. Ponder runs it on this computer.",
                [("Load model…", self.sig_request_model.emit)],
            )
            return False
        created = self.conversation_id is None
        try:
            answer = self.session.send(text, model, force=force, **_route_args(choice))
        except PromptTooLong as exc:
            self._warn_too_long(text, exc.message)
            return False
        except sqlite3.Error as exc:
            self.view.show_banner(describe_save_error(exc), [])
            return False
        self.view.clear_banner()
        if created:
            self.sig_current.emit(self.conversation_id)
        self._show_user_turn(answer)
        self._start_routed(answer, model, choice)
        self.sig_conversations.emit()
        return True

    def next_turn_fits(self, text: str) -> bool:
        """Whether history + `text` leaves room to think and answer."""
        return self.session.check_fit(text, self.n_ctx, self.settings()).fits

    def _warn_too_long(self, text: str, message: str) -> None:
        self.view.show_banner(
            message,
            [
                ("New chat", self.new_conversation),
                ("Drop old turns", lambda: self.drop_old_turns(text)),
                ("Send anyway", lambda: self.send(text, force=True)),
            ],
        )

    def drop_old_turns(self, text: str = "") -> None:
        """Stop sending the oldest turns to the model until the next one fits."""
        if self.conversation_id is None:
            return
        self.session.drop_old_turns(text, self.n_ctx, self.settings())
        self.context = ContextUse(self.n_ctx)
        self.view.clear_banner()
        if text:
            self.send(text, force=True)

    def _show_user_turn(self, answer: AnswerStream) -> None:
        user = self.store.messages(self.conversation_id or 0)[-2]
        self.view.add_user(user.id, user.position, user.content)

    def _start(self, answer: AnswerStream, label: str | None = None) -> AssistantMessageWidget:
        msg = self.store.message(answer.message_id or 0)
        assert msg is not None
        for earlier in self.view.messages:  # Think harder: the last answer only
            if isinstance(earlier, AssistantMessageWidget):
                earlier.set_can_think_harder(False)
        widget = self.view.add_assistant(msg.id, msg.position, label or self.model_name)
        widget.begin(False)  # the thinking panel waits for the engine's word (started)
        self.view.mark_last_assistant()
        job = self.bridge.generate(answer)
        self.stream = LiveAnswer(job, answer, widget)
        self.sig_busy.emit(True)
        self.sig_thinking.emit(True)
        return widget

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.answer.cancel()

    def answer_now(self) -> None:
        if self.stream is not None:
            self.stream.answer.answer_now()

    def regenerate(self) -> None:
        model = self.model
        if self.stream is not None or self.conversation_id is None or model is None:
            return
        messages = self.store.messages(self.conversation_id)
        if not messages or messages[-1].role != "assistant":
            return
        answer = self.session.regenerate(model)
        if answer is not None:
            self.view.truncate(messages[-1].position)
            widget = self._start(answer)
            saved = self.store.message(answer.message_id or 0)
            if saved is not None:  # an Auto answer by this model keeps its route
                self._mark_saved_route(widget, saved.settings.get("route"), True)

    def edit_and_resend(self, message_id: int, text: str) -> None:
        """Replace a user turn and answer it (in Auto, routed as a new prompt is)."""
        if self.stream is not None or self.conversation_id is None:
            return
        msg = self.store.message(message_id)
        if msg is None or msg.role != "user":
            return
        choice, model = self._route(text)
        if model is None:
            return
        answer = self.session.edit(message_id, text, model, **_route_args(choice))
        if answer is not None:
            self.view.truncate(msg.position)
            self._show_user_turn(answer)
            self._start_routed(answer, model, choice)

    # -- Auto routing (app/core/routing) -------------------------------------------------
    def set_auto_pair(self, pair: AutoPair | None) -> None:
        """The small and big models Auto may use (None: Auto is not offered)."""
        self.router = Router(pair) if pair is not None else None
        if pair is None:
            self.auto = False

    def set_auto(self, on: bool) -> None:
        self.auto = bool(on and self.router is not None)

    def _route(self, text: str) -> tuple[RouteChoice | None, ModelRef | None]:
        """In Auto, the side that answers `text` and the model it will be; else no choice and
        the loaded model (None when none is loaded)."""
        if not (self.auto and self.router):
            return None, self.model
        loaded = self.model_path if self.model_info is not None else None
        switch = (self.model_info or {}).get("thinking_switch")  # the engine's word on it
        choice = self.router.choose(text, loaded, switch)
        return choice, self._model_for(choice)

    def _start_routed(self, answer: AnswerStream, model: ModelRef,
                      choice: RouteChoice | None) -> None:  # fmt: skip
        """Start `answer` on `model`: the side Auto chose is loaded first when it is not
        loaded, and the answer says which model answered and why."""
        if choice is not None and choice.switch:
            self._load_side(choice)
        widget = self._start(answer, model.name)
        if choice is not None:
            self._mark_route(widget, choice.note, choice.can_think_harder)

    def _model_for(self, choice: RouteChoice) -> ModelRef:
        opts = dict(choice.side.load_opts)
        n_ctx = int(opts.get("n_ctx") or self.n_ctx) if choice.switch else self.n_ctx
        return ModelRef(choice.side.path, choice.side.name, n_ctx)

    def _load_side(self, choice: RouteChoice) -> None:
        """Load the model Auto picked; the answer queued after it on the worker runs on it."""
        opts = dict(choice.side.load_opts)
        self.n_ctx = int(opts.pop("n_ctx", None) or self.n_ctx)
        self.load_model(choice.side.path, choice.side.name, **opts)

    def _mark_route(self, widget: AssistantMessageWidget, note: str, quick: bool) -> None:
        widget.set_route_note(note)
        widget.set_can_think_harder(quick and self.router is not None)
        widget.sig_think_harder.connect(self.think_harder)

    def think_harder(self, message_id: int) -> None:
        """Ask the big model the same turn again; both answers stay, side by side."""
        if self.stream is not None or self.router is None or self.conversation_id is None:
            return
        messages = self.store.messages(self.conversation_id)
        if not messages or messages[-1].id != message_id:
            return
        choice = self.router.think_harder(self.model_path if self.model_info else None)
        answer = self.session.answer_again(self._model_for(choice), _route_record(choice) or {})
        if answer is None:
            return
        if choice.switch:
            self._load_side(choice)
        widget = self._start(answer, choice.side.name)
        self._mark_route(widget, choice.note, False)

    def _show_routes(self) -> None:
        """A saved conversation: each Auto answer says again which model answered and why."""
        if self.conversation_id is None:
            return
        saved = {m.id: m for m in self.store.messages(self.conversation_id)}
        last = max(saved.values(), key=lambda m: m.position, default=None)
        for w in self.view.messages:
            msg = saved.get(getattr(w, "message_id", -1))
            if isinstance(w, AssistantMessageWidget) and msg is not None:
                self._mark_saved_route(w, msg.settings.get("route"), msg is last)

    def _mark_saved_route(self, widget: AssistantMessageWidget, route: Any, last: bool) -> None:
        """The note of a saved Auto answer (none when `route` is not one); a quick answer
        (the small model's, or one without thinking) offers Think harder when it is last."""
        if not isinstance(route, dict):
            return
        quick = route.get("route") == "small" or route.get("thinking") is False
        self._mark_route(widget, str(route.get("note", "")), quick and last)


def _file_label(path: str) -> str | None:
    """A model file's name as the model manager shows it (`…-Q4_K_M.gguf` -> `…`)."""
    if not path.lower().endswith(".gguf"):
        return None
    from app.core.model_discovery import display_name

    return display_name(os.path.basename(path), None)


def _route_args(choice: RouteChoice | None) -> dict[str, Any]:
    """The session's `route` and `thinking` arguments for an answer Auto routed (or not)."""
    return {"route": _route_record(choice), "thinking": choice is None or choice.thinking}


def _route_record(choice: RouteChoice | None) -> dict[str, Any] | None:
    """What is saved with an Auto answer: the model, the route and the note shown."""
    if choice is None:
        return None
    reason = choice.decision.reason if choice.decision is not None else "think harder"
    record: dict[str, Any] = {"model": choice.side.name, "route": choice.route,
                              "reason": reason, "note": choice.note}  # fmt: skip
    if not choice.thinking:
        record["thinking"] = False
    return record
