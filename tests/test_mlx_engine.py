"""The real mlx-lm engine in its own process, driven through the client, on scripted models.

Behaviour shared with llama.cpp (split, cancel, Answer now, thinking budget, common errors)
is checked against both engines in test_engine_parity.py; this module covers what is MLX's own:
model folders, safetensors damage, tokenizer files, custom code, architectures, memory.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_lm")

from app.core.engine import EngineError, StreamDone, StreamError, StreamStarted, TextDelta  # noqa: E402
from scripted import ANSWER_TEXT, THINK_TEXT  # noqa: E402
from scripted_mlx import ScriptedMlxModels  # noqa: E402

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def mlx_models(tmp_path_factory: pytest.TempPathFactory) -> ScriptedMlxModels:
    return ScriptedMlxModels(tmp_path_factory.mktemp("mlx-models"))


@pytest.fixture(scope="module")
def engine():
    """One engine process for the module (errors leave it running), to keep the tests fast."""
    from app.core.engine import EngineClient

    client = EngineClient(load_timeout_s=120)
    yield client
    client.close()


def collect(gen):
    events = list(gen)
    thinking = "".join(e.thinking for e in events if isinstance(e, TextDelta))
    answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
    raw = events[-1].raw if isinstance(events[-1], StreamDone) else ""  # sent once, at the end
    return events, thinking, answer, raw


def load_error(engine, path, **opts) -> EngineError:
    with pytest.raises(EngineError) as err:
        engine.load(str(path), engine="mlx", **opts)
    return err.value


@pytest.mark.parametrize("which", ["preopen", "plain"])
def test_streams_thinking_and_answer_separately(engine, mlx_models, which):
    info = engine.load(str(getattr(mlx_models, which)), engine="mlx", n_ctx=1024)
    assert info["engine"] == "mlx" and info["architecture"] == "llama"
    assert info["n_ctx"] == 1024 and info["n_layers"] == 1 and info["chat_template"] is True
    events, thinking, answer, raw = collect(engine.chat(QUESTION))
    assert isinstance(events[0], StreamStarted)
    assert events[0].thinking_open is (which == "preopen")
    assert (thinking.strip(), answer.strip()) == (THINK_TEXT, ANSWER_TEXT)
    assert "</think>" in raw
    done = events[-1]
    assert isinstance(done, StreamDone) and done.stop_reason == "eos"
    assert not done.ended_in_thinking
    assert done.completion_tokens == {"preopen": 11, "plain": 13}[which]
    assert done.ttft_s is not None and done.decode_tps and done.decode_tps > 0
    assert done.extra["peak_memory_bytes"] > 0


def test_first_delta_is_not_batched_and_every_token_is_counted(engine, mlx_models):
    engine.load(str(mlx_models.never_closes), engine="mlx", n_ctx=2048)
    deltas = [e for e in engine.chat(QUESTION, max_tokens=600) if isinstance(e, TextDelta)]
    assert deltas[0].tokens == 1
    assert len(deltas) < 600 / 4  # batched by time
    assert sum(d.tokens for d in deltas) == 600


def test_second_turn_reuses_the_cache_and_answers_the_same(engine, mlx_models):
    engine.load(str(mlx_models.preopen), engine="mlx", n_ctx=1024)
    _, _, first, raw = collect(engine.chat(QUESTION))
    history = [*QUESTION, {"role": "assistant", "content": raw}, *QUESTION]
    for _ in range(2):  # the second time most of the prompt is in the cache
        events, thinking, answer, _ = collect(engine.chat(history))
        assert (thinking.strip(), answer.strip()) == (THINK_TEXT, ANSWER_TEXT)
        assert events[-1].prompt_tokens > events[0].prompt_tokens // 2


@pytest.mark.parametrize(
    "name", ["truncated", "garbage", "empty", "huge_header", "wrong_size", "missing_tensor"]
)
def test_corrupt_safetensors_is_refused_in_words_and_the_next_load_works(engine, mlx_models, name):
    err = load_error(engine, mlx_models.corrupt[name])
    assert err.kind == "bad_model" and len(err.message) > 30
    info = engine.load(str(mlx_models.preopen), engine="mlx", n_ctx=512)
    assert info["n_ctx"] == 512


@pytest.mark.parametrize("name", ["no_tokenizer", "broken_tokenizer"])
def test_missing_or_broken_tokenizer_is_refused_in_words(engine, mlx_models, name):
    err = load_error(engine, mlx_models.corrupt[name])
    assert err.kind == "bad_model" and "tokenizer" in err.message
    assert "download" in err.message


@pytest.mark.parametrize("name", ["remote_code", "auto_map"])
def test_model_needing_custom_code_is_refused_and_its_code_never_runs(engine, mlx_models, name):
    folder = mlx_models.corrupt[name]
    err = load_error(engine, folder)
    assert err.kind == "bad_model" and "trust_remote_code" in err.message
    assert not (folder / "PWNED").exists()


def test_unsupported_architecture_is_named(engine, mlx_models):
    err = load_error(engine, mlx_models.corrupt["unsupported"])
    assert err.kind == "bad_model" and "nosuch_arch_xyz" in err.message
    assert "not supported by mlx-lm" in err.message


@pytest.mark.parametrize(
    "target, words",
    [("missing", "no file or folder"), ("file", "single file"), ("bin_only", "pickle")],
)
def test_wrong_paths_get_clear_errors(engine, mlx_models, tmp_path, target, words):
    path = {
        "missing": tmp_path / "nope",
        "file": mlx_models.preopen / "model.safetensors",
        "bin_only": mlx_models.corrupt["bin_only"],
    }[target]
    err = load_error(engine, path)
    assert err.kind == "bad_model" and words in err.message


def test_model_larger_than_the_memory_budget_is_refused_before_loading(mlx_models, monkeypatch):
    import backends.mlx as mlx_backend

    monkeypatch.setattr(
        mlx_backend, "memory_budget", lambda: (1_000_000, "the GPU's wired memory limit")
    )
    engine = mlx_backend.MlxEngine()
    with pytest.raises(mlx_backend.EngineFailure) as err:
        engine.load(str(mlx_models.preopen))
    assert err.value.kind == "out_of_memory"
    assert "wired memory limit" in err.value.message and "GB" in err.value.message
    assert engine.model is None


def test_memory_budget_is_the_wired_limit_on_metal_else_free_ram():
    import mlx.core as mx

    from backends.mlx import memory_budget

    budget, limit = memory_budget()
    assert budget > 0
    expected = "wired" if mx.device_info().get("max_recommended_working_set_size") else "RAM"
    assert expected in limit


def test_prompt_longer_than_the_context_is_context_overflow(engine, mlx_models):
    engine.load(str(mlx_models.preopen), engine="mlx", n_ctx=64)
    events = list(engine.chat([{"role": "user", "content": "word " * 40}]))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "context_overflow"


def test_model_without_a_template_uses_a_plain_format(engine, mlx_models):
    info = engine.load(str(mlx_models.no_template), engine="mlx", n_ctx=512)
    assert info["chat_template"] is False
    events = list(engine.chat(QUESTION, max_tokens=5))
    assert isinstance(events[-1], StreamDone)


def test_unload_frees_the_model(engine, mlx_models):
    engine.load(str(mlx_models.preopen), engine="mlx", n_ctx=512)
    engine.unload()
    assert engine.model_info is None
    events = list(engine.chat(QUESTION))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "bad_request"
