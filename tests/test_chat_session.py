"""The chat session without Qt: history, length policy, save schedule, faults, and the real
engine process on scripted GGUF models (a strict template that refuses non-alternating
roles, like Gemma's; a load while an answer streams)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from app.core import answer_stream
from app.core.answer_stream import AnswerStream, ModelRef
from app.core.chat_session import ChatSession, ModelRunner, PromptTooLong, engine_params
from app.core.chat_store import ChatStore
from app.core.engine.events import StreamDone, StreamError, StreamStarted, TextDelta
from app.core.generation_settings import CONTEXT_NOTE, GenerationSettings, settings_for
from app.core.history import alternate, roles_alternate
from app.core.stream_owner import DISK_FULL

ROOT = Path(__file__).resolve().parents[1]
MODEL = ModelRef("/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", "DeepSeek-R1 7B", 8192)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class PlayedGeneration:
    """Plays `events`, each `step_s` apart on `clock`; after them, waits (None) until
    cancelled, then ends "cancelled" (unless `hangs`)."""

    def __init__(self, events, clock: Clock | None = None, step_s: float = 0.0, hangs=False):
        self.events, self.clock, self.step_s, self.hangs = list(events), clock, step_s, hangs
        self.cancelled = 0
        self.answer_now_calls = 0

    def cancel(self) -> None:
        self.cancelled += 1

    def answer_now(self) -> None:
        self.answer_now_calls += 1

    def next_event(self, timeout_s=None):
        if self.events:
            if self.clock:
                self.clock.t += self.step_s
            return self.events.pop(0)
        if self.cancelled and not self.hangs:
            return StreamDone("g", "cancelled", 3, 5, 0.1, 30.0, 0.2, 3, True)
        if self.clock:
            self.clock.t += timeout_s or 0.0
        else:
            time.sleep(min(timeout_s or 0.01, 0.01))
        return None


def thinking_deltas(n: int, text: str = "w "):
    return [TextDelta("g", text, "", 1, 0) for _ in range(n)]


@pytest.fixture
def store(tmp_path):
    with ChatStore(tmp_path / "chats.sqlite3") as s:
        yield s


# -- history ---------------------------------------------------------------------------------
def test_a_stopped_turn_with_no_answer_leaves_roles_alternating(store):
    session = ChatSession(store)
    first = session.send("Q1", MODEL)
    stopped = StreamDone("g", "cancelled", 2, 5, 0.1, 20.0, 0.1, 2, True)
    first.run(PlayedGeneration([StreamStarted("g", 5, True), *thinking_deltas(2), stopped]))
    assert store.message(first.message_id).status == "partial"
    second = session.send("Q2", MODEL)
    assert second.messages == [{"role": "user", "content": "Q1\n\nQ2"}]
    assert roles_alternate(second.messages)


def test_failed_turns_and_repeated_questions_are_merged_not_doubled():
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "orphan answer"},  # history_from cut its question
        {"role": "user", "content": "Q1"},
        {"role": "user", "content": "Q1"},  # asked again after a failure
        {"role": "assistant", "content": "A1"},
        {"role": "system", "content": "late system turn"},
        {"role": "user", "content": "Q2"},
    ]
    out = alternate(turns)
    assert out == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert roles_alternate(out) and not roles_alternate(turns)


def test_history_never_contains_thinking_and_skips_failed_answers(store):
    session = ChatSession(store)
    ok = session.send("Q1", MODEL)
    ok.run(PlayedGeneration([TextDelta("g", "secret reasoning", "A1", 2, 1),
                             StreamDone("g", "eos", 3, 5, 0.1, 30.0, 0.1, 2)]))  # fmt: skip
    bad = session.send("Q2", MODEL)
    bad.run(PlayedGeneration([StreamError("g", "engine_crashed", "The engine process died.")]))
    assert store.message(bad.message_id).status == "error"
    third = session.send("Q3", MODEL)
    assert third.messages == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2\n\nQ3"},
    ]
    assert "secret" not in repr(third.messages)


def test_regenerate_and_edit_keep_roles_alternating(store):
    session = ChatSession(store)
    a = session.send("Q1", MODEL)
    a.run(PlayedGeneration([StreamError("g", "internal", "boom")]))
    again = session.regenerate(MODEL)
    assert again is not None and again.messages == [{"role": "user", "content": "Q1"}]
    again.run(PlayedGeneration([TextDelta("g", "", "A1", 0, 1),
                                StreamDone("g", "eos", 1, 5, 0.1, 30.0, 0.1)]))  # fmt: skip
    user = store.messages(session.conversation_id)[0]
    edited = session.edit(user.id, "Q1, edited", MODEL)
    assert edited is not None and edited.messages == [{"role": "user", "content": "Q1, edited"}]


# -- length and context policy --------------------------------------------------------------
def test_thinking_models_have_no_length_cap_and_keep_room_for_the_answer():
    params = engine_params(settings_for("DeepSeek-R1-Distill-Qwen-7B"), 32768)
    assert params["max_tokens"] is None and params["answer_reserve"] == 1024
    assert settings_for("QwQ-32B").max_tokens is None
    # a conversation saved before the reserve existed had the old 4,096 cap as its default
    old = settings_for("DeepSeek-R1", {"max_tokens": 4096, "temperature": 0.5})
    assert old.max_tokens is None and old.temperature == 0.5
    chosen = settings_for("DeepSeek-R1", {"max_tokens": 4096, "answer_reserve": 512})
    assert chosen.max_tokens == 4096 and chosen.answer_reserve == 512


def test_a_prompt_that_does_not_fit_is_refused_in_words(store):
    session = ChatSession(store)
    small = ModelRef("/m.gguf", "m", 600)
    with pytest.raises(PromptTooLong, match="may not fit in the 600-token context"):
        session.send("word " * 400, small)
    assert store.conversations() == []
    forced = session.send("word " * 400, small, force=True)
    assert forced.params["answer_reserve"] == 300  # never more than half a tiny context


def test_thinking_cut_short_for_the_answer_says_so(store):
    stream = ChatSession(store).send("Hard problem", MODEL)
    done = StreamDone("g", "eos", 9, 5, 0.1, 30.0, 0.3, 7, answer_tokens=2,
                      thinking_ended_by="context", raw="t</think>A")  # fmt: skip
    result = stream.run(PlayedGeneration([TextDelta("g", "t", "A", 7, 2), done]))
    assert result.status == "complete" and result.note == CONTEXT_NOTE
    saved = store.message(stream.message_id)
    assert saved.stats["thinking_ended_by"] == "context" and saved.raw == "t</think>A"
    assert (saved.stats["thinking_tokens"], saved.stats["answer_tokens"]) == (7, 2)


# -- the save schedule ----------------------------------------------------------------------
class CountingStore(ChatStore):
    def __init__(self, path, fail_after: int | None = None) -> None:
        super().__init__(path)
        self.appends: list[tuple[str, str]] = []
        self.fail_after = fail_after

    def append_streaming(self, message_id, thinking, answer, stats=None):
        if self.fail_after is not None and len(self.appends) >= self.fail_after:
            raise sqlite3.OperationalError("database or disk is full")
        self.appends.append((thinking, answer))
        super().append_streaming(message_id, thinking, answer, stats)


def test_streaming_saves_append_only_the_new_text_at_most_once_a_second(tmp_path):
    clock = Clock()
    store = CountingStore(tmp_path / "c.sqlite3")
    stream = ChatSession(store).send("Q", MODEL)
    stream.clock = clock
    stream.__post_init__()
    # 500 deltas 10 ms apart: 5 s of streaming
    events = [TextDelta("g", f"t{i} ", "", 1, 0) for i in range(500)]
    gen = PlayedGeneration([*events, StreamDone("g", "eos", 500, 5, 0.1, 100.0, 5.0, 500)],
                           clock, step_s=0.01)  # fmt: skip
    result = stream.run(gen)
    assert 4 <= len(store.appends) <= 5  # once a second, never once a delta
    saved_parts = "".join(t for t, _ in store.appends)
    assert "".join(f"t{i} " for i in range(500)).startswith(saved_parts)  # each part once
    assert store.message(stream.message_id).thinking == result.thinking  # final text whole
    store.close()


def test_disk_full_while_saving_ends_the_stream_with_a_worded_error(tmp_path):
    clock = Clock()
    store = CountingStore(tmp_path / "c.sqlite3", fail_after=1)
    stream = ChatSession(store).send("Q", MODEL)
    stream.clock = clock
    stream.__post_init__()
    seen = []
    gen = PlayedGeneration(thinking_deltas(300), clock, step_s=0.01)
    result = stream.run(gen, seen.append)
    assert gen.cancelled == 1  # the engine is told to stop, once
    errors = [e for e in seen if isinstance(e, StreamError)]
    assert len(errors) == 1 and errors[0].kind == "save_failed"
    assert errors[0].message == DISK_FULL
    assert "disk is full" in DISK_FULL and "shown but not saved" in DISK_FULL
    assert result.status == "error" and result.thinking  # the answer so far is kept on screen
    assert len(store.appends) == 1  # no retry every second
    store.close()


def test_disk_full_on_the_final_save_is_reported(tmp_path, monkeypatch):
    store = ChatStore(tmp_path / "c.sqlite3")
    stream = ChatSession(store).send("Q", MODEL)

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "finish_message", full)
    done = StreamDone("g", "eos", 1, 5, 0.1, 30.0, 0.1)
    result = stream.run(PlayedGeneration([TextDelta("g", "", "A", 0, 1), done]))
    assert not result.saved and result.save_error == DISK_FULL and result.answer == "A"
    store.close()


def test_an_exception_while_streaming_is_reported_and_the_message_finished(store):
    stream = ChatSession(store).send("Q", MODEL)

    def explode(event):
        if isinstance(event, TextDelta):
            raise RuntimeError("display failed")

    gen = PlayedGeneration([TextDelta("g", "half", "", 1, 0)])
    result = stream.run(gen, explode)
    assert result.error.kind == "internal" and "display failed" in result.error.message
    assert "RuntimeError" in result.error.detail and gen.cancelled == 1
    saved = store.message(stream.message_id)
    assert saved.status == "error" and saved.thinking == "half"


def test_ctrl_c_while_streaming_finishes_the_message_as_interrupted(store):
    stream = ChatSession(store).send("Q", MODEL)

    class Interrupted(PlayedGeneration):
        def next_event(self, timeout_s=None):
            if not self.events:
                raise KeyboardInterrupt
            return super().next_event(timeout_s)

    with pytest.raises(KeyboardInterrupt):
        stream.run(Interrupted([TextDelta("g", "half", "", 1, 0)]))
    saved = store.message(stream.message_id)
    assert saved.status == "partial" and saved.stats["stop_reason"] == "interrupted"
    assert saved.thinking == "half"


def test_stop_before_the_generation_starts_reaches_it(store):
    stream = ChatSession(store).send("Q", MODEL)
    stream.cancel()
    gen = PlayedGeneration([])
    result = stream.run(gen)
    assert gen.cancelled == 1 and result.stop_reason == "cancelled"


def test_an_engine_that_ignores_stop_is_declared_hung(store, monkeypatch):
    monkeypatch.setattr(answer_stream, "CANCEL_GRACE_S", 0.3)
    stream = ChatSession(store).send("Q", MODEL)
    gen = PlayedGeneration(thinking_deltas(3), hangs=True)
    threading.Timer(0.1, stream.cancel).start()
    t0 = time.monotonic()
    result = stream.run(gen)
    assert time.monotonic() - t0 < 2.0
    assert result.error is not None and result.error.kind == "engine_hung"
    assert "Reload the engine" in result.error.message
    assert store.message(stream.message_id).thinking == "w w w "


def test_the_app_killed_mid_answer_loses_at_most_one_second(tmp_path):
    """SIGKILL a process streaming 100 tokens/s: the saved text is at most ~1 s behind."""
    db = tmp_path / "killed.sqlite3"
    code = textwrap.dedent(f"""
        import sys, time
        from app.core.answer_stream import ModelRef
        from app.core.chat_session import ChatSession
        from app.core.chat_store import ChatStore
        from app.core.engine.events import TextDelta

        class Paced:
            def __init__(self):
                self.t0, self.i = time.monotonic(), 0
            def cancel(self): pass
            def answer_now(self): pass
            def next_event(self, timeout_s=None):
                due = self.t0 + self.i / 100
                wait = due - time.monotonic()
                if timeout_s is not None and wait > timeout_s:
                    time.sleep(timeout_s)
                    return None
                time.sleep(max(0.0, wait))
                self.i += 1
                return TextDelta("p", f"w{{self.i}} ", "", 1, 0)

        store = ChatStore({str(db)!r})
        stream = ChatSession(store).send("Q", ModelRef("/m.gguf", "m", 8192))
        gen = Paced()
        print(time.time(), flush=True)
        stream.run(gen)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    started = float(proc.stdout.readline())
    time.sleep(3.9)  # just before the fourth save: the worst case
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.time()
    proc.wait(10)
    with ChatStore(db) as s:
        assert s._rows("PRAGMA integrity_check")[0][0] == "ok"
        (conv,) = s.conversations()
        _, answer = s.messages(conv.id)
    assert answer.status == "partial" and answer.stats["stop_reason"] == "interrupted"
    words = answer.thinking.split()
    assert words == [f"w{i}" for i in range(1, len(words) + 1)]  # appended in order, no gap
    lost_s = (killed - started) - len(words) / 100
    print(f"text lost to the kill: {lost_s:.2f} s")
    assert lost_s <= 1.2, f"lost {lost_s:.2f} s of text"  # 1 s + scheduling slack


