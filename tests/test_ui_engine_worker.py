"""The engine worker: events reach the GUI thread as the engine batched them (no second
batching), with exact token counts; errors are reported, never swallowed; Stop works before
and during a stream; shutdown saves the answer as interrupted."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread

from app.core.answer_stream import AnswerStream
from app.core.engine.events import StreamDone, StreamStarted, TextDelta
from app.ui.engine_worker import EngineBridge
from app.ui.scripted_engine import Script, ScriptedClient


class Recorder(QObject):
    """Receives the worker's signals on the GUI thread (it lives there), as the window does."""

    def __init__(self, bridge: EngineBridge) -> None:
        super().__init__()
        self.events: list[tuple] = []
        self.threads: set[object] = set()
        w = bridge.worker
        w.sig_started.connect(self.on_started)  # methods: queued to this (GUI) thread
        w.sig_delta.connect(self.on_delta)
        w.sig_finished.connect(self.on_finished)

    def on_started(self, *a):
        self.add("started", a)

    def on_delta(self, *a):
        self.add("delta", a)

    def on_finished(self, *a):
        self.add("finished", a)

    def add(self, kind: str, args: tuple) -> None:
        self.threads.add(QThread.currentThread())
        self.events.append((kind, *args))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]

    def deltas(self) -> list[TextDelta]:
        return [e[2] for e in self.events if e[0] == "delta"]

    def result(self):
        return next(e[2] for e in self.events if e[0] == "finished")


class PlayedGeneration:
    """Plays events; the first delta, then waits for `go` before the rest."""

    def __init__(self, events: list) -> None:
        self.events = list(events)
        self.go = threading.Event()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.go.set()

    def answer_now(self) -> None:
        pass

    def next_event(self, timeout_s=None):
        if len(self.events) < 4 and not self.go.wait(timeout_s):
            return None
        return self.events.pop(0) if self.events else None


class PlayedClient(ScriptedClient):
    def __init__(self, events: list) -> None:
        super().__init__()
        self.gen = PlayedGeneration(events)

    def chat(self, messages, **params):
        self.calls.append(messages)
        return self.gen


def answer() -> AnswerStream:
    return AnswerStream([{"role": "user", "content": "q"}], {"max_tokens": None})


def test_deltas_are_forwarded_as_the_engine_sent_them_with_exact_tokens(qtbot):
    burst = [TextDelta("g", "x" * 50, "", 50, 0) for _ in range(3)]
    events = [StreamStarted("g", 3, True), TextDelta("g", "first", "", 1, 0), *burst,
              TextDelta("g", "", "answer", 1, 1),  # the closing tag counts with the thinking
              StreamDone("g", "eos", 153, 3, 0.1, 100.0, 1.0, 152, answer_tokens=1,
                         raw="first" + "x" * 150 + "</think>answer")]  # fmt: skip
    client = PlayedClient(events)
    bridge = EngineBridge(client)
    rec = Recorder(bridge)
    try:
        job = bridge.generate(answer())
        qtbot.waitUntil(lambda: "delta" in rec.kinds(), timeout=3000)
        assert rec.events[1] == ("delta", job, events[1])  # the first one before the rest
        client.gen.go.set()
        qtbot.waitUntil(lambda: "finished" in rec.kinds(), timeout=5000)
        assert rec.deltas() == events[1:6]  # one signal per engine batch, nothing re-batched
        assert sum(d.thinking_tokens for d in rec.deltas()) == 152
        result = rec.result()
        assert result.status == "complete" and result.raw.endswith("</think>answer")
        assert result.thinking == "first" + "x" * 150 and result.answer == "answer"
        assert (result.stats["thinking_tokens"], result.stats["answer_tokens"]) == (152, 1)
        assert rec.threads == {QThread.currentThread()}  # delivered on the GUI thread
    finally:
        bridge.shutdown()


def test_stop_before_the_worker_starts_the_job(qtbot):
    client = ScriptedClient()
    bridge = EngineBridge(client)
    rec = Recorder(bridge)
    try:
        stream = answer()
        stream.cancel()
        bridge.generate(stream)
        qtbot.waitUntil(lambda: "finished" in rec.kinds(), timeout=3000)
        assert rec.kinds() == ["finished"] and rec.result().stop_reason == "cancelled"
        assert client.calls == []
    finally:
        bridge.shutdown()


def test_exception_inside_the_stream_is_reported(qtbot):
    class Broken(ScriptedClient):
        def chat(self, messages, **params):
            class G:
                started = False

                def next_event(self, timeout_s=None):
                    if not self.started:
                        self.started = True
                        return StreamStarted("b", 1, True)
                    raise RuntimeError("decoder exploded")

                def cancel(self):
                    pass

                def answer_now(self):
                    pass

            return G()

    bridge = EngineBridge(Broken())
    try:
        with qtbot.waitSignal(bridge.worker.sig_finished, timeout=3000) as blocker:
            bridge.generate(answer())
        result = blocker.args[1]
        assert result.error.kind == "internal" and "decoder exploded" in result.error.message
        assert "RuntimeError" in result.error.detail
    finally:
        bridge.shutdown()


def test_load_failure_is_reported_in_words(qtbot):
    client = ScriptedClient(Script(load_error=("bad_model", "That file is not a GGUF model.")))
    bridge = EngineBridge(client)
    try:
        with qtbot.waitSignal(bridge.worker.sig_load_failed, timeout=3000) as blocker:
            bridge.load("/tmp/x.gguf")
        assert blocker.args[1:3] == ["bad_model", "That file is not a GGUF model."]
    finally:
        bridge.shutdown()


def test_shutdown_stops_the_thread_closes_the_engine_and_saves_as_interrupted(qtbot, tmp_path):
    from app.core.answer_stream import ModelRef
    from app.core.chat_session import ChatSession
    from app.core.chat_store import ChatStore

    client = ScriptedClient(Script(pause_at=1))
    bridge = EngineBridge(client)
    with ChatStore(tmp_path / "c.sqlite3") as store:
        stream = ChatSession(store).send("q", ModelRef("/m.gguf", "m", 8192))
        bridge.generate(stream)
        qtbot.waitUntil(lambda: bool(client.generations) and client.generations[0].paused.is_set())
        bridge.shutdown()
        assert bridge.engine_thread.isFinished()
        assert client.closed == 1 and client.generations[0].cancelled
        saved = store.message(stream.message_id)
        assert saved.status == "partial" and saved.stats["stop_reason"] == "interrupted"
        assert saved.thinking == "Two"
