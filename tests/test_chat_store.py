"""The conversation store on a real SQLite file: schema, streaming appends, search, undo."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.chat_store import SCHEMA_VERSION, ChatStore, StoreError, title_from_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    with ChatStore(tmp_path / "chats.sqlite3") as s:
        yield s


def test_database_uses_wal_full_sync_and_records_the_schema_version(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()


def test_a_database_from_a_newer_version_is_refused_in_words(tmp_path):
    path = tmp_path / "future.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(StoreError, match="newer Ponder"):
        ChatStore(path)


def test_reopening_keeps_everything(tmp_path):
    path = tmp_path / "c.sqlite3"
    with ChatStore(path) as s:
        conv = s.create_conversation(model="r1", settings={"temperature": 0.6})
        s.add_message(conv.id, "user", "Hello")
    with ChatStore(path) as s:
        (again,) = s.conversations()
        assert again.settings == {"temperature": 0.6} and again.model == "r1"
        assert [m.content for m in s.messages(conv.id)] == ["Hello"]


def test_first_user_message_names_the_conversation(store):
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "What is   the integral\nof x^2?")
    assert store.conversation(conv.id).title == "What is the integral of x^2?"
    store.add_message(conv.id, "user", "Something else")
    assert store.conversation(conv.id).title == "What is the integral of x^2?"


def test_long_titles_are_cut_at_a_word():
    title = title_from_text("word " * 40)
    assert len(title) <= 60 and title.endswith("…") and "wor…" not in title


def test_streaming_message_lifecycle(store):
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "2+2?")
    msg = store.begin_assistant(conv.id, model="r1", settings={"top_p": 0.95})
    assert msg.status == "streaming" and msg.position == 1
    assert msg.owner_pid == os.getpid() and msg.owner_started
    store.append_streaming(msg.id, "Two", "", {"thinking_tokens": 1})
    store.append_streaming(msg.id, " plus", "")
    saved = store.message(msg.id)
    assert saved.thinking == "Two plus" and saved.stats == {"thinking_tokens": 1}
    stats = {"completion_tokens": 12, "decode_tps": 30.5}
    store.finish_message(msg.id, "complete", "4", "Two plus two", "Two plus two</think>4", stats)
    done = store.message(msg.id)
    assert (done.status, done.content, done.stats) == ("complete", "4", stats)
    assert done.settings == {"top_p": 0.95} and done.model == "r1"


def test_leftover_streaming_rows_become_partial_when_the_store_opens(tmp_path):
    """A process killed mid-answer leaves a `streaming` row: it survives as `partial`,
    stop reason "interrupted"."""
    path = tmp_path / "killed.sqlite3"
    code = textwrap.dedent(f"""
        import os
        from app.core.chat_store import ChatStore
        s = ChatStore({str(path)!r})
        c = s.create_conversation()
        s.add_message(c.id, "user", "question")
        m = s.begin_assistant(c.id)
        s.append_streaming(m.id, "half a thought", "")
        os._exit(9)  # no close, no finally
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 9, proc.stderr
    with ChatStore(path) as s:
        (conv,) = s.conversations()
        user, assistant = s.messages(conv.id)
        assert assistant.status == "partial" and assistant.thinking == "half a thought"
        assert assistant.stats["stop_reason"] == "interrupted"
        assert s._rows("PRAGMA integrity_check")[0][0] == "ok"


def test_a_streaming_row_of_this_process_is_recovered_once_its_stream_is_gone(tmp_path):
    path = tmp_path / "same.sqlite3"
    with ChatStore(path) as first:
        c = first.create_conversation()
        live = first.begin_assistant(c.id)
        with ChatStore(path) as second:  # the answer is still streaming here
            assert second.message(live.id).status == "streaming"
        first.finish_message(live.id, "complete", "done", "", "")
        dropped = first.begin_assistant(c.id)
        from app.core import stream_owner

        stream_owner.unregister(str(path), dropped.id)  # as if its stream had died
        with ChatStore(path) as third:
            assert third.message(dropped.id).status == "partial"
            assert third.message(live.id).status == "complete"


