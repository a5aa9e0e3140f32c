"""The token path inside the engine, on real llama.cpp: reasoning-length answers stay fast,
counts are exact on multi-byte text, Stop works during a long prompt, a thinking that fills
the context still gets an answer, BOS is there when the model asks, templates are bounded.

The engine runs in this process here (the engine process adds only the pipe, tested in
tests/test_engine_client.py); the scripted models come from tests/scripted.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from backends.base import EngineFailure, GenerationControl
from backends.chat_template import ChatTemplate, TemplateError
from backends.llama_cpp import LlamaCppEngine
from scripted import ANSWER_TEXT, TEMPLATE_PREOPEN, write_scripted_gguf

HI = [{"role": "user", "content": "hi"}]


class Recorder:
    """Collects the engine's typed parts and the time each arrived."""

    def __init__(self) -> None:
        self.thinking: list[str] = []
        self.answer: list[str] = []
        self.thinking_tokens = 0
        self.answer_tokens = 0
        self.times: list[tuple[float, int]] = []
        self.events: list[dict] = []

    def parts(self, thinking: str, answer: str, t_tokens: int, a_tokens: int) -> None:
        self.thinking.append(thinking)
        self.answer.append(answer)
        self.thinking_tokens += t_tokens
        self.answer_tokens += a_tokens
        if t_tokens + a_tokens:
            self.times.append((time.perf_counter(), t_tokens + a_tokens))


def run(engine: LlamaCppEngine, params: dict, messages=HI, control=None) -> tuple[dict, Recorder]:
    rec = Recorder()
    cmd = {"id": "t", "messages": messages, "params": params}
    stats = engine.generate(cmd, control or GenerationControl(), rec.events.append, rec.parts)
    return stats, rec


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("token-path")
    return {
        "loop": write_scripted_gguf(d / "loop.gguf", "never_closes", n_ctx_train=32768),
        "euro": write_scripted_gguf(d / "euro.gguf", "euro_loop", n_ctx_train=32768),
        "bos": write_scripted_gguf(d / "bos.gguf", "answer", None, add_bos=True),
        "bos_template": write_scripted_gguf(
            d / "bos-template.gguf", "answer", TEMPLATE_PREOPEN, add_bos=True
        ),
    }


@pytest.fixture
def engine():
    e = LlamaCppEngine()
    yield e
    e.unload()


@pytest.mark.slow
def test_ten_thousand_token_answer_runs_at_the_bare_engines_speed(engine, models):
    """The old path re-detokenized the whole answer per token: 534 -> 42 tok/s over 12K."""
    n = 10_000
    engine.load(str(models["loop"]), n_ctx=n + 64)
    stats, rec = run(engine, {"max_tokens": n, "answer_reserve": 0})
    assert stats["completion_tokens"] == n == rec.thinking_tokens
    ours = rec.times[-1][0] - rec.times[0][0]

    llm = engine.llm  # the same model, a bare Llama.generate() loop, no detokenizing
    llm.reset()
    prompt = llm.tokenize("<｜Assistant｜><think>\n".encode(), add_bos=False, special=True)
    stamps = []
    for i, _ in enumerate(llm.generate(prompt, temp=0.6, top_p=0.95)):
        stamps.append(time.perf_counter())
        if i + 1 >= n:
            break
    bare = stamps[-1] - stamps[0]
    # Quadratic work would make ours several times slower at 10K; noise here is ~±20%.
    assert ours < bare * 1.6, (ours, bare)


def test_multi_byte_characters_are_counted_token_by_token(engine, models):
    engine.load(str(models["euro"]), n_ctx=2048)
    stats, rec = run(engine, {"max_tokens": 300})
    thinking = "".join(rec.thinking)
    assert stats["completion_tokens"] == 300 == rec.thinking_tokens
    assert stats["thinking_tokens"] == 300 and stats["answer_tokens"] == 0
    assert "Hmm,€ let me check again." in thinking and "\ufffd" not in thinking
    assert stats["stop_reason"] == "length" and stats["ended_in_thinking"]


@pytest.mark.parametrize("budget", [30, 31, 29])
def test_thinking_budget_lets_exactly_n_thinking_tokens_through(engine, models, budget):
    engine.load(str(models["euro"]), n_ctx=2048)
    stats, rec = run(engine, {"thinking_budget": budget})
    assert stats["thinking_tokens"] == budget == rec.thinking_tokens
    assert stats["thinking_ended_by"] == "budget"
    assert "".join(rec.answer) == ANSWER_TEXT and stats["answer_tokens"] == 4
    assert stats["completion_tokens"] == budget + 4
    assert stats["stop_reason"] == "eos" and not stats["ended_in_thinking"]


