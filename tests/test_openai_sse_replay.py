"""The remote engine against recorded stream shapes replayed by a tiny local HTTP server:
vLLM `reasoning_content`, `reasoning`, Ollama's native `thinking`, `<think>` in content;
and what 401, 404, 429, 500, an error mid-stream and a dropped connection turn into."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.core.engine import EngineClient, EngineError, StreamDone, StreamError, TextDelta
from backends.base import EngineFailure, GenerationControl
from backends.openai_compat import OpenAICompatEngine
from backends.remote_http import list_models, test_connection

DATA = Path(__file__).parent / "data" / "sse"
THINK = "Okay, so I need to compare 9.11 and 9.8."
ANSWER = "9.8 is greater than 9.11."
KEY = "sk-ponder-test-0123456789"
QUESTION = [{"role": "user", "content": "9.11 and 9.8, which is greater?"}]


class ReplayServer:
    """Serves /v1/models, /api/tags and replays a file for chat requests, in small pieces.

    `mode` picks the behaviour of the next chat requests: "ok", "401", "429", "500",
    "drop" (half the stream, then the connection closes), "error_event". `need_key`
    makes every request without `Bearer KEY` a 401.
    """

    def __init__(self, models: list[str] | None = None) -> None:
        self.models = models or ["deepseek-r1"]
        self.file = DATA / "vllm_reasoning_content.sse"
        self.mode = "ok"
        self.need_key = False
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if server.need_key and self.headers.get("Authorization") != f"Bearer {KEY}":
                    self._json(401, {"error": {"message": "Invalid API key", "code": 401}})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [
                        {"id": m, "object": "model"} for m in server.models]})  # fmt: skip
                elif self.path == "/api/tags":
                    self._json(200, {"models": [{"name": m} for m in server.models]})
                else:
                    self._json(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if not self._authorized():
                    return
                if body.get("model") not in server.models:
                    self._json(404, {"error": {"message": f"The model `{body.get('model')}` "
                                               "does not exist.", "code": 404}})  # fmt: skip
                    return
                if server.mode == "429":
                    self._json(429, {"error": {"message": "Rate limit reached"}},
                               {"Retry-After": "7"})  # fmt: skip
                    return
                if server.mode == "500":
                    self._json(500, {"error": {"message": "CUDA error: an illegal memory "
                                               "access was encountered"}})  # fmt: skip
                    return
                data = server.file.read_bytes()
                if server.mode == "drop":
                    data = data[: len(data) // 2]
                if server.mode == "error_event":
                    data = data[: len(data) // 3].rsplit(b"\n\n", 1)[0] + (
                        b'\n\ndata: {"error": {"message": "engine overloaded"}}\n\n'
                    )
                self.send_response(200)
                kind = "x-ndjson" if server.file.suffix == ".ndjson" else "event-stream"
                self.send_header("Content-Type", f"text/{kind}")
                self.end_headers()
                for i in range(0, len(data), 37):  # odd-sized pieces: lines split anywhere
                    self.wfile.write(data[i : i + 37])
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def replay():
    server = ReplayServer()
    yield server
    server.close()


def run_engine(server: ReplayServer, api: str = "openai", key: str | None = None, **load: Any):
    """Load and generate in-process; returns (events, texts, stats)."""
    engine = OpenAICompatEngine()
    engine.load(server.url, model=load.pop("model", server.models[0]), api=api,
                api_key=key, **load)  # fmt: skip
    events: list[dict[str, Any]] = []
    stats = engine.generate({"id": "t1", "messages": QUESTION}, GenerationControl(),
                            events.append, lambda *parts: None)  # fmt: skip
    return events, stats["raw"], stats


@pytest.mark.parametrize(
    "file, api, model",
    [
        ("vllm_reasoning_content.sse", "openai", "deepseek-r1"),
        ("ollama_openai_reasoning.sse", "openai", "qwen3:8b"),
        ("ollama_chat_thinking.ndjson", "ollama", "deepseek-r1:8b"),
        ("plain_think_in_content.sse", "openai", "qwq-32b"),
    ],
)
def test_every_reasoning_shape_ends_up_in_the_thinking_panel(replay, file, api, model):
    replay.file, replay.models = DATA / file, [model]
    with EngineClient(load_timeout_s=30) as client:
        client.load(replay.url, engine="openai", model=model, api=api)
        events = list(client.chat(QUESTION))
    thinking = "".join(e.thinking for e in events if isinstance(e, TextDelta))
    answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
    assert thinking == THINK
    assert answer == ANSWER
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "eos"
    assert not done.ended_in_thinking and done.thinking_tokens >= 10
    body = replay.requests[-1]
    assert body["stream"] is True and body["model"] == model
    if api == "ollama":
        assert body["think"] is True and "num_predict" not in body["options"]


def test_usage_from_the_server_is_used_for_the_token_counts(replay):
    _, _, stats = run_engine(replay)
    assert stats["completion_tokens"] == 18 and stats["prompt_tokens"] == 17
    assert replay.requests[-1]["stream_options"] == {"include_usage": True}


def test_earlier_reasoning_is_not_sent_back(replay):
    engine = OpenAICompatEngine()
    engine.load(replay.url, model="deepseek-r1")
    history = [*QUESTION, {"role": "assistant", "content": "<think>hmm</think>\n\n9.8"},
               {"role": "user", "content": "Why?"}]  # fmt: skip
    engine.generate({"id": "t", "messages": history}, GenerationControl(), lambda e: None,
                    lambda *parts: None)  # fmt: skip
    assert replay.requests[-1]["messages"][1] == {"role": "assistant", "content": "9.8"}


def test_a_wrong_key_is_a_401_in_words_and_the_key_never_shows(replay):
    replay.need_key = True
    with pytest.raises(EngineFailure) as err:
        run_engine(replay, key="sk-wrong-key-999")
    assert err.value.kind == "bad_model" and "refused the API key (401" in err.value.message
    assert "sk-wrong" not in err.value.message + err.value.detail
    events, text, _ = run_engine(replay, key=KEY)  # the right key works
    assert ANSWER.split()[0] in text
    assert list_models(replay.url, KEY) == ["deepseek-r1"]
    report = test_connection(replay.url, None)
    assert not report.ok and "API key" in report.message


def test_an_unknown_model_lists_what_the_server_has(replay):
    replay.models = ["deepseek-r1", "qwq-32b"]
    with pytest.raises(EngineFailure) as err:
        run_engine(replay, model="deepseek-r2")
    assert "no model called 'deepseek-r2'" in err.value.message
    assert "deepseek-r1, qwq-32b" in err.value.message


def test_429_says_to_wait(replay):
    replay.mode = "429"
    with pytest.raises(EngineFailure) as err:
        run_engine(replay)
    assert err.value.kind == "bad_request"
    assert "429" in err.value.message and "Wait 7 s" in err.value.message


def test_500_carries_the_servers_reason(replay):
    replay.mode = "500"
    with EngineClient(load_timeout_s=30) as client:
        client.load(replay.url, engine="openai", model="deepseek-r1")
        events = list(client.chat(QUESTION))
        assert isinstance(events[-1], StreamError)
        assert events[-1].kind == "internal"
        assert "(500)" in events[-1].message and "illegal memory access" in events[-1].message
        replay.mode = "ok"  # the engine stays usable
        assert isinstance(list(client.chat(QUESTION))[-1], StreamDone)


def test_an_error_event_mid_stream_stops_the_answer_in_words(replay):
    replay.mode = "error_event"
    with pytest.raises(EngineFailure) as err:
        run_engine(replay)
    assert "engine overloaded" in err.value.message


def test_a_dropped_connection_mid_stream_is_reported(replay):
    replay.mode = "drop"
    with pytest.raises(EngineFailure) as err:
        run_engine(replay)
    assert err.value.kind == "internal" and "lost in the middle" in err.value.message


def test_test_connection_lists_models_and_explains_a_bad_address(replay):
    report = test_connection(replay.url + "/v1")
    assert report.ok and report.models == ("deepseek-r1",) and "deepseek-r1" in report.message
    bad = test_connection(replay.url + "/nothing/here")
    assert not bad.ok and "404" in bad.message
    with pytest.raises(EngineError) as err, EngineClient(load_timeout_s=30) as client:
        client.load("ftp://example.com", engine="openai", model="x")
    assert err.value.kind == "bad_request" and "not a server address" in err.value.message


# -- reasoning formats and the endings that used to be silent (issue 16) ----------------------
def chat_events(replay: ReplayServer, file: str, model: str, **load: Any) -> list:
    replay.file, replay.models = DATA / file, [model]
    with EngineClient(load_timeout_s=30) as client:
        client.load(replay.url, engine="openai", model=model, **load)
        return list(client.chat(QUESTION))


def panes(events: list) -> tuple[str, str]:
    deltas = [e for e in events if isinstance(e, TextDelta)]
    return "".join(d.thinking for d in deltas), "".join(d.answer for d in deltas)


@pytest.mark.parametrize(
    "fmt, thinking, answer",
    [
        ("auto", "Two plus two makes four.", "The answer is 4."),
        ("tags", "Two plus two makes four.", "The answer is 4."),
        ("none", "", "Two plus two makes four.</think>\n\n The answer is 4."),
    ],
)
def test_a_model_named_reasoner_without_a_parser_gets_its_thinking_split(replay, fmt, thinking,
                                                                          answer):  # fmt: skip
    # recorded from llama-cpp-python's server (no reasoning parser, model alias "reasoner")
    events = chat_events(replay, "llama_cpp_server_reasoner.sse", "reasoner",
                         reasoning_format=fmt)  # fmt: skip
    assert panes(events) == (thinking, answer)
    assert isinstance(events[-1], StreamDone) and not events[-1].ended_in_thinking


def test_tags_inside_a_code_fence_of_the_answer_stay_in_the_answer(replay):
    events = chat_events(replay, "tags_in_code_fence.sse", "qwq-32b")
    assert panes(events) == (
        "Show the tag. Use a fence.",
        "```html\n<think>x</think>\n```\nA [THINK] stays.",
    )


def test_reasoning_from_its_field_and_tags_in_the_answer_are_never_rescanned(replay):
    events = chat_events(replay, "field_then_literal_tags.sse", "deepseek-r1")
    assert panes(events) == ("Reason with a </think> inside.", "Write <think></think> literally.")


@pytest.mark.parametrize(
    "file, words",
    [
        ("empty_done_only.sse", "ended the answer without sending any text (only [DONE])"),
        ("vllm_finish_abort.sse", "aborted the answer (finish reason \u201cabort\u201d)"),
        ("reasoning_only_stop.sse", "The model ended its thinking without writing an answer "
                                    "(finish reason \u201cstop\u201d). The thinking is kept"),
        ("length_in_thinking.sse", "The server's own length limit ended the answer while the "
                                   "model was still thinking"),
    ],
)  # fmt: skip
def test_every_silent_ending_is_explained(replay, file, words):
    events = chat_events(replay, file, "deepseek-r1")
    error = events[-1]
    assert isinstance(error, StreamError), error
    assert words in error.message
    if file != "empty_done_only.sse":  # what arrived is still shown
        assert panes(events)[0].startswith("Okay, so")


def test_length_inside_the_thinking_at_the_users_own_limit_stays_a_length_stop(replay):
    replay.file = DATA / "length_in_thinking.sse"
    with EngineClient(load_timeout_s=30) as client:
        client.load(replay.url, engine="openai", model="deepseek-r1")
        events = list(client.chat(QUESTION, max_tokens=3))
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "length"
    assert done.ended_in_thinking  # the window says "Ended while thinking (the length limit…)"


@pytest.mark.parametrize("file", ["llama_server_error_field.sse", "sglang_error_chunk.sse"])
def test_a_context_overflow_inside_an_http_200_stream_is_a_context_overflow(replay, file):
    events = chat_events(replay, file, "deepseek-r1")
    error = events[-1]
    assert isinstance(error, StreamError) and error.kind == "context_overflow"
    assert error.message.startswith(
        "The conversation is too long for the server's context: start a new chat or drop old turns."
    )
