"""The engine client as request/response, and the engine process's command loop.

Timing cases (slow loads, long streams) use the real host with a fake engine registered
(tests/fake_engine.py); hang and crash cases also run the real llama.cpp engine on a
scripted model. Every wait has a timeout and every test a pytest-timeout bound.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core.engine import (
    EngineClient,
    EngineError,
    StreamDone,
    StreamError,
    StreamStarted,
    TextDelta,
)
from app.core.engine.client import STILL_ANSWERING, child_environment
from backends.base import DELTA_FLUSH_S
from backends.host import EventWriter
from fake_engine import host_command as fake_host_command

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
ROOT = Path(__file__).resolve().parents[1]


def read_all(gen, timeout_s: float = 20.0) -> list:
    """Every event of a generation, failing (not hanging) if it does not end in time."""
    events, deadline = [], time.monotonic() + timeout_s
    while not gen.finished:
        event = gen.next_event(max(0.0, deadline - time.monotonic()))
        assert event is not None, f"no end within {timeout_s} s; got {events[-3:]}"
        events.append(event)
    return events


def first_text(gen, timeout_s: float = 10.0) -> TextDelta:
    deadline = time.monotonic() + timeout_s
    while True:
        event = gen.next_event(max(0.0, deadline - time.monotonic()))
        assert event is not None and not isinstance(event, StreamDone | StreamError), event
        if isinstance(event, TextDelta):
            return event


# -- request/response: loads ------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_timed_out_load_is_killed_and_the_next_load_returns_its_own_model(fake_engine_client):
    client = fake_engine_client
    client.load_timeout_s = 1.0
    client.start()
    first_pid = client.pid
    t0 = time.monotonic()
    with pytest.raises(EngineError) as err:
        client.load("model-a", engine="fake", delay_s=30)
    assert time.monotonic() - t0 < 8
    assert err.value.kind == "engine_hung"
    assert "did not finish loading in 1 s" in err.value.message and "restarted" in err.value.message
    assert client.pid is not None and client.pid != first_pid  # a fresh engine is running
    client.load_timeout_s = 30.0
    info = client.load("model-b", engine="fake")
    assert info["path"] == "model-b" and client.model_info["path"] == "model-b"


@pytest.mark.timeout(60)
def test_ping_is_answered_during_a_long_load(fake_engine_client):
    client = fake_engine_client
    client.start()
    loaded: dict = {}
    loader = threading.Thread(
        target=lambda: loaded.update(client.load("slow", engine="fake", delay_s=3))
    )
    loader.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    pong = client.ping(timeout_s=2.0)
    assert time.monotonic() - t0 < 1.0
    assert pong["busy"] is True and pong["state"] == "loading"
    loader.join(10)
    assert loaded["path"] == "slow"  # the watchdog (1 s) did not take the slow load for a hang
    assert client.ping()["busy"] is False


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.timeout(30)
def test_a_fifo_as_the_model_is_refused_at_once(fake_engine_client, tmp_path):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(EngineError) as err:
        fake_engine_client.load(str(fifo), engine="fake")
    assert time.monotonic() - t0 < 1 and err.value.kind == "bad_model"
    assert "not a regular file" in err.value.message


@pytest.mark.timeout(60)
def test_a_late_reply_to_an_abandoned_command_is_dropped(fake_engine_client):
    client = fake_engine_client
    client.load("model-a", engine="fake")
    with pytest.raises(EngineError) as err:
        client.ping(timeout_s=0)  # gives up before the pong arrives
    assert err.value.kind == "engine_hung"
    info = client.load("model-b", engine="fake")
    assert info["path"] == "model-b"
    assert client.ping()["state"] == "idle"


# -- request/response: chats ------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_second_chat_is_refused_in_words_and_the_first_completes(fake_engine_client):
    client = fake_engine_client
    client.load("m", engine="fake", token_delay_s=0.002, thinking_tokens=100)
    first = client.chat(QUESTION, max_tokens=400)
    assert isinstance(first.next_event(10), StreamStarted)
    second = client.chat(QUESTION, max_tokens=10)
    refusal = second.next_event(1.0)
    assert refusal == StreamError(second.request_id, "bad_request", STILL_ANSWERING)
    assert second.finished and second.next_event(0.1) is None
    assert client.active is first
    events = read_all(first)
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "length"
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert sum(d.thinking_tokens for d in deltas) == done.thinking_tokens == 100
    assert sum(d.answer_tokens for d in deltas) == done.answer_tokens == 300
    assert "".join(d.thinking for d in deltas) == "".join(f"t{i} " for i in range(100))
    assert "".join(d.answer for d in deltas) == "".join(f"a{i} " for i in range(100, 400))
    assert done.raw.startswith("<think>\nt0 ")
    assert len(deltas) < 400 / 3  # batched by time (2 ms tokens, 33 ms batches)
    assert client.active is None
    third = read_all(client.chat(QUESTION, max_tokens=5))
    assert isinstance(third[-1], StreamDone) and third[-1].completion_tokens == 5


@pytest.mark.timeout(60)
def test_the_host_refuses_a_second_chat_with_the_new_chats_id():
    """Below the client: the engine process itself, spoken to in JSON lines."""
    with HostPipe() as host:
        host.send({"cmd": "load", "id": "L", "path": "m", "engine": "fake", "token_delay_s": 0.01})
        assert host.reply("L")["event"] == "loaded"
        host.send({"cmd": "chat", "id": "A", "messages": QUESTION, "params": {"max_tokens": 300}})
        host.send({"cmd": "chat", "id": "B", "messages": QUESTION, "params": {}})
        refusal = host.reply("B")
        assert refusal["event"] == "error" and refusal["kind"] == "bad_request"
        assert "still answering" in refusal["message"]
        host.send({"cmd": "ping", "id": "P"})
        assert host.reply("P")["busy"] is True
        host.send({"cmd": "cancel", "id": "B"})  # not the running chat: ignored
        host.send({"cmd": "cancel", "id": "A"})
        done = host.reply("A")
        assert done["event"] == "done" and done["stats"]["stop_reason"] == "cancelled"
        a_events = [e for e in host.seen if e.get("id") == "A"]
        assert [e["event"] for e in a_events][:2] == ["started", "delta"]
        assert all(e.get("id") for e in host.seen if e["event"] != "ready")


@pytest.mark.timeout(60)
def test_loading_while_an_answer_streams_stops_the_answer_first(fake_engine_client):
    client = fake_engine_client
    client.load("old", engine="fake", token_delay_s=0.01)
    gen = client.chat(QUESTION, max_tokens=3000)
    first_text(gen)
    t0 = time.monotonic()
    info = client.load("new", engine="fake")
    assert time.monotonic() - t0 < 5 and info["path"] == "new"
    done = read_all(gen, 5)[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "cancelled"


# -- process lifecycle --------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_close_without_waiting_then_start_never_reports_a_crash():
    client = EngineClient(load_timeout_s=30)
    try:
        client.start()
        for i in range(40):
            old = client.pid
            client.close(timeout_s=0)
            client.start()
            assert client.pid != old
            pong = client.ping(timeout_s=5)  # an old reader posting a crash would land here
            assert pong["state"] == "idle", i
    finally:
        client.close()


@pytest.mark.timeout(30)
def test_an_engine_that_cannot_start_says_why():
    dies = EngineClient(command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(EngineError) as err:
        dies.start()
    assert err.value.kind == "engine_crashed" and "exited with status 3" in err.value.message
    ready = json.dumps({"event": "ready", "pid": 1, "protocol": 1})
    old = EngineClient(command=[sys.executable, "-c", f"print({ready!r}); input()"])
    with pytest.raises(EngineError) as err:
        old.start()
    assert "protocol 1" in err.value.message and old.pid is None


@pytest.mark.timeout(60)
def test_closing_under_a_stream_ends_it_in_words_and_the_next_engine_is_clean(
    fake_engine_client,
):
    client = fake_engine_client
    for _ in range(5):
        client.load("m", engine="fake", token_delay_s=0.005)
        gen = client.chat(QUESTION, max_tokens=3000)
        first_text(gen)
        client.close(timeout_s=0)
        end = read_all(gen, 5)[-1]
        assert isinstance(end, StreamError) and "partial answer is kept" in end.message
        client.start()
        assert client.ping()["state"] == "idle"


@pytest.mark.timeout(60)
def test_a_stopped_engine_during_a_load_is_noticed(fake_engine_client):
    client = fake_engine_client
    client.start()
    pid = client.pid
    threading.Timer(0.5, os.kill, (pid, signal.SIGSTOP)).start()
    t0 = time.monotonic()
    with pytest.raises(EngineError) as err:
        client.load("never", engine="fake", delay_s=30)
    noticed = time.monotonic() - t0
    assert err.value.kind == "engine_hung" and "stopped responding" in err.value.message
    assert noticed < 0.5 + client.watchdog_s + client.ping_timeout_s + 2.0
    assert client.load("next", engine="fake")["path"] == "next"
    assert client.pid != pid


# -- the real llama.cpp engine: hangs and crashes mid-answer ------------------------------
@pytest.fixture
def quick_watchdog_engine():
    client = EngineClient(load_timeout_s=120, watchdog_s=1.0, ping_timeout_s=1.0)
    yield client
    client.close(timeout_s=1.0)


def long_answer(client: EngineClient, scripted_models) -> tuple:
    pytest.importorskip("llama_cpp")
    client.load(str(scripted_models.never_closes), n_ctx=8192)
    gen = client.chat(QUESTION, max_tokens=8000)
    first_text(gen)
    return gen, client.pid


@pytest.mark.timeout(120)
def test_a_stopped_engine_mid_answer_is_noticed_and_the_next_load_works(
    quick_watchdog_engine, scripted_models
):
    client = quick_watchdog_engine
    gen, pid = long_answer(client, scripted_models)
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    events = read_all(gen, 15)
    noticed = time.monotonic() - t0
    end = events[-1]
    assert isinstance(end, StreamError) and end.kind == "engine_hung", end
    assert "stopped responding" in end.message and "partial answer is kept" in end.message
    assert noticed < client.watchdog_s + client.ping_timeout_s + 2.0
    print(f"\nSIGSTOPed engine noticed after {noticed:.2f} s (watchdog 1 s + pong 1 s)")
    info = client.load(str(scripted_models.preopen), n_ctx=512)
    assert info["n_ctx"] == 512 and client.pid != pid
    assert isinstance(read_all(client.chat(QUESTION, max_tokens=20))[-1], StreamDone)


@pytest.mark.timeout(120)
def test_a_killed_engine_mid_answer_is_a_crash_and_the_next_load_works(
    quick_watchdog_engine, scripted_models
):
    client = quick_watchdog_engine
    gen, pid = long_answer(client, scripted_models)
    os.kill(pid, signal.SIGKILL)
    end = read_all(gen, 10)[-1]
    assert isinstance(end, StreamError) and end.kind == "engine_crashed"
    assert "SIGKILL" in end.message
    assert client.model_info is None and client.active is None
    info = client.load(str(scripted_models.preopen), n_ctx=512)
    assert info["n_ctx"] == 512 and client.pid != pid


# -- the one batching point -----------------------------------------------------------------
class _Lines(io.StringIO):
    """A stream that records when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[float, dict]] = []

    def write(self, s: str) -> int:
        self.times.append((time.monotonic(), json.loads(s)))
        return len(s)


