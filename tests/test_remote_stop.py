"""Stop ends a remote answer at once under every HTTP framing (issue 16): chunked,
`Connection: close` without a length and HTTP/1.0 without a length, while the server is
silent (a long prefill) and while it streams; through the real engine process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.core.engine import EngineClient, StreamDone, TextDelta
from remote_wire import STALL, Reply, WireServer, sse

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
FRAMINGS = ("chunked", "close", "http10")
STOP_LIMIT_S = 0.05


@pytest.fixture(scope="module")
def client() -> Iterator[EngineClient]:
    c = EngineClient(load_timeout_s=30)
    yield c
    c.close()


@pytest.fixture
def server() -> Iterator[WireServer]:
    s = WireServer(["reasoner"])
    yield s
    s.close()


def _stop_after(client: EngineClient, when_text: bool, wait_s: float = 0.3) -> tuple[float, list]:
    gen = client.chat(QUESTION)
    events: list = []
    t_cancel = None
    t0 = time.perf_counter()
    while True:
        event = gen.next_event(timeout_s=0.01)
        now = time.perf_counter()
        if event is not None:
            events.append(event)
            if isinstance(event, StreamDone):
                assert t_cancel is not None
                return now - t_cancel, events
            if when_text and isinstance(event, TextDelta) and t_cancel is None:
                gen.cancel()
                t_cancel = time.perf_counter()
        if not when_text and t_cancel is None and now - t0 > wait_s:
            gen.cancel()
            t_cancel = time.perf_counter()
        assert now - t0 < 10, "the answer did not stop"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_stop_during_a_silent_prefill_ends_within_50_ms(client, server, framing):
    server.chat = Reply(200, [STALL], framing)  # headers sent, then nothing (prefill)
    client.load(server.url, engine="openai", model="reasoner")
    took, events = _stop_after(client, when_text=False)
    assert isinstance(events[-1], StreamDone) and events[-1].stop_reason == "cancelled"
    print(f"stop during prefill, {framing}: {took * 1000:.1f} ms")
    assert took < STOP_LIMIT_S, f"{framing}: Stop took {took * 1000:.0f} ms"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_stop_while_streaming_ends_within_50_ms_and_keeps_the_text(client, server, framing):
    server.chat = Reply(200, [sse({"reasoning_content": "Two plus two"}), STALL], framing)
    client.load(server.url, engine="openai", model="reasoner")
    took, events = _stop_after(client, when_text=True)
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "cancelled"
    assert "".join(e.thinking for e in events if isinstance(e, TextDelta)) == "Two plus two"
    print(f"stop while streaming, {framing}: {took * 1000:.1f} ms")
    assert took < STOP_LIMIT_S, f"{framing}: Stop took {took * 1000:.0f} ms"


def test_stop_before_the_headers_ends_within_50_ms(client, server):
    server.chat = Reply(200, [], stall_before_headers=True)
    client.load(server.url, engine="openai", model="reasoner")
    took, events = _stop_after(client, when_text=False)
    assert events[-1].stop_reason == "cancelled" and took < STOP_LIMIT_S
