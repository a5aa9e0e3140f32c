"""Qwen3's no-thinking mode (#17), end to end: the real Qwen3 chat template's switch
(`enable_thinking`), the engines rendering with it off (llama.cpp and mlx-lm on scripted
models that carry that template), the answer arriving with no thinking at all, and the remote
engine asking servers for it their way."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.engine import StreamDone, StreamStarted, TextDelta
from backends.base import GenerationControl
from backends.chat_template import ChatTemplate, has_thinking_switch
from backends.openai_compat import OpenAICompatEngine
from backends.think_tags import ThinkSplitter, prompt_opens_thinking
from remote_wire import DONE, Reply, Request, WireServer, sse
from scripted import (
    ANSWER_TEXT,
    QWEN3_TEMPLATE,
    TEMPLATE_PLAIN,
    TEMPLATE_PREOPEN,
    THINK_TEXT,
    write_scripted_gguf,
)

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
EMPTY_BLOCK = "<think>\n\n</think>\n\n"


# -- the template -------------------------------------------------------------------------
def test_the_real_qwen3_template_ends_with_an_empty_think_block_when_thinking_is_off():
    t = ChatTemplate(QWEN3_TEMPLATE)
    assert t.thinking_switch
    on, default = t.render(QUESTION, enable_thinking=True), t.render(QUESTION)
    off = t.render(QUESTION, enable_thinking=False)
    assert on == default == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert off == default + EMPTY_BLOCK
    # the prompt does not end inside a think block: the output starts as the answer
    assert prompt_opens_thinking(off) is None and prompt_opens_thinking(on) is None
    # an earlier turn's thinking is dropped by the template, with the switch off too
    turns = [*QUESTION, {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nFour."},
             {"role": "user", "content": "And 3+3?"}]  # fmt: skip
    again = t.render(turns, enable_thinking=False)
    assert "hmm" not in again and again.endswith("And 3+3?<|im_end|>\n<|im_start|>assistant\n"
                                                 + EMPTY_BLOCK)  # fmt: skip


def test_templates_without_the_switch_ignore_it():
    for source in (TEMPLATE_PREOPEN, TEMPLATE_PLAIN, None):
        t = ChatTemplate(source)
        assert not t.thinking_switch and not has_thinking_switch(source)
        assert t.render(QUESTION, enable_thinking=False) == t.render(QUESTION)


def test_an_answer_after_the_empty_block_is_all_answer():
    splitter = ThinkSplitter(prompt_opens_thinking("<|im_start|>assistant\n" + EMPTY_BLOCK)
                             is not None)  # fmt: skip
    split = splitter.feed("The answer", 2) + splitter.feed(" is 4.", 2) + splitter.finish()
    assert (split.thinking, split.answer) == ("", "The answer is 4.")
    assert (splitter.thinking_tokens, splitter.answer_tokens) == (0, 4)
    assert not splitter.in_thinking  # never "ended while thinking"


# -- the engines ----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["llama_cpp", "mlx"])
def backend(request, tmp_path_factory):
    """A scripted model with Qwen3's real template, and one with an R1 template (no switch)."""
    folder = tmp_path_factory.mktemp(f"switch-{request.param}")
    if request.param == "mlx":
        pytest.importorskip("mlx_lm")
        from scripted_mlx import write_scripted_mlx

        qwen3 = write_scripted_mlx(folder / "qwen3", "qwen3", QWEN3_TEMPLATE)
        r1 = write_scripted_mlx(folder / "r1", "answer", TEMPLATE_PREOPEN)
    else:
        pytest.importorskip("llama_cpp")
        qwen3 = write_scripted_gguf(folder / "qwen3.gguf", "qwen3", QWEN3_TEMPLATE)
        r1 = write_scripted_gguf(folder / "r1.gguf", "answer", TEMPLATE_PREOPEN)
    return SimpleNamespace(name=request.param, qwen3=qwen3, r1=r1)


@pytest.fixture(scope="module")
def client(backend):
    from app.core.engine import EngineClient

    c = EngineClient(load_timeout_s=120)
    yield c
    c.close()


def collect(gen) -> tuple[StreamStarted, str, str, StreamDone]:
    events = list(gen)
    started, done = events[0], events[-1]
    assert isinstance(started, StreamStarted) and isinstance(done, StreamDone), events
    thinking = "".join(e.thinking for e in events if isinstance(e, TextDelta))
    answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
    return started, thinking, answer, done