@pytest.mark.timeout(10)
def test_the_first_delta_goes_at_once_a_lone_one_within_an_interval_and_all_before_done():
    out = _Lines()
    writer = EventWriter(out)
    t0 = time.monotonic()
    writer.parts("r", "a", "", 1, 0)
    assert len(out.times) == 1 and out.times[0][0] - t0 < DELTA_FLUSH_S / 2
    writer.parts("r", "b", "", 1, 0)
    writer.parts("r", "", "c", 0, 1)
    assert len(out.times) == 1  # held back for the interval
    time.sleep(DELTA_FLUSH_S * 4)
    assert len(out.times) == 2  # the flusher sent the lone batch without a new token
    when, batch = out.times[1]
    assert when - out.times[0][0] < DELTA_FLUSH_S * 3
    assert (batch["thinking"], batch["answer"]) == ("b", "c")
    assert (batch["thinking_tokens"], batch["answer_tokens"]) == (1, 1)
    writer.parts("r", "", "d", 0, 1)
    writer.finish("r", {"event": "done", "id": "r"})
    assert [e["event"] for _, e in out.times[2:]] == ["delta", "done"]
    assert out.times[2][1]["answer"] == "d"


class _CountingWriter(EventWriter):
    """Counts the flusher's wake-ups (each one takes a core from llama.cpp's threads)."""

    wakeups = 0

    def _next_due(self, now: float) -> float | None:
        self.wakeups += 1
        return super()._next_due(now)


