"""The remote engine through the real engine process, against llama-cpp-python's own
OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1 with scripted models:
streaming with thinking separated, cancel, a wrong model name, a wrong port, a server
killed mid-stream, and an API key that never reaches a message or a log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine import EngineClient, EngineError, StreamDone, StreamError, TextDelta
from scripted import ANSWER_TEXT, THINK_TEXT

pytest.importorskip("llama_cpp.server")

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
KEY = "sk-remote-test-abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` with one model, started and waited for."""

    def __init__(self, model: Path, n_ctx: int = 2048, alias: str | None = None) -> None:
        self.model = alias or str(model)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
             "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--verbose", "false",
             *(["--model_alias", alias] if alias else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip

    def wait_ready(self, timeout_s: float = 60.0) -> LlamaServer:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("llama_cpp.server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def servers(scripted_models) -> Iterator[dict[str, LlamaServer]]:
    started = {
        "preopen": LlamaServer(scripted_models.preopen),
        "never": LlamaServer(scripted_models.never_closes, n_ctx=4096),
    }
    try:
        yield {k: s.wait_ready() for k, s in started.items()}
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture
def client() -> Iterator[EngineClient]:
    c = EngineClient(load_timeout_s=60)
    yield c
    c.close()


def texts(events) -> tuple[str, str]:
    deltas = [e for e in events if isinstance(e, TextDelta)]
    return "".join(d.thinking for d in deltas), "".join(d.answer for d in deltas)


def test_streams_thinking_and_answer_separately(client, servers):
    server = servers["preopen"]
    info = client.load(server.url, engine="openai", model=server.model, api_key=KEY)
    assert info["remote"] is True and info["name"] == server.model
    assert info["thinking_open_guess"] is True  # an R1 model: the template pre-opens <think>
    events = list(client.chat(QUESTION))
    thinking, answer = texts(events)
    assert thinking == THINK_TEXT and answer == ANSWER_TEXT
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "eos"
    assert done.completion_tokens >= 10 and done.ttft_s is not None and done.decode_tps
    assert len([e for e in events if isinstance(e, TextDelta)]) >= 2  # streamed, not at once
    assert KEY not in repr(info) and not any(KEY in line for line in client.stderr_tail)


def test_max_tokens_ends_in_thinking_with_length(client, servers):
    server = servers["never"]
    client.load(server.url, engine="openai", model=server.model)
    events = list(client.chat(QUESTION, max_tokens=25))
    done = events[-1]
    assert done.stop_reason == "length" and done.ended_in_thinking
    assert done.completion_tokens == 25
    assert texts(events)[0].startswith(THINK_TEXT)


def test_cancel_closes_the_stream_at_once(client, servers):
    server = servers["never"]
    client.load(server.url, engine="openai", model=server.model)
    gen = client.chat(QUESTION, max_tokens=4000)
    t0 = time.perf_counter()
    for event in gen:
        if isinstance(event, TextDelta):
            gen.cancel()
            t_cancel = time.perf_counter()
        last = event
    assert isinstance(last, StreamDone) and last.stop_reason == "cancelled"
    assert last.completion_tokens < 4000
    assert time.perf_counter() - t_cancel < 0.5, time.perf_counter() - t0
    # the server and the engine stay usable after a cancel
    again = list(client.chat(QUESTION, max_tokens=10))
    assert again[-1].stop_reason == "length"


def test_a_wrong_model_name_lists_the_servers_models(client, servers):
    server = servers["preopen"]
    with pytest.raises(EngineError) as err:
        client.load(server.url, engine="openai", model="deepseek-r1:671b")
    assert err.value.kind == "bad_model"
    assert "no model called 'deepseek-r1:671b'" in err.value.message
    assert server.model in err.value.message


def test_a_wrong_port_says_nothing_answers(client):
    port = free_port()
    with pytest.raises(EngineError) as err:
        client.load(f"http://127.0.0.1:{port}/v1", engine="openai", model="x", api_key=KEY)
    assert "connection refused" in err.value.message and f"127.0.0.1:{port}" in err.value.message
    assert KEY not in err.value.message + err.value.detail


def test_a_server_killed_mid_stream_is_reported_and_the_text_kept(client, scripted_models):
    server = LlamaServer(scripted_models.never_closes, n_ctx=4096).wait_ready()
    try:
        client.load(server.url, engine="openai", model=server.model)
        gen = client.chat(QUESTION, max_tokens=4000)
        events = []
        for event in gen:
            events.append(event)
            if isinstance(event, TextDelta) and server.proc.poll() is None:
                os.kill(server.proc.pid, signal.SIGKILL)
        error = events[-1]
        assert isinstance(error, StreamError) and error.kind == "internal"
        assert "lost in the middle of the answer" in error.message
        assert texts(events)[0].startswith("Two")  # what arrived before is kept
        # the engine process survived; the next chat says the server is gone
        after = list(client.chat(QUESTION))
        assert isinstance(after[-1], StreamError) and "connection refused" in after[-1].message
        assert client.pid is not None
    finally:
        server.stop()


def test_a_model_named_reasoner_on_a_server_without_a_parser_splits_thinking(
    client, scripted_models
):
    """The name says nothing about a pre-opened `<think>`; the bare `</think>` does (#16)."""
    server = LlamaServer(scripted_models.preopen, alias="reasoner").wait_ready()
    try:
        info = client.load(server.url, engine="openai", model="reasoner")
        assert info["thinking_open_guess"] is False and info["reasoning_format"] == "auto"
        events = list(client.chat(QUESTION))
        assert texts(events) == (THINK_TEXT, ANSWER_TEXT)
        assert isinstance(events[-1], StreamDone) and not events[-1].ended_in_thinking
        client.load(server.url, engine="openai", model="reasoner", reasoning_format="tags")
        assert texts(list(client.chat(QUESTION))) == (THINK_TEXT, ANSWER_TEXT)
    finally:
        server.stop()
