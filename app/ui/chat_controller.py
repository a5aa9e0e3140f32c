"""The conversation logic behind the window: store, engine bridge and chat view together.

Runs on the GUI thread. Sending saves the user's message, inserts the assistant's as
`streaming`, asks the bridge for a generation and feeds its batched events to the message
widget; the text so far is saved every second and at the end, with status complete,
partial or error. Stop, Answer now, Regenerate, Edit-and-resend, the context check before
sending and engine reloads live here too.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.chat_store import ChatStore
from app.core.generation_settings import (
    ContextUse,
    GenerationSettings,
    answer_reserve,
    apply_system_prompt,
    estimate_tokens,
    preset_for_model,
    settings_for,
)
from app.ui.chat_view import ChatView
from app.ui.engine_worker import EngineBridge
from app.ui.stream_handlers import StreamHandlers, _Stream

SAVE_MS = 1000
DEFAULT_CTX = 8192


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

    def __init__(
        self, store: ChatStore, bridge: EngineBridge, view: ChatView, n_ctx: int = DEFAULT_CTX
    ) -> None:
        super().__init__()
        self.store, self.bridge, self.view = store, bridge, view
        self.n_ctx = n_ctx
        self.conversation_id: int | None = None
        self.model_info: dict[str, Any] | None = None
        self.model_path: str | None = None
        self.load_opts: dict[str, Any] = {"n_gpu_layers": -1}  # kept for Reload engine
        self.stream: _Stream | None = None
        self.load_job = 0
        self.pending_settings = GenerationSettings()
        self.context = ContextUse(0)
        self._save_timer = QTimer(self)
        self._save_timer.setInterval(SAVE_MS)
        self._save_timer.timeout.connect(self.save_progress)
        w = bridge.worker
        w.sig_loaded.connect(self._on_loaded)
        w.sig_load_failed.connect(self._on_load_failed)
        w.sig_started.connect(self._on_started)
        w.sig_thinking_delta.connect(self._on_thinking)
        w.sig_answer_delta.connect(self._on_answer)
        w.sig_raw_delta.connect(self._on_raw)
        w.sig_done.connect(self._on_done)
        w.sig_error.connect(self._on_error)
        view.sig_regenerate.connect(self.regenerate)
        view.sig_edit_submitted.connect(self.edit_and_resend)
        view.sig_reload_engine.connect(self.reload_engine)
        view.sig_new_chat.connect(self.new_conversation)
        view.sig_drop_turns.connect(self.drop_old_turns)

    # -- model ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.stream is not None

    @property
    def model_name(self) -> str | None:
        if self.model_info is None:
            return None
        path = self.model_info.get("path") or self.model_path or ""
        return self.model_info.get("name") or os.path.basename(path) or None

    def load_model(self, path: str, label: str | None = None, **opts: Any) -> None:
        """Load `path` with `opts` (a plan's GPU layers, threads, KV cache; all GPU layers
        by default); Reload engine uses the same settings again."""
        self.model_path = path
        self.load_opts = opts or {"n_gpu_layers": -1}
        self.sig_loading.emit(label or os.path.basename(path))
        self.load_job = self.bridge.load(path, n_ctx=self.n_ctx, **self.load_opts)

    def reload_engine(self) -> None:
        """Restart the engine process and load the last model again."""
        if self.model_path is None:
            self.sig_request_model.emit()
            return
        if self.stream is not None:
            self.stop()
        self.view.clear_banner()
        self.sig_loading.emit(os.path.basename(self.model_path))
        self.load_job = self.bridge.reload(self.model_path, n_ctx=self.n_ctx, **self.load_opts)

    def _on_loaded(self, job: int, info: dict) -> None:
        if job != self.load_job:
            return
        self.model_info = info
        self.n_ctx = int(info.get("n_ctx") or self.n_ctx)
        self.view.clear_banner()
        self.view.empty.set_model(self.model_name)
        self.sig_model.emit(info)
        self._emit_context()

    def _on_load_failed(self, job: int, kind: str, message: str, detail: str) -> None:
        if job != self.load_job:
            return
        self.model_info = None
        self.sig_model.emit(None)
        from app.ui.message_widgets import ErrorCard

        card = ErrorCard(kind, message, detail)
        card.reload_button.setText("Try again")
        card.sig_reload.connect(self.reload_engine)
        self.view.show_widget_banner(card)

    # -- conversations -------------------------------------------------------------------
    def settings(self) -> GenerationSettings:
        if self.conversation_id is None:
            return self.pending_settings
        conv = self.store.conversation(self.conversation_id)
        return settings_for(self.model_name, conv.settings if conv else None)

    def set_settings(self, settings: GenerationSettings) -> None:
        if self.conversation_id is None:
            self.pending_settings = settings
            return
        conv = self.store.conversation(self.conversation_id)
        merged = {**(conv.settings if conv else {}), **settings.to_dict()}
        self.store.set_conversation_settings(self.conversation_id, merged)

    def set_thinking_budget(self, budget: int | None) -> None:
        from dataclasses import replace

        self.set_settings(replace(self.settings(), thinking_budget=budget))

    def new_conversation(self) -> None:
        if self.stream is not None:
            self.stop()
        self.conversation_id = None
        self.pending_settings = settings_for(self.model_name)
        self.view.clear()
        self.context = ContextUse(self.n_ctx if self.model_info else 0)
        self.sig_context.emit(self.context)
        self.sig_current.emit(None)

    def open_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            return
        if self.stream is not None:
            self.stop()
        self.conversation_id = conversation_id
        messages = self.store.messages(conversation_id)
        self.view.show_messages(messages)
        self._context_from_saved()
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
        if self.model_info is None:
            self.view.show_banner(
                "Load a model to start chatting. Ponder runs it on this computer.",
                [("Load model…", self.sig_request_model.emit)],
            )
            return False
        if not force and not self.next_turn_fits(text):
            self._warn_too_long(text)
            return False
        self.view.clear_banner()
        if self.conversation_id is None:
            conv = self.store.create_conversation(
                model=self.model_name, settings=self.pending_settings.to_dict()
            )
            self.conversation_id = conv.id
            self.sig_current.emit(conv.id)
        msg = self.store.add_message(self.conversation_id, "user", text)
        self.view.add_user(msg.id, msg.position, text)
        self._start_answer()
        self.sig_conversations.emit()
        return True

    def next_turn_fits(self, text: str) -> bool:
        """Whether history + `text` leaves room to think and answer (engine counts when known,
        else a character estimate; the larger of the two)."""
        reserve = answer_reserve(self.settings(), self.n_ctx)
        known = self.context.prompt + self.context.answer
        estimate = 0
        if self.conversation_id is not None:
            history = self.store.history_for_model(self.conversation_id)
            estimate = sum(estimate_tokens(m["content"]) + 4 for m in history)
        return ContextUse(self.n_ctx, max(known, estimate)).next_turn_fits(text, reserve)

    def _warn_too_long(self, text: str) -> None:
        self.view.show_banner(
            f"The next turn may not fit in the {self.n_ctx:,}-token context: about "
            f"{self.context.prompt + self.context.answer:,} tokens are used, and the model "
            "needs room to think and answer.",
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
        messages = [m for m in self.store.messages(self.conversation_id)]
        reserve = answer_reserve(self.settings(), self.n_ctx)
        start = 0
        while start < len(messages):
            kept = messages[start:]
            est = sum(estimate_tokens(m.content) + 4 for m in kept) + estimate_tokens(text)
            if est + reserve <= self.n_ctx:
                break
            start += 2 if start + 1 < len(messages) else 1
        position = messages[start].position if start < len(messages) else messages[-1].position + 1
        conv = self.store.conversation(self.conversation_id)
        self.store.set_conversation_settings(
            self.conversation_id, {**(conv.settings if conv else {}), "history_from": position}
        )
        self.context = ContextUse(self.n_ctx)
        self.view.clear_banner()
        if text:
            self.send(text, force=True)

    def _start_answer(self) -> None:
        assert self.conversation_id is not None
        settings = self.settings()
        preset = preset_for_model(self.model_name)
        history = apply_system_prompt(
            self.store.history_for_model(self.conversation_id), settings, preset
        )
        msg = self.store.begin_assistant(self.conversation_id, self.model_name, settings.to_dict())
        widget = self.view.add_assistant(msg.id, msg.position, self.model_name)
        widget.begin(True)
        self.view.mark_last_assistant()
        job = self.bridge.generate(history, **settings.engine_kwargs())
        self.stream = _Stream(job, self.conversation_id, msg.id, widget)
        self._save_timer.start()
        self.sig_busy.emit(True)
        self.sig_thinking.emit(True)

    def stop(self) -> None:
        if self.stream is not None:
            self.bridge.cancel(self.stream.job)

    def answer_now(self) -> None:
        if self.stream is not None:
            self.bridge.answer_now(self.stream.job)

    def regenerate(self) -> None:
        if self.stream is not None or self.conversation_id is None:
            return
        messages = self.store.messages(self.conversation_id)
        if not messages or messages[-1].role != "assistant":
            return
        position = messages[-1].position
        self.store.delete_messages_from(self.conversation_id, position)
        self.view.truncate(position)
        self._start_answer()

    def edit_and_resend(self, message_id: int, text: str) -> None:
        if self.stream is not None or self.conversation_id is None:
            return
        msg = self.store.message(message_id)
        if msg is None or msg.role != "user":
            return
        self.store.delete_messages_from(self.conversation_id, msg.position)
        self.view.truncate(msg.position)
        new = self.store.add_message(self.conversation_id, "user", text)
        self.view.add_user(new.id, new.position, text)
        self._start_answer()

    # -- context meter -------------------------------------------------------------------
    def _emit_context(self) -> None:
        s = self.stream
        if s is not None:
            self.context = ContextUse(
                self.n_ctx, s.prompt_tokens, s.thinking_tokens, s.answer_tokens
            )
        elif self.context.n_ctx != self.n_ctx:
            self.context = ContextUse(
                self.n_ctx, self.context.prompt, self.context.thinking, self.context.answer
            )
        self.sig_context.emit(self.context)

    def _context_from_saved(self) -> None:
        assert self.conversation_id is not None
        messages = self.store.messages(self.conversation_id)
        last = next((m for m in reversed(messages) if m.role == "assistant"), None)
        if last is not None and last.stats.get("prompt_tokens"):
            st = last.stats
            self.context = ContextUse(
                self.n_ctx,
                int(st.get("prompt_tokens", 0)),
                int(st.get("thinking_tokens", 0)),
                int(st.get("answer_tokens", 0)),
            )
        else:
            history = self.store.history_for_model(self.conversation_id)
            est = sum(estimate_tokens(m["content"]) + 4 for m in history)
            self.context = ContextUse(self.n_ctx, est)
        self.sig_context.emit(self.context)