def test_appending_costs_the_same_on_a_long_message(store):
    """Each save writes only the new text: saving 1 KB costs about as much at 200 KB."""
    import time

    conv = store.create_conversation()
    msg = store.begin_assistant(conv.id)
    chunk = "word " * 200

    def median_ms(n: int = 15) -> float:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            store.append_streaming(msg.id, chunk, "")
            times.append(time.perf_counter() - t)
        return sorted(times)[n // 2] * 1000

    early = median_ms()
    for _ in range(200):
        store.append_streaming(msg.id, chunk, "")
    late = median_ms()
    assert len(store.message(msg.id).thinking) == 230 * len(chunk)
    assert late < early * 3 + 2.0, (early, late)


def test_history_for_model_never_contains_thinking(store):
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "Q1")
    a = store.begin_assistant(conv.id)
    store.finish_message(a.id, "complete", "A1", "secret reasoning", "secret reasoning</think>A1")
    store.add_message(conv.id, "user", "Q2")
    failed = store.begin_assistant(conv.id)
    store.finish_message(failed.id, "error", "", "", "", {"error": {"kind": "engine_crashed"}})
    store.add_message(conv.id, "user", "Q3")
    history = store.history_for_model(conv.id)
    assert history == [  # the failed turn is not sent; roles still alternate
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2\n\nQ3"},
    ]
    assert "secret" not in repr(history)


def test_history_from_drops_old_turns(store):
    conv = store.create_conversation()
    for text in ("old", "old answer", "new"):
        store.add_message(conv.id, "user" if text != "old answer" else "assistant", text)
    store.set_conversation_settings(conv.id, {"history_from": 2})
    assert store.history_for_model(conv.id) == [{"role": "user", "content": "new"}]


def test_search_finds_titles_and_message_text_and_escapes_wildcards(store):
    a = store.create_conversation(title="Integrals")
    b = store.create_conversation(title="Other")
    store.add_message(b.id, "assistant", "The answer is 100% \\boxed{42}")
    c = store.create_conversation(title="Nothing here")
    assert [x.id for x in store.search("integral")] == [a.id]
    assert [x.id for x in store.search("BOXED{42")] == [b.id]
    assert [x.id for x in store.search("100%")] == [b.id]
    assert store.search("_") == []
    assert {x.id for x in store.search("  ")} == {a.id, b.id, c.id}


def test_rename_and_delete_with_undo(store):
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "keep me")
    store.rename(conv.id, "  My   chat ")
    assert store.conversation(conv.id).title == "My chat"
    store.delete_conversation(conv.id)
    assert store.conversations() == [] and store.search("keep") == []
    store.restore_conversation(conv.id)
    assert [c.title for c in store.conversations()] == ["My chat"]
    assert store.messages(conv.id)[0].content == "keep me"
    store.delete_conversation(conv.id)
    assert store.purge_deleted() == 0  # deleted a moment ago: another window may still undo
    assert store.purge_deleted(older_than_s=0) == 1
    assert store.conversation(conv.id) is None and store.messages(conv.id) == []


def test_delete_messages_from_returns_what_it_removed(store):
    conv = store.create_conversation()
    for i in range(4):
        store.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"m{i}")
    removed = store.delete_messages_from(conv.id, 2)
    assert [m.content for m in removed] == ["m2", "m3"]
    assert [m.content for m in store.messages(conv.id)] == ["m0", "m1"]
    assert store.add_message(conv.id, "user", "again").position == 2


def test_conversations_are_listed_most_recent_first(store):
    a = store.create_conversation(title="a")
    b = store.create_conversation(title="b")
    store.add_message(a.id, "user", "bump")
    assert [c.id for c in store.conversations()] == [a.id, b.id]


def test_failed_write_rolls_back(store):
    conv = store.create_conversation()
    with pytest.raises(ValueError):
        store.add_message(conv.id, "robot", "x")
    with pytest.raises(sqlite3.IntegrityError), store._write() as db:
        db.execute(
            "INSERT INTO messages (conversation_id, position, role, created_at,"
            " updated_at) VALUES (?, 0, 'user', 0, 0)",
            (conv.id,),
        )
        db.execute(
            "INSERT INTO messages (conversation_id, position, role, created_at,"
            " updated_at) VALUES (?, 0, 'user', 0, 0)",
            (conv.id,),
        )
    assert store.messages(conv.id) == []
