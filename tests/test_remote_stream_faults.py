"""A hostile or broken server stream (issue 20, "Remote streams" and "Secrets"): a 10 MB
line, an endless line, a stall after some text under each framing, malformed chunks, an
error that echoes the API key, a stream kept open after its finish. Each test asserts the
words the user sees, and that the text that arrived is shown and kept."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.core.engine import EngineClient, StreamError, TextDelta
from backends.base import EngineFailure, GenerationControl
from backends.openai_compat import OpenAICompatEngine
from remote_wire import DONE, STALL, Reply, WireServer, sse

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
KEY = "sk-echo-secret-7f3a9c2e11"


@pytest.fixture
def server() -> Iterator[WireServer]:
    s = WireServer(["m"])
    yield s
    s.close()


def run(server: WireServer, **load: Any) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Load and answer in-process: (the typed parts, the done stats); raises EngineFailure."""
    engine = OpenAICompatEngine()
    engine.load(server.url, model="m", **load)
    parts: list[tuple[str, str]] = []
    stats = engine.generate({"id": "t", "messages": QUESTION}, GenerationControl(),
                            lambda e: None, lambda t, a, *_: parts.append((t, a)))  # fmt: skip
    return parts, stats


def failure(server: WireServer, **load: Any) -> tuple[EngineFailure, list[tuple[str, str]]]:
    engine = OpenAICompatEngine()
    engine.load(server.url, model="m", **load)
    parts: list[tuple[str, str]] = []
    with pytest.raises(EngineFailure) as err:
        engine.generate({"id": "t", "messages": QUESTION}, GenerationControl(),
                        lambda e: None, lambda t, a, *_: parts.append((t, a)))  # fmt: skip
    return err.value, parts


@pytest.mark.parametrize("framing", ["chunked", "close", "http10"])
def test_a_10_mb_line_is_refused_in_words_and_quickly(server, framing):
    line = b"data: " + b"x" * (10 << 20) + b"\n\n"
    server.chat = Reply(200, [sse({"content": "So far."}), line], framing)
    t0 = time.perf_counter()
    err, parts = failure(server)
    assert time.perf_counter() - t0 < 5
    assert "sent more than 1 MB without a line break" in err.message
    assert "The text before it is kept" in err.message


def test_an_endless_line_stops_at_the_cap_not_at_the_memory(server):
    piece = b"y" * (256 << 10)
    server.chat = Reply(200, [b"data: ", *([piece] * 400), STALL], "chunked")  # 100 MB offered
    err, _ = failure(server)
    assert "without a line break" in err.message


@pytest.mark.parametrize("framing", ["chunked", "close", "http10"])
def test_text_before_a_stall_is_shown_at_once_and_the_stall_is_noticed(server, framing):
    server.chat = Reply(200, [sse({"reasoning_content": "Two plus two"}),
                              sse({"content": "The answer"}), STALL], framing)  # fmt: skip
    with EngineClient(load_timeout_s=30) as client:
        client.load(server.url, engine="openai", model="m", stall_timeout_s=1.0)
        gen = client.chat(QUESTION)
        t0 = time.perf_counter()
        seen, events = "", []
        while "The answer" not in seen:
            event = gen.next_event(timeout_s=0.5)
            assert time.perf_counter() - t0 < 0.8, f"{framing}: text held back: {seen!r}"
            if isinstance(event, TextDelta):
                seen += event.thinking + event.answer
            events.append(event)
        events += list(gen)
    error = events[-1]
    assert isinstance(error, StreamError)
    assert "stopped sending in the middle of the answer (nothing for 1 s)" in error.message
    assert "What arrived is kept" in error.message


@pytest.mark.parametrize(
    "chunk, words",
    [
        (b'data: {"choices": [{"delta": {"content": 5}}]}\n\n', "content is int, not text"),
        (b'data: {"choices": {"delta": "x"}}\n\n', "`choices` is not a list of objects"),
        (b"data: <html>502 Bad Gateway</html>\n\n", "not JSON"),
        (b'data: {"error": 0}\n\n', 'no reason given (it sent {"error": 0})'),
    ],
)
def test_malformed_chunks_are_explained_not_a_raw_error(server, chunk, words):
    server.chat = Reply(200, [sse({"content": "So far."}), chunk, DONE], "chunked")
    err, parts = failure(server)
    assert words in err.message
    assert err.message != "0" and "TypeError" not in err.message
    assert parts == [("", "So far.")]


def test_an_error_that_echoes_the_api_key_never_shows_it(server):
    said = {"error": {"message": f"token {KEY} has no quota left", "code": 429}}
    event = b"data: " + json.dumps(said).encode() + b"\n\n"
    server.chat = Reply(200, [sse({"content": "Part"}), event], "chunked")
    with EngineClient(load_timeout_s=30) as client:
        client.load(server.url, engine="openai", model="m", api_key=KEY)
        events = list(client.chat(QUESTION))
    error = events[-1]
    assert isinstance(error, StreamError)
    assert error.message == "The server stopped the answer with an error: token … has no quota left"
    assert KEY not in error.message + error.detail
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_a_finished_stream_ends_without_waiting_for_done(server):
    server.chat = Reply(200, [sse({"content": "Four."}), sse(finish="stop"),
                              sse(usage={"prompt_tokens": 9, "completion_tokens": 2}), STALL],
                        "chunked")  # fmt: skip
    t0 = time.perf_counter()
    parts, stats = run(server)
    assert time.perf_counter() - t0 < 1.0
    assert parts == [("", "Four.")] and stats["stop_reason"] == "eos"
    assert stats["completion_tokens"] == 2 and stats["prompt_tokens"] == 9


def test_a_finish_without_usage_or_done_ends_after_a_short_grace(server):
    server.chat = Reply(200, [sse({"content": "Four."}), sse(finish="stop"), STALL], "close")
    t0 = time.perf_counter()
    parts, stats = run(server)
    assert time.perf_counter() - t0 < 3.5 and stats["stop_reason"] == "eos"