@pytest.mark.timeout(10)
def test_a_steady_stream_wakes_the_flusher_about_once_per_interval():
    out = _Lines()
    writer = _CountingWriter(out)
    start = time.monotonic()
    while time.monotonic() - start < 40 * DELTA_FLUSH_S:  # a token every millisecond
        writer.parts("r", "x", "", 1, 0)
        time.sleep(0.001)
    writer.finish("r", {"event": "done", "id": "r"})
    intervals = (time.monotonic() - start) / DELTA_FLUSH_S
    assert len(out.times) <= intervals + 3  # batched
    # a notify each time a batch went out would wake it twice per interval
    assert writer.wakeups <= 1.4 * intervals + 3, (writer.wakeups, intervals)
    assert sum(e.get("thinking_tokens", 0) for _, e in out.times) == sum(
        1 for _, e in out.times for _ in e.get("thinking", "")
    )


# -- the engine's environment ---------------------------------------------------------------
FAKE_SECRETS = {
    "GITHUB_TOKEN": "ghp_PONDERTESTSECRET0001",
    "AWS_SECRET_ACCESS_KEY": "PONDERTESTSECRET0002",
    "ANTHROPIC_API_KEY": "sk-ant-PONDERTESTSECRET0003",
    "HF_TOKEN": "hf_PONDERTESTSECRET0004",
    "LLAMA_API_KEY": "PONDERTESTSECRET0005",  # an allowed prefix, a secret's name
    "MY_APP_PASSWORD": "PONDERTESTSECRET0006",
}