def test_thinking_that_fills_the_context_still_gets_an_answer(engine, models):
    engine.load(str(models["loop"]), n_ctx=2048)
    stats, rec = run(engine, {})  # no max_tokens: the answer may use the rest of the context
    assert stats["thinking_ended_by"] == "context"
    assert "".join(rec.answer) == ANSWER_TEXT
    assert stats["stop_reason"] == "eos"
    # room was kept for the answer: the thinking stopped a reserve before the end
    assert stats["prompt_tokens"] + stats["thinking_tokens"] <= 2048 - 512


def test_answer_now_continues_from_the_exact_tokens(engine, models):
    engine.load(str(models["euro"]), n_ctx=2048)
    control = GenerationControl()
    seen = []

    def parts(t: str, a: str, nt: int, na: int) -> None:
        seen.append(nt)
        if sum(seen) >= 13:
            control.answer_now = True

    stats = engine.generate({"id": "a", "messages": HI, "params": {}}, control, print, parts)
    assert stats["thinking_ended_by"] == "answer_now"
    assert stats["thinking_tokens"] == 13 and stats["answer_tokens"] == 4
    assert stats["raw"].endswith("\n</think>\n\n The answer is 4.")


def test_stop_during_a_long_prompt_returns_within_half_a_second(engine, models):
    engine.load(str(models["loop"]), n_ctx=12_288)
    long_prompt = [{"role": "user", "content": "Hmm, let me check again!" * 330}]  # ~10.5K
    control = GenerationControl()
    stopped_at: list[float] = []

    def stop_soon() -> None:
        time.sleep(0.3)
        stopped_at.append(time.perf_counter())
        control.cancelled = True

    threading.Thread(target=stop_soon, daemon=True).start()
    t0 = time.perf_counter()
    stats, _ = run(engine, {"max_tokens": 1}, long_prompt, control)
    assert stats["stop_reason"] == "cancelled"
    assert stats["prompt_tokens"] > 10_000
    assert time.perf_counter() - stopped_at[0] < 0.5, time.perf_counter() - t0
    # the model is still usable afterwards, from a clean cache
    stats, rec = run(engine, {"max_tokens": 5})
    assert stats["completion_tokens"] == 5


def test_bos_is_added_when_the_model_asks_and_the_template_did_not(engine, models):
    engine.load(str(models["bos"]), n_ctx=512)
    tokens = engine._prompt_tokens("User: hi\nAssistant:")
    assert tokens[0] == engine.llm.token_bos() and tokens.count(engine.llm.token_bos()) == 1
    stats, rec = run(engine, {})
    assert stats["prompt_tokens"] == len(tokens)

    engine.load(str(models["bos_template"]), n_ctx=512)  # the template writes {{ bos_token }}
    prompt = engine._template.render(HI, engine._bos, engine._eos)
    tokens = engine._prompt_tokens(prompt)
    assert tokens.count(engine.llm.token_bos()) == 1


def test_a_runaway_template_is_stopped_in_words():
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match="did not finish"):
        ChatTemplate(loop).render(HI, deadline_s=0.5)
    assert time.perf_counter() - t0 < 2.0
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match="absurdly large"):
        ChatTemplate("{{ 'a' * 4000000000 }}").render(HI)
    assert time.perf_counter() - t0 < 1.0
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(TemplateError):
        ChatTemplate(loop).render(HI, should_stop=stop.is_set)


def test_templates_render_like_transformers():
    t = ChatTemplate(
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
        "{{ m | tojson }}{% endfor %}"
    )
    out = t.render([{"role": "user", "content": "€ 5"}, {"role": "user", "content": "x"}])
    assert out == '{"role": "user", "content": "€ 5"}'


def test_a_template_that_renders_nothing_is_refused_in_words(engine, tmp_path):
    path = write_scripted_gguf(tmp_path / "empty.gguf", "answer", "{% if false %}x{% endif %}")
    engine.load(str(path), n_ctx=512)
    with pytest.raises(EngineFailure, match="empty prompt"):
        run(engine, {})


def test_a_megabyte_prompt_is_refused_without_tokenizing_it(engine, models):
    """Tokenizing 1 MB took about 160 s; a text that cannot fit is refused at once."""
    engine.load(str(models["loop"]), n_ctx=4096)
    huge = [{"role": "user", "content": "Hmm, let me check again! " * 40_000}]  # 1 MB
    t0 = time.perf_counter()
    with pytest.raises(EngineFailure, match="4,096-token context"):
        run(engine, {}, huge)
    assert time.perf_counter() - t0 < 5.0


def test_stop_interrupts_a_runaway_chat_template(engine, tmp_path):
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    engine.load(str(write_scripted_gguf(tmp_path / "loop-template.gguf", "answer", loop)))
    control = GenerationControl()
    threading.Timer(0.3, lambda: setattr(control, "cancelled", True)).start()
    t0 = time.perf_counter()
    with pytest.raises(EngineFailure, match="chat template"):
        run(engine, {}, control=control)
    assert time.perf_counter() - t0 < 2.0