def test_a_qwen3_model_answers_without_thinking_when_asked_and_thinks_otherwise(client, backend):
    info = client.load(str(backend.qwen3), engine=backend.name, n_ctx=1024)
    assert info["thinking_switch"] is True

    started, thinking, answer, done = collect(client.chat(QUESTION, thinking=False))
    assert started.thinking_open is False
    assert thinking == "" and answer.strip() == ANSWER_TEXT
    assert done.thinking_tokens == 0 and done.answer_tokens >= 4 and not done.ended_in_thinking
    assert done.extra["thinking_off"] is True and "<think>" not in done.raw
    off_prompt = done.prompt_tokens

    started, thinking, answer, done = collect(client.chat(QUESTION))
    assert started.thinking_open is False  # Qwen3 opens <think> itself
    assert (thinking.strip(), answer.strip()) == (THINK_TEXT, ANSWER_TEXT)
    assert done.thinking_tokens >= 5 and done.extra["thinking_off"] is False
    # the prompt with the switch off is the same plus the empty block:
    # <think>, "\n\n", </think>, "\n\n"
    assert off_prompt == done.prompt_tokens + 4


def test_a_model_without_the_switch_thinks_even_when_asked_not_to(client, backend):
    info = client.load(str(backend.r1), engine=backend.name, n_ctx=1024)
    assert info["thinking_switch"] is False
    started, thinking, answer, done = collect(client.chat(QUESTION, thinking=False))
    assert started.thinking_open is True
    assert (thinking.strip(), answer.strip()) == (THINK_TEXT, ANSWER_TEXT)
    assert done.extra["thinking_off"] is False


def test_thinking_must_be_true_or_false():
    from backends.base import EngineFailure
    from backends.generation import parse_request

    with pytest.raises(EngineFailure) as err:
        parse_request({"id": "x", "messages": QUESTION, "params": {"thinking": "no"}})
    assert err.value.kind == "bad_request"
    assert parse_request({"id": "x", "messages": QUESTION}).thinking is True


# -- servers --------------------------------------------------------------------------------
@pytest.fixture
def server():
    s = WireServer(["qwen3:8b"])
    yield s
    s.close()


def ask(engine: OpenAICompatEngine, thinking: bool) -> str:
    parts: list[str] = []
    cmd = {"id": "t", "messages": QUESTION, "params": {"thinking": thinking}}
    engine.generate(cmd, GenerationControl(), lambda e: None, lambda t, a, *_: parts.append(a))
    return "".join(parts)


def test_servers_are_asked_for_no_thinking_through_the_chat_template(server):
    server.chat = Reply(200, [sse({"content": "Four."}), sse(finish="stop"), DONE])
    engine = OpenAICompatEngine()
    info = engine.load(server.url + "/v1", model="qwen3:8b")
    assert info["thinking_switch"] is None  # the server's template is not seen from here
    assert ask(engine, False) == "Four." and ask(engine, True) == "Four."
    off, on = [r.body for r in server.requests if r.method == "POST"]
    assert off["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in on


def test_ollama_is_asked_with_think_false(server):
    def handler(req: Request) -> Reply:
        if req.target == "/api/tags":
            body = json.dumps({"models": [{"name": "qwen3:8b"}]}).encode()
            return Reply(200, [body], "length", "application/json")
        line = {"model": "qwen3:8b", "message": {"role": "assistant", "content": "Four."},
                "done": True, "done_reason": "stop", "eval_count": 2}  # fmt: skip
        return Reply(200, [json.dumps(line).encode() + b"\n"], "chunked", "application/x-ndjson")

    server.handler = handler
    engine = OpenAICompatEngine()
    engine.load(server.url, model="qwen3:8b", api="ollama")
    assert ask(engine, False) == "Four." and ask(engine, True) == "Four."
    off, on = [r.body for r in server.requests if r.method == "POST"]
    assert off["think"] is False and on["think"] is True


def test_the_template_test_data_says_where_it_comes_from():
    readme = (Path(__file__).parent / "data" / "templates" / "README.md").read_text()
    assert "huggingface.co/Qwen/Qwen3-0.6B" in readme and "Qwen3-0.6B.jinja" in readme


def test_ponders_own_server_takes_enable_thinking_false_as_vllm_does():
    from app.serve.openai_api import parse_chat

    body = {"model": "Qwen3-8B", "messages": QUESTION}
    assert "thinking" not in parse_chat(body).params
    off = parse_chat({**body, "chat_template_kwargs": {"enable_thinking": False}})
    assert off.params["thinking"] is False
    on = parse_chat({**body, "chat_template_kwargs": {"enable_thinking": True}})
    assert "thinking" not in on.params