# -- two instances ----------------------------------------------------------------------------
def test_a_second_instance_leaves_a_live_answer_streaming(tmp_path):
    db = tmp_path / "shared.sqlite3"
    code = textwrap.dedent(f"""
        import sys
        from app.core.chat_store import ChatStore
        s = ChatStore({str(db)!r})
        c = s.create_conversation()
        s.add_message(c.id, "user", "question")
        m = s.begin_assistant(c.id)
        s.append_streaming(m.id, "thinking…", "")
        print(m.id, flush=True)
        sys.stdin.readline()  # alive, still streaming, until told to go
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        message_id = int(proc.stdout.readline())
        with ChatStore(db) as second:
            assert second.message(message_id).status == "streaming"
    finally:
        proc.kill()
        proc.wait(10)
    with ChatStore(db) as third:  # its owner is gone now
        msg = third.message(message_id)
        assert msg.status == "partial" and msg.stats["stop_reason"] == "interrupted"
        assert msg.thinking == "thinking…"


def test_start_up_purge_keeps_chats_another_instance_may_still_undo(tmp_path):
    db = tmp_path / "shared.sqlite3"
    with ChatStore(db) as a:
        conv = a.create_conversation(title="keep me")
        a.delete_conversation(conv.id)
        with ChatStore(db) as b:
            assert b.purge_deleted() == 0  # what start-up does
        a.restore_conversation(conv.id)
        assert [c.title for c in a.conversations()] == ["keep me"]
        a.delete_conversation(conv.id)
        assert a.purge_deleted(older_than_s=0) == 1


# -- the real engine --------------------------------------------------------------------------
STRICT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
    "{% else %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
)


@pytest.fixture(scope="module")
def strict_model(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from scripted import write_scripted_gguf

    folder = tmp_path_factory.mktemp("strict")
    return write_scripted_gguf(folder / "strict-never-closes.gguf", "never_closes",
                               STRICT_TEMPLATE)  # fmt: skip


def stream_in_thread(runner: ModelRunner, stream: AnswerStream):
    seen: list = []
    box: dict = {}

    def go():
        box["result"] = runner.stream(stream, seen.append)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, seen, box


def wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_strict_template_accepts_the_next_prompt_after_a_stopped_turn(engine, store, strict_model):
    runner = ModelRunner(engine)
    runner.load(str(strict_model), n_ctx=2048, n_gpu_layers=0)
    # the model really is strict: two user turns in a row are refused
    refused = list(engine.chat([{"role": "user", "content": "a"}] * 2, max_tokens=4))
    assert isinstance(refused[-1], StreamError) and "alternate" in refused[-1].message
    session = ChatSession(store)
    session.set_settings(GenerationSettings(max_tokens=1500))
    first = session.send("Think forever", runner.model)
    thread, seen, box = stream_in_thread(runner, first)
    wait_for(lambda: sum(isinstance(e, TextDelta) for e in seen) >= 1)
    first.cancel()
    thread.join(30)
    assert box["result"].status == "partial" and box["result"].answer == ""
    second = session.send("Then answer this", runner.model)
    assert roles_alternate(second.messages)
    thread, seen, box = stream_in_thread(runner, second)
    wait_for(lambda: any(isinstance(e, TextDelta) for e in seen) or "result" in box)
    second.cancel()
    thread.join(30)
    assert not any(isinstance(e, StreamError) for e in seen), seen
    assert isinstance(seen[0], StreamStarted) and box["result"].status == "partial"


def test_a_load_during_a_stream_stops_it_and_records_speed_under_its_model(
    engine, store, scripted_models, tmp_path
):
    from app.core.model_stats import ModelStats

    stats = ModelStats(tmp_path / "model_stats.json")
    measured: list[str] = []

    def record(path, done, n_ctx):
        measured.append(path)
        stats.record_answer(path, done.decode_tps, completion_tokens=done.completion_tokens,
                            n_ctx=n_ctx)  # fmt: skip

    runner = ModelRunner(engine)
    runner.load(str(scripted_models.never_closes), n_ctx=4096, n_gpu_layers=0)
    session = ChatSession(store, on_measured=record)
    stream = session.send("Think until the next model loads", runner.model)
    thread, seen, box = stream_in_thread(runner, stream)
    wait_for(lambda: sum(e.tokens for e in seen if isinstance(e, TextDelta)) >= 8)
    t0 = time.monotonic()
    runner.load(str(scripted_models.preopen), n_ctx=4096, n_gpu_layers=0)
    thread.join(30)
    result = box["result"]
    assert result.stop_reason == "cancelled" and result.status == "partial"
    assert time.monotonic() - t0 < 30
    assert measured == [str(scripted_models.never_closes)]
    assert stats.get(scripted_models.never_closes).decode_tps > 0
    assert stats.get(scripted_models.preopen) is None
    assert runner.model.path == str(scripted_models.preopen)
    saved = store.message(stream.message_id)
    assert saved.status == "partial" and saved.stats["stop_reason"] == "cancelled"
    # and the new model answers
    again = session.regenerate(runner.model)
    assert runner.stream(again).status == "complete"
