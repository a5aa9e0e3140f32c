"""The behaviour the GUI relies on, checked against every local engine so they cannot drift.

Each test runs once with llama.cpp on a scripted GGUF and once with mlx-lm on a scripted MLX
folder that follows the same script (tests/scripted.py, tests/scripted_mlx.py): the same
thinking/answer split, cancel, Answer now, thinking budget, `done` stats and error kinds.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.engine import EngineError, StreamDone, StreamError, StreamStarted, TextDelta
from scripted import ANSWER_TEXT, THINK_TEXT

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
DONE_STATS = {"completion_tokens", "prompt_tokens", "ttft_s", "decode_tps", "elapsed_s",
              "stop_reason", "thinking_tokens", "ended_in_thinking", "peak_rss_bytes"}  # fmt: skip
LOADED_INFO = {"path", "engine", "architecture", "context_length", "n_ctx", "n_layers",
               "chat_template", "gpu_offload", "n_gpu_layers", "size_bytes", "load_seconds",
               "rss_bytes"}  # fmt: skip


@pytest.fixture(scope="module", params=["llama_cpp", "mlx"])
def backend(request, tmp_path_factory):
    """The engine's name and its scripted models (same scripts, each engine's format)."""
    if request.param == "mlx":
        pytest.importorskip("mlx_lm")
        from scripted_mlx import ScriptedMlxModels

        m = ScriptedMlxModels(tmp_path_factory.mktemp("parity-mlx"))
        corrupt = m.corrupt["truncated"]
    else:
        pytest.importorskip("llama_cpp")
        m = request.getfixturevalue("scripted_models")
        corrupt = m.corrupt["truncated"]
    return SimpleNamespace(name=request.param, models=m, corrupt=corrupt)


@pytest.fixture(scope="module")
def client(backend):
    from app.core.engine import EngineClient

    c = EngineClient(load_timeout_s=120)
    yield c
    c.close()


def load(client, backend, which: str | Path, n_ctx: int = 1024) -> dict:
    path = getattr(backend.models, which) if isinstance(which, str) else which
    return client.load(str(path), engine=backend.name, n_ctx=n_ctx)


def collect(gen):
    events = list(gen)
    thinking = "".join(e.thinking for e in events if isinstance(e, TextDelta))
    answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
    return events, thinking.strip(), answer.strip()


@pytest.mark.parametrize("which", ["preopen", "plain"])
def test_thinking_and_answer_are_split_the_same(client, backend, which):
    info = load(client, backend, which)
    assert info.keys() >= LOADED_INFO and info["engine"] == backend.name
    events, thinking, answer = collect(client.chat(QUESTION))
    assert isinstance(events[0], StreamStarted)
    assert events[0].thinking_open is (which == "preopen")
    assert (thinking, answer) == (THINK_TEXT, ANSWER_TEXT)
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "eos"
    assert not done.ended_in_thinking and done.thinking_tokens >= 5


def test_done_stats_have_the_same_keys(client, backend):
    load(client, backend, "preopen")
    done = list(client.chat(QUESTION))[-1]
    assert isinstance(done, StreamDone)
    keys = set(StreamDone.__dataclass_fields__) | set(done.extra)
    assert keys >= DONE_STATS
    assert done.ttft_s > 0 and done.decode_tps > 0 and done.elapsed_s > 0
    assert done.extra["peak_rss_bytes"] > 0


def test_thinking_that_never_closes_hits_the_length_limit(client, backend):
    load(client, backend, "never_closes")
    events, thinking, answer = collect(client.chat(QUESTION, max_tokens=40))
    done = events[-1]
    assert done.stop_reason == "length" and done.ended_in_thinking
    assert done.completion_tokens == 40
    assert thinking.startswith(THINK_TEXT) and answer == ""


def test_cancel_stops_the_stream_and_the_model_stays_usable(client, backend):
    load(client, backend, "never_closes", n_ctx=4096)
    gen = client.chat(QUESTION, max_tokens=3000)
    seen = 0
    for event in gen:
        if isinstance(event, TextDelta):
            seen += event.tokens
            if seen == 1:
                gen.cancel()
        last = event
    assert isinstance(last, StreamDone) and last.stop_reason == "cancelled"
    assert last.completion_tokens < 3000
    events, *_ = collect(client.chat(QUESTION, max_tokens=10))
    assert events[-1].stop_reason == "length" and events[-1].completion_tokens == 10


def test_answer_now_ends_thinking_and_the_model_answers(client, backend):
    load(client, backend, "never_closes", n_ctx=4096)
    gen = client.chat(QUESTION, max_tokens=3000)
    answer = ""
    for event in gen:
        if isinstance(event, TextDelta):
            answer += event.answer
            gen.answer_now()
        last = event
    assert answer.strip() == ANSWER_TEXT
    assert last.stop_reason == "eos" and not last.ended_in_thinking


def test_thinking_budget_caps_thinking_tokens(client, backend):
    load(client, backend, "never_closes", n_ctx=2048)
    events, _, answer = collect(client.chat(QUESTION, max_tokens=500, thinking_budget=12))
    assert events[-1].thinking_tokens == 12 and answer == ANSWER_TEXT


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_bad_model_files_are_bad_model_in_words(client, backend, tmp_path, case):
    path = tmp_path / "nope" if case == "missing" else backend.corrupt
    with pytest.raises(EngineError) as err:
        client.load(str(path), engine=backend.name)
    assert err.value.kind == "bad_model" and len(err.value.message) > 20
    if case == "missing":
        assert "no file" in err.value.message
    load(client, backend, "preopen")  # the next load works


def test_empty_message_list_is_a_bad_request(client, backend):
    load(client, backend, "preopen")
    events = list(client.chat([]))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "bad_request"


def test_prompt_longer_than_the_context_is_context_overflow(client, backend):
    load(client, backend, "preopen", n_ctx=256)
    events = list(client.chat([{"role": "user", "content": "word " * 400}]))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "context_overflow"
    assert "256" in events[-1].message


def test_malicious_chat_template_cannot_run_code(client, backend):
    marker = "/tmp/ponder_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    load(client, backend, "malicious")
    events = list(client.chat(QUESTION))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "bad_model"
    assert "unsafe" in events[-1].message and not os.path.exists(marker)


def test_killing_the_engine_mid_stream_is_engine_crashed(client, backend):
    load(client, backend, "never_closes", n_ctx=4096)
    gen = client.chat(QUESTION, max_tokens=4000)
    pid = client.pid
    events = []
    for event in gen:
        events.append(event)
        if len(events) == 2:
            os.kill(pid, signal.SIGKILL)
    assert isinstance(events[-1], StreamError) and events[-1].kind == "engine_crashed"
    assert "SIGKILL" in events[-1].message
    load(client, backend, "preopen")
    assert client.pid != pid
