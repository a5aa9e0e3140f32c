"""Server errors in the app's words (issue 16) and addresses without secrets (issue 20):
each server's context-overflow body, vLLM's max_tokens refusal, Ollama without thinking,
a server with no /v1/models, proxies from the environment, "host:port" addresses, and
`user:password@` addresses refused before anything is saved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core import remote
from backends.base import EngineFailure, GenerationControl
from backends.openai_compat import OpenAICompatEngine
from backends.remote_http import test_connection
from remote_wire import DONE, Reply, Request, WireServer, models_reply, sse

BODIES = json.loads((Path(__file__).parent / "data" / "sse" / "error_bodies.json").read_text())
QUESTION = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture
def server() -> Iterator[WireServer]:
    s = WireServer(["m"])
    yield s
    s.close()


def answer(url: str, model: str = "m", **load: Any) -> tuple[str, dict[str, Any]]:
    engine = OpenAICompatEngine()
    engine.load(url, model=model, **load)
    parts: list[str] = []
    stats = engine.generate({"id": "t", "messages": QUESTION}, GenerationControl(),
                            lambda e: None, lambda t, a, *_: parts.append(a))  # fmt: skip
    return "".join(parts), stats


def refused(server: WireServer, name: str) -> EngineFailure:
    case = BODIES[name]
    server.chat = Reply(case["status"], [json.dumps(case["body"]).encode()], "length",
                        "application/json")  # fmt: skip
    with pytest.raises(EngineFailure) as err:
        answer(server.url)
    return err.value


@pytest.mark.parametrize(
    "name", ["vllm_context_overflow", "sglang_context_overflow", "llama_server_context_overflow"]
)
def test_a_context_overflow_in_every_servers_shape_says_start_a_new_chat(server, name):
    err = refused(server, name)
    assert err.kind == "context_overflow"
    assert err.message.startswith(
        "The conversation is too long for the server's context: start a new chat or drop old "
        "turns. The server said:"
    )


def test_max_tokens_too_large_says_lower_the_answer_length_limit(server):
    err = refused(server, "vllm_max_tokens_too_large")
    assert err.kind == "bad_request"
    assert err.message.startswith(
        "The answer length limit is more than the server's context leaves room for: lower the "
        "answer length limit in Settings"
    )
    assert "start a new chat" not in err.message


def test_ollama_native_asks_without_think_when_the_model_has_no_thinking(server):
    case = BODIES["ollama_no_thinking"]

    def handler(req: Request) -> Reply:
        if req.target == "/api/tags":
            body = json.dumps({"models": [{"name": "gemma3:1b"}]}).encode()
            return Reply(200, [body], "length", "application/json")
        if "think" in req.body:
            return Reply(400, [json.dumps(case["body"]).encode()], "length", "application/json")
        line = {"model": "gemma3:1b", "message": {"role": "assistant", "content": "Four."},
                "done": True, "done_reason": "stop", "eval_count": 2}  # fmt: skip
        return Reply(200, [json.dumps(line).encode() + b"\n"], "chunked", "application/x-ndjson")

    server.handler = handler
    engine = OpenAICompatEngine()
    engine.load(server.url, model="gemma3:1b", api="ollama")
    parts: list[str] = []
    for _ in range(2):  # the second answer asks without think at once
        engine.generate({"id": "t", "messages": QUESTION}, GenerationControl(), lambda e: None,
                        lambda t, a, *_: parts.append(a))  # fmt: skip
    assert "".join(parts) == "Four.Four."
    chats = [r.body for r in server.requests if r.method == "POST"]
    assert [("think" in b) for b in chats] == [True, False, False]


def test_a_server_without_v1_models_works_with_a_typed_model_name(server):
    def handler(req: Request) -> Reply:
        if req.method == "GET":
            return Reply(404, [b"404 page not found"], "length", "text/plain")
        return Reply(200, [sse({"content": "Four."}), sse(finish="stop"), DONE])

    server.handler = handler
    text, _ = answer(server.url + "/v1", model="typed-by-hand")
    assert text == "Four."
    report = test_connection(server.url + "/v1")
    assert not report.ok
    assert "A server that does not list its models still works: type the model's name." in (
        report.message
    )


def test_host_and_port_without_a_scheme_is_http_and_proxies_come_from_the_environment(
    server, monkeypatch
):
    def handler(req: Request) -> Reply:  # the proxy answers for gpu-box
        if req.method == "GET":
            return models_reply(["m"])
        return Reply(200, [sse({"content": "Via the proxy."}), sse(finish="stop"), DONE])

    server.handler = handler
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    text, _ = answer("gpu-box:8000")
    assert text == "Via the proxy."
    assert [r.target for r in server.requests] == [
        "http://gpu-box:8000/v1/models",
        "http://gpu-box:8000/v1/chat/completions",
    ]
    # the engine process does not inherit HTTP_PROXY: the saved entry passes it along
    entry = remote.RemoteModel("gpu-box:8000", "m")
    assert entry.load_options(None)["proxies"]["http"] == server.url
    assert remote.normalize_url("gpu-box:8000") == "http://gpu-box:8000"


def test_no_proxy_reaches_the_server_directly(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    text, _ = answer(server.url)
    assert text == "Hi."


def test_a_user_and_password_in_the_address_is_refused_and_never_saved(tmp_path):
    path = tmp_path / "remote_models.json"
    url = "http://alice:hunter2-secret@gpu-box:8000/v1"
    with pytest.raises(ValueError) as err:
        remote.save_remote(remote.RemoteModel(url, "m"), list_path=path)
    assert str(err.value).startswith("Leave the user name and password out of the server address")
    assert not path.exists()
    with pytest.raises(EngineFailure) as engine_err:
        OpenAICompatEngine().load(url, model="m")
    assert "Leave the user name and password out" in engine_err.value.message
    assert "hunter2" not in engine_err.value.message
    # a file written by an older Ponder loses the password the first time it is read
    path.write_text(json.dumps([{"base_url": url, "model": "m"}]))
    assert [e.base_url for e in remote.saved_remotes(path)] == ["http://gpu-box:8000/v1"]
    assert "hunter2" not in path.read_text()


def test_the_reasoning_format_is_saved_with_the_server_entry(tmp_path):
    path = tmp_path / "remote_models.json"
    remote.save_remote(remote.RemoteModel("gpu-box:8000", "reasoner", reasoning_format="tags"),
                       list_path=path)  # fmt: skip
    (entry,) = remote.saved_remotes(path)
    assert entry.reasoning_format == "tags" and entry.base_url == "http://gpu-box:8000"
    assert entry.load_options(None)["reasoning_format"] == "tags"
    assert set(remote.REASONING_FORMATS) == {"auto", "field", "tags", "none"}