def test_the_engine_gets_an_allow_list_environment(monkeypatch):
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GGML_CUDA_NO_PINNED", "1")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    env = child_environment()
    assert not any("PONDERTESTSECRET" in value for value in env.values())
    assert env["GGML_CUDA_NO_PINNED"] == "1" and env["LC_ALL"] == "C.UTF-8"
    assert env["PATH"] == os.environ["PATH"] and str(ROOT) in env["PYTHONPATH"].split(os.pathsep)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.timeout(30)
def test_the_running_engine_process_holds_no_secret(monkeypatch):
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    with EngineClient() as client:
        client.start()
        environ = Path(f"/proc/{client.pid}/environ").read_bytes()
    assert b"PONDERTESTSECRET" not in environ


# -- a raw JSON-lines session with the engine process ----------------------------------------
class HostPipe:
    """The engine process (with the fake engine) driven by hand, for host-level checks."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            fake_host_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=child_environment(),
        )
        self.seen: list[dict] = []
        self._lines: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(json.loads(line))
                self._cond.notify_all()

    def send(self, cmd: dict) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def reply(self, request_id: str, timeout_s: float = 10.0) -> dict:
        """The next final event (not started/delta) for `request_id`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for i, event in enumerate(self._lines):
                    if event.get("id") == request_id and event["event"] not in ("started", "delta"):
                        self.seen += self._lines[: i + 1]
                        del self._lines[: i + 1]
                        return event
                left = deadline - time.monotonic()
                assert left > 0, f"no reply to {request_id} within {timeout_s} s"
                self._cond.wait(left)

    def __enter__(self) -> HostPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(5)
