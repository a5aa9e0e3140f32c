"""The engine worker: events reach the GUI thread batched by time, first one at once; errors
are reported, never swallowed; cancel works before and during a stream."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread

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
        w.sig_started.connect(self.on_started)
        w.sig_thinking_delta.connect(self.on_thinking)
        w.sig_answer_delta.connect(self.on_answer)
        w.sig_raw_delta.connect(self.on_raw)
        w.sig_done.connect(self.on_done)
        w.sig_error.connect(self.on_error)

    def on_started(self, *a):
        self.add("started", a)

    def on_thinking(self, *a):
        self.add("thinking", a)

    def on_answer(self, *a):
        self.add("answer", a)

    def on_raw(self, *a):
        self.add("raw", a)

    def on_done(self, *a):
        self.add("done", a)

    def on_error(self, *a):
        self.add("error", a)

    def add(self, kind: str, args: tuple) -> None:
        self.threads.add(QThread.currentThread())
        self.events.append((kind, *args))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]

    def text(self, kind: str) -> str:
        return "".join(e[2] for e in self.events if e[0] == kind)

    def tokens(self, kind: str) -> int:
        return sum(e[3] for e in self.events if e[0] == kind)


class GatedGeneration:
    """Yields a first delta, then waits for `go` before a burst of 2,000 tiny deltas."""

    def __init__(self) -> None:
        self.go = threading.Event()

    def cancel(self) -> None:
        self.go.set()

    def answer_now(self) -> None:
        pass

    def __iter__(self):
        yield StreamStarted("g", 3, True)
        yield TextDelta("g", "first", "", "first", 1)
        self.go.wait(10)
        for _ in range(2000):
            yield TextDelta("g", "x", "", "x", 1)
        yield TextDelta("g", "", "", "</think>", 1)
        yield TextDelta("g", "", "answer", "answer", 1)
        yield StreamDone("g", "eos", 2003, 3, 0.1, 100.0, 1.0, 2001)


class GatedClient(ScriptedClient):
    def chat(self, messages, **params):
        self.gen = GatedGeneration()
        return self.gen


def test_first_event_is_not_delayed_and_later_ones_are_batched(qtbot):
    client = GatedClient()
    bridge = EngineBridge(client, batch_s=0.05)
    rec = Recorder(bridge)
    try:
        job = bridge.generate([{"role": "user", "content": "q"}])
        qtbot.waitUntil(lambda: "thinking" in rec.kinds(), timeout=3000)
        assert rec.events[1] == ("thinking", job, "first", 1)  # before the burst is released
        client.gen.go.set()
        qtbot.waitUntil(lambda: "done" in rec.kinds(), timeout=5000)
        assert rec.text("thinking") == "first" + "x" * 2000
        assert rec.tokens("thinking") == 2002  # the tag counts with the thinking
        assert rec.text("answer") == "answer" and rec.tokens("answer") == 1
        assert rec.text("raw").endswith("</think>answer")
        assert rec.kinds().count("thinking") < 50  # 2,000 deltas, a few batches
        assert rec.threads == {QThread.currentThread()}  # delivered on the GUI thread
    finally:
        bridge.shutdown()


def test_cancel_before_the_worker_starts_the_job(qtbot):
    client = ScriptedClient()
    bridge = EngineBridge(client)
    rec = Recorder(bridge)
    try:
        bridge.cancel(1)
        bridge.generate([{"role": "user", "content": "q"}])
        qtbot.waitUntil(lambda: "done" in rec.kinds(), timeout=3000)
        assert rec.kinds() == ["done"] and rec.events[0][2].stop_reason == "cancelled"
        assert client.calls == []
    finally:
        bridge.shutdown()


def test_exception_inside_the_stream_is_reported(qtbot):
    class Broken(ScriptedClient):
        def chat(self, messages, **params):
            def gen():
                yield StreamStarted("b", 1, True)
                raise RuntimeError("decoder exploded")

            class G:
                def __iter__(self):
                    return gen()

                def cancel(self):
                    pass

            return G()

    bridge = EngineBridge(Broken())
    try:
        with qtbot.waitSignal(bridge.worker.sig_error, timeout=3000) as blocker:
            bridge.generate([{"role": "user", "content": "q"}])
        job, kind, message, detail = blocker.args
        assert kind == "internal" and "decoder exploded" in message
        assert "RuntimeError" in detail
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


def test_shutdown_stops_the_thread_and_closes_the_engine(qtbot):
    client = ScriptedClient(Script(pause_at=1))
    bridge = EngineBridge(client)
    bridge.generate([{"role": "user", "content": "q"}])
    qtbot.waitUntil(lambda: bool(client.generations) and client.generations[0].paused.is_set())
    bridge.shutdown()
    assert bridge.thread.isFinished()
    assert client.closed == 1 and client.generations[0].cancelled
