"""`ponder-cli serve` with real clients: the official `openai` package (streaming and not) and
Ponder's own remote engine (Ponder → Ponder), on scripted models, on 127.0.0.1 only.

The server runs as a subprocess with a scratch home, HF cache and config folder: it serves the
`--model` files and what it finds installed there (one scripted model in the scratch HF cache).
Its numbers are compared with the same model answered through the engine client directly.
"""

from __future__ import annotations

import http.client
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.core.engine import EngineClient, StreamDone, StreamError, TextDelta
from app.serve.http import ServeConfig
from app.serve.openai_api import without_reasoning
from scripted import ANSWER_TEXT, THINK_TEXT

openai = pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-serve-0123456789abcdef"
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
HUB_MODEL = "r1-plain-Q8_0"  # the scripted model found in the scratch HF cache


class CliServer:
    """`python -m app.cli serve` on port 0; the base URL is read from what it prints."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", "0", *args], cwd=ROOT,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.base_url = self._wait_for_url(timeout_s=60.0)

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.output.append(line)
            self.lines.put(line)

    def _wait_for_url(self, timeout_s: float) -> str:
        try:
            while True:
                line = self.lines.get(timeout=timeout_s)
                if line.startswith("Base URL: "):
                    return line.split(": ", 1)[1].strip()
        except queue.Empty:
            self.stop()
            raise RuntimeError("ponder-cli serve did not start:\n" + "".join(self.output)) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def scratch_env(home: Path, plain_model: Path) -> dict[str, str]:
    """An environment whose installed models are one scripted GGUF in a scratch HF cache."""
    snapshot = home / "hub" / "models--test--scripted-GGUF" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / f"{HUB_MODEL}.gguf").symlink_to(plain_model)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OLLAMA"))}
    env.update(HOME=str(home), HF_HUB_CACHE=str(home / "hub"), OLLAMA_MODELS=str(home / "ol"),
               PONDER_CONFIG_DIR=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               PONDER_LOG_DIR=str(home / "logs"))  # fmt: skip
    return env


@pytest.fixture(scope="module")
def server(scripted_models, tmp_path_factory) -> Iterator[CliServer]:
    home = tmp_path_factory.mktemp("serve-home")
    models = ["--model", str(scripted_models.preopen), "--model", str(scripted_models.never_closes)]
    srv = CliServer([*models, "--api-key", KEY], scratch_env(home, scripted_models.plain))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def direct(scripted_models) -> StreamDone:
    """The same question through the engine client directly: the exact counts to match."""
    with EngineClient(load_timeout_s=120) as client:
        client.load(str(scripted_models.preopen), n_ctx=2048)
        events = list(iter_events(client.chat(QUESTION, seed=1)))
    done = events[-1]
    assert isinstance(done, StreamDone), done
    return done


def iter_events(gen) -> Iterator:
    while not gen.finished:
        event = gen.next_event(30.0)
        assert event is not None, "no event within 30 s"
        yield event


def client(server: CliServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, timeout=60, max_retries=0)


def extra(obj, name: str):
    return (obj.model_extra or {}).get(name)


# -- the openai package -----------------------------------------------------------------------
def test_models_lists_installed_and_added_models_with_ids_a_user_can_type(server):
    ids = [m.id for m in client(server).models.list().data]
    assert ids[:2] == ["r1-preopen", "r1-never-closes"]
    assert HUB_MODEL in ids  # found in the HF cache, as the model manager finds it
    assert all("/" not in i and not i.endswith(".gguf") for i in ids)


def test_openai_streaming_thinking_as_reasoning_content_answer_as_content(server, direct):
    stream = client(server).chat.completions.create(
        model="r1-preopen", messages=QUESTION, stream=True, seed=1,
        stream_options={"include_usage": True},
    )  # fmt: skip
    reasoning, content, also, finish, usage = [], [], [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            reasoning.append(extra(choice.delta, "reasoning_content") or "")
            also.append(extra(choice.delta, "reasoning") or "")
            content.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(reasoning).strip() == THINK_TEXT
    assert "".join(also) == "".join(reasoning)
    assert "".join(content).strip() == ANSWER_TEXT
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens == direct.completion_tokens
    assert usage.prompt_tokens == direct.prompt_tokens
    assert usage.total_tokens == direct.completion_tokens + direct.prompt_tokens
    assert usage.completion_tokens_details.reasoning_tokens == direct.thinking_tokens


def test_openai_not_streaming_same_answer_and_exact_usage(server, direct):
    reply = client(server).chat.completions.create(model="r1-preopen", messages=QUESTION, seed=1)
    message = reply.choices[0].message
    assert message.content.strip() == ANSWER_TEXT
    assert extra(message, "reasoning_content").strip() == THINK_TEXT
    assert extra(message, "reasoning") == extra(message, "reasoning_content")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == direct.completion_tokens
    assert reply.usage.prompt_tokens == direct.prompt_tokens


def test_installed_model_from_the_hf_cache_answers(server):
    reply = client(server).chat.completions.create(model=HUB_MODEL, messages=QUESTION)
    assert reply.choices[0].message.content.strip() == ANSWER_TEXT
    assert reply.model == HUB_MODEL


def test_max_tokens_and_stop_and_thinking_budget(server):
    c = client(server)
    short = c.chat.completions.create(model="r1-never-closes", messages=QUESTION, max_tokens=7)
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 7
    cut = c.chat.completions.create(model="r1-preopen", messages=QUESTION, stop=["answer"])
    assert cut.choices[0].message.content.strip() == "The"
    assert cut.choices[0].finish_reason == "stop"
    budget = c.chat.completions.create(model="r1-preopen", messages=QUESTION,
                                       extra_body={"thinking_budget": 2})  # fmt: skip
    reasoning = extra(budget.choices[0].message, "reasoning_content")
    assert len(reasoning.split()) <= 3 < len(THINK_TEXT.split())
    assert budget.usage.completion_tokens_details.reasoning_tokens <= 3
    assert budget.choices[0].message.content.strip() == ANSWER_TEXT


def test_unknown_model_is_404_listing_the_installed_ones(server):
    with pytest.raises(openai.NotFoundError) as err:
        client(server).chat.completions.create(model="gpt-4o", messages=QUESTION)
    message = err.value.body["message"]
    assert "no model called 'gpt-4o'" in message
    assert "r1-preopen" in message and HUB_MODEL in message
    assert err.value.body["code"] == "model_not_found"


def test_wrong_or_missing_key_is_401(server):
    for key in ("sk-wrong", ""):
        with pytest.raises(openai.AuthenticationError):
            client(server, key or "none").models.list()
    conn = http.client.HTTPConnection(urlsplit(server.base_url).netloc, timeout=10)
    conn.request("GET", "/v1/models")
    assert conn.getresponse().status == 401


def test_a_model_named_by_file_path_is_refused(server, scripted_models):
    for name in (str(scripted_models.preopen), "../r1-preopen.gguf", "~/models/x.gguf",
                 "C:\\models\\x.gguf", "r1-preopen.gguf"):  # fmt: skip
        with pytest.raises(openai.BadRequestError) as err:
            client(server).chat.completions.create(model=name, messages=QUESTION)
        assert err.value.body["code"] == "model_path_refused", name


def test_requests_for_another_host_or_from_a_web_page_are_refused(server):
    netloc = urlsplit(server.base_url).netloc
    auth = {"Authorization": f"Bearer {KEY}"}
    for headers in ({"Host": "evil.example:80"}, {"Origin": "https://evil.example"}):
        conn = http.client.HTTPConnection(netloc, timeout=10)
        conn.request("GET", "/v1/models", headers={**auth, **headers})
        assert conn.getresponse().status == 403, headers


def test_binding_to_another_address_without_a_key_is_refused():
    with pytest.raises(ValueError, match="API key"):
        ServeConfig("0.0.0.0", 0, None).check()
    ServeConfig("0.0.0.0", 0, "sk-some-key").check()
    ServeConfig("127.0.0.1", 0, None).check()


# -- Ponder → Ponder ------------------------------------------------------------------------
def test_ponder_remote_engine_round_trip(server, direct):
    with EngineClient(load_timeout_s=60) as remote:
        info = remote.load(server.base_url, engine="openai", model="r1-preopen", api_key=KEY)
        assert info["model"] == "r1-preopen"
        assert "r1-never-closes" in info["server_models"]
        events = list(iter_events(remote.chat(QUESTION, seed=1)))
    errors = [e for e in events if isinstance(e, StreamError)]
    assert not errors, errors
    thinking = "".join(e.thinking for e in events if isinstance(e, TextDelta))
    answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
    assert thinking.strip() == THINK_TEXT
    assert answer.strip() == ANSWER_TEXT
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "eos"
    assert done.completion_tokens == direct.completion_tokens  # the server's exact usage
    assert done.prompt_tokens == direct.prompt_tokens


def test_earlier_reasoning_is_not_sent_back():
    assert without_reasoning("<think>\nhmm\n</think>\n\nThe answer.") == "The answer."
    assert without_reasoning("Plain answer.") == "Plain answer."
