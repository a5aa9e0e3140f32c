"""The server and the engine it shares, in this process so the engine can be watched: a client
that disconnects mid-stream stops the engine within 100 ms; a request for another model waits
for the current answer, then switches; the window's answer makes a request wait; a model too
large for this machine and a conversation longer than the context are errors in words.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine import EngineClient
from app.core.engine_share import WINDOW, EngineShare
from app.serve.catalog import ModelCatalog, ServedModel, looks_like_path, unique_ids
from app.serve.http import LocalServer, ServeConfig
from app.serve.runner import LoadPlan, ServeRunner, ServeStatus
from app.serve.stops import StopCutter
from scripted import ANSWER_TEXT

pytest.importorskip("uvicorn")

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
TOO_BIG = "Needs about 1,300 GB of memory: more than this computer has"


class InProcess:
    """A LocalServer on port 0 over an engine client the test can look at."""

    def __init__(self, models: list[Path]) -> None:
        self.engine = EngineClient(load_timeout_s=120)
        self.share = EngineShare()
        self.statuses: list[ServeStatus] = []
        catalog = ModelCatalog(models, discover=None)
        self.runner = ServeRunner(self.engine, catalog, self.share, self.plan,
                                  self.statuses.append)  # fmt: skip
        self.server = LocalServer(self.runner, ServeConfig("127.0.0.1", 0))
        self.server.start()
        self.netloc = f"127.0.0.1:{self.server.port}"

    @staticmethod
    def plan(model: ServedModel) -> LoadPlan:
        if model.id == "r1-plain":
            return LoadPlan({}, f"{model.id} is too large for this computer: {TOO_BIG}.")
        return LoadPlan({"n_ctx": 4096 if model.id == "r1-never-closes" else 256})

    def post(self, body: dict, timeout_s: float = 30.0) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(self.netloc, timeout=timeout_s)
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Content-Type": "application/json"})  # fmt: skip
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    def open_stream(self, model: str) -> socket.socket:
        """Start a streaming answer and read until the model is writing; the raw socket."""
        body = json.dumps({"model": model, "messages": QUESTION, "stream": True}).encode()
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        seen = b""
        while b"reasoning_content" not in seen:
            data = sock.recv(65536)
            assert data, "the stream ended before the model wrote"
            seen += data
        assert seen.startswith(b"HTTP/1.1 200")
        return sock

    def close(self) -> None:
        self.server.stop()
        self.engine.close()


@pytest.fixture(scope="module")
def served(scripted_models) -> Iterator[InProcess]:
    srv = InProcess([scripted_models.preopen, scripted_models.never_closes, scripted_models.plain])
    try:
        yield srv
    finally:
        srv.close()


def wait_until(condition, timeout_s: float, step_s: float = 0.001) -> float:
    """Seconds until `condition()` was true; fails after `timeout_s`."""
    t0 = time.perf_counter()
    while not condition():
        assert time.perf_counter() - t0 < timeout_s, "condition not met in time"
        time.sleep(step_s)
    return time.perf_counter() - t0


def test_disconnect_mid_stream_stops_the_engine_within_100_ms(served):
    sock = served.open_stream("r1-never-closes")
    assert served.engine.active is not None
    sock.close()
    took = wait_until(lambda: served.engine.active is None, timeout_s=5.0)
    assert took < 0.1, f"the engine stopped {took * 1000:.0f} ms after the disconnect"
    assert served.engine.ping(5.0)["busy"] is False
    wait_until(lambda: served.share.holder is None, timeout_s=2.0)


def test_a_request_for_another_model_waits_for_the_answer_then_switches(served):
    sock = served.open_stream("r1-never-closes")
    result: list = []
    other = threading.Thread(target=lambda: result.append(
        served.post({"model": "r1-preopen", "messages": QUESTION})))  # fmt: skip
    other.start()
    time.sleep(0.3)
    waited = not result
    assert served.engine.active is not None, "the first answer ended on its own: no test"
    assert waited, "the second request did not wait for the streaming answer"
    sock.close()
    other.join(30)
    status, body = result[0]
    assert status == 200, body
    assert body["choices"][0]["message"]["content"].strip() == ANSWER_TEXT
    assert served.runner.status.model == "r1-preopen"
    assert served.statuses[-1].answering is False


def test_the_window_answering_makes_a_request_wait(served):
    assert served.share.acquire(WINDOW, timeout_s=5.0)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(
        served.post({"model": "r1-preopen", "messages": QUESTION})))  # fmt: skip
    worker.start()
    time.sleep(0.4)
    assert not result
    served.share.release(WINDOW)
    worker.join(30)
    assert result and result[0][0] == 200


def test_a_model_too_large_is_refused_with_the_planners_reason(served):
    status, body = served.post({"model": "r1-plain", "messages": QUESTION})
    assert status == 400
    assert body["error"]["code"] == "model_too_large"
    assert TOO_BIG in body["error"]["message"]


def test_a_conversation_longer_than_the_context_is_400_in_words(served):
    long = [{"role": "user", "content": "two plus two " * 200}]
    status, body = served.post({"model": "r1-preopen", "messages": long})
    assert status == 400, body
    assert body["error"]["code"] == "context_length_exceeded"
    assert "256-token context" in body["error"]["message"]


def test_bad_parameters_are_400_naming_the_parameter(served):
    for field, value in (("temperature", 5), ("n", 2), ("stop", ["a"] * 5), ("seed", "x")):
        status, body = served.post({"model": "r1-preopen", "messages": QUESTION, field: value})
        assert status == 400 and body["error"]["param"] == field, (field, body)


# -- pieces ---------------------------------------------------------------------------------
def test_stop_strings_split_across_pieces_are_cut():
    cutter = StopCutter(["</answer>"])
    assert cutter.feed("The answer is 4.</ans") == ("The answer is 4.", False)
    assert cutter.feed("wer> and more") == ("", True)
    plain = StopCutter(["END"])
    assert plain.feed("a bit of E") == ("a bit of ", False)
    assert plain.feed("ndless") == ("Endless", False)


def test_ids_are_unique_and_paths_are_not_ids(tmp_path):
    a = ServedModel("Model-Q4_K_M", str(tmp_path / "a.gguf"), "Model", "hf-cache", origin="o/a")
    b = ServedModel("Model-Q4_K_M", str(tmp_path / "b.gguf"), "Model", "lmstudio", origin="o/b")
    assert [m.id for m in unique_ids([a, b])] == ["Model-Q4_K_M", "o/b/Model-Q4_K_M"]
    assert looks_like_path("/home/me/x.gguf") and looks_like_path("..\\x")
    assert not looks_like_path("deepseek-r1:7b") and not looks_like_path("o/b/Model-Q4_K_M")
