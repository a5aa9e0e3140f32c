"""Saved conversations: one SQLite database (WAL, synchronous=FULL) with one connection.

A streaming assistant message is inserted as `streaming` with its owner (process id and start
time, app/core/stream_owner.py), grows by appends (`thinking = thinking || ?`: each save
writes the new text, never the whole message again) and is finished as `complete`, `partial`
or `error`. When a store opens, `streaming` rows whose owner is gone (the app was killed
mid-answer) become `partial` with stop reason "interrupted"; a live second instance's answer
is left alone. Deleted conversations are purged only a day after deletion, so another
window's Undo still works.

Threads: the connection is shared by the GUI thread and the engine worker thread (which
appends the streaming text, see app/core/answer_stream.py); every use holds `self._lock`, so
one statement or transaction runs at a time. No Qt.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.core import stream_owner
from app.core.chat_schema import (
    DEFAULT_TITLE,
    MIGRATIONS,
    ROLES,
    SCHEMA_VERSION,
    STATUSES,
    Conversation,
    Message,
    StoreError,
    default_db_path,
    title_from_text,
)
from app.core.history import model_history

__all__ = [
    "SCHEMA_VERSION",
    "ChatStore",
    "Conversation",
    "Message",
    "StoreError",
    "default_db_path",
    "title_from_text",
]
PURGE_AFTER_S = 86_400.0  # deleted conversations stay restorable (Undo) for a day


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ChatStore:
    """Conversations and their messages; safe to use from several threads (one lock)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self.recover_interrupted()

    # -- plumbing ------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @property
    def _key(self) -> str:
        return str(self.path)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The chat database {self.path} was written by a newer Ponder (schema "
                f"{version}, this one knows {SCHEMA_VERSION}). Update Ponder to open it."
            )
        for number in range(version, SCHEMA_VERSION):
            with self._write():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._rows("PRAGMA user_version")[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _conversation(row: sqlite3.Row) -> Conversation:
        return Conversation(**{**dict(row), "settings": json.loads(row["settings"] or "{}")})

    @staticmethod
    def _message(row: sqlite3.Row) -> Message:
        fields = dict(row)
        for name in ("settings", "stats"):
            fields[name] = json.loads(fields[name] or "{}")
        return Message(**fields)

    def _touch(self, conversation_id: int, now: float) -> None:
        self._db.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
        )

    # -- conversations -------------------------------------------------------------------
    def create_conversation(
        self,
        title: str = DEFAULT_TITLE,
        model: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Conversation:
        now = time.time()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model, settings) "
                "VALUES (?, ?, ?, ?, ?)",
                (title, now, now, model, json.dumps(settings or {})),
            )
        return self.conversation(int(cur.lastrowid or 0))  # type: ignore[return-value]

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._rows("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return self._conversation(rows[0]) if rows else None

    def conversations(self) -> list[Conversation]:
        """Every conversation not deleted, most recently updated first."""
        rows = self._rows(
            "SELECT * FROM conversations WHERE deleted_at IS NULL ORDER BY updated_at DESC, id DESC"
        )
        return [self._conversation(r) for r in rows]

    def search(self, text: str) -> list[Conversation]:
        """Conversations whose title or any message's text or thinking contains `text`
        (case-insensitive)."""
        if not text.strip():
            return self.conversations()
        pattern = _like(text.strip())
        rows = self._rows(
            "SELECT * FROM conversations c WHERE deleted_at IS NULL AND ("
            " c.title LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m"
            " WHERE m.conversation_id = c.id AND (m.content LIKE ?1 ESCAPE '\\'"
            " OR m.thinking LIKE ?1 ESCAPE '\\')))"
            " ORDER BY updated_at DESC, id DESC",
            (pattern,),
        )
        return [self._conversation(r) for r in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split()) or DEFAULT_TITLE
        with self._write() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def set_conversation_settings(self, conversation_id: int, settings: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET settings = ? WHERE id = ?",
                (json.dumps(settings), conversation_id),
            )

    def set_conversation_model(self, conversation_id: int, model: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Hide a conversation; `restore_conversation` brings it back (undo)."""
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET deleted_at = ? WHERE id = ?",
                (time.time(), conversation_id),
            )

    def restore_conversation(self, conversation_id: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,)
            )

    def purge_deleted(self, older_than_s: float = PURGE_AFTER_S) -> int:
        """Remove conversations deleted more than `older_than_s` ago for good; returns how many.

        Start-up calls this with the default: another instance's Undo keeps working for a day.
        """
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                (time.time() - older_than_s,),
            )
        return cur.rowcount

    # -- messages ------------------------------------------------------------------------
    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._rows(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY position",
            (conversation_id,),
        )
        return [self._message(r) for r in rows]

    def message(self, message_id: int) -> Message | None:
        rows = self._rows("SELECT * FROM messages WHERE id = ?", (message_id,))
        return self._message(rows[0]) if rows else None

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str = "",
        *,
        thinking: str = "",
        raw: str = "",
        model: str | None = None,
        settings: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
        status: str = "complete",
    ) -> Message:
        """Append a message at the end of the conversation (a `streaming` one records this
        process as its owner)."""
        if role not in ROLES or status not in STATUSES:
            raise ValueError(f"bad role or status: {role!r}, {status!r}")
        now = time.time()
        owner = stream_owner.this_process() if status == "streaming" else None
        with self._write() as db:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(position), -1) FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            cur = db.execute(
                "INSERT INTO messages (conversation_id, position, role, content, thinking, raw,"
                " model, settings, stats, status, created_at, updated_at, owner_pid,"
                " owner_started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    last + 1,
                    role,
                    content,
                    thinking,
                    raw,
                    model,
                    json.dumps(settings or {}),
                    json.dumps(stats or {}),
                    status,
                    now,
                    now,
                    owner.pid if owner else None,
                    owner.started if owner else None,
                ),
            )
            if role == "user" and last < 0:
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                    (title_from_text(content), conversation_id, DEFAULT_TITLE),
                )
            self._touch(conversation_id, now)
        return self.message(int(cur.lastrowid or 0))  # type: ignore[return-value]

    def begin_assistant(
        self,
        conversation_id: int,
        model: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Message:
        """Insert the assistant message that is about to stream, as `streaming`, owned by
        this process until `finish_message`."""
        msg = self.add_message(
            conversation_id, "assistant", model=model, settings=settings, status="streaming"
        )
        stream_owner.register(self._key, msg.id)
        return msg

    def append_streaming(
        self, message_id: int, thinking: str, answer: str, stats: dict[str, Any] | None = None
    ) -> None:
        """Append new text to a streaming message (and replace its small stats): the cost
        depends on the new text, not on how long the message already is."""
        with self._write() as db:
            db.execute(
                "UPDATE messages SET thinking = thinking || ?, content = content || ?,"
                " stats = COALESCE(?, stats), updated_at = ? WHERE id = ?",
                (thinking, answer, json.dumps(stats) if stats is not None else None,
                 time.time(), message_id),
            )  # fmt: skip

    def recover_interrupted(self) -> int:
        """Mark `streaming` rows whose owner is gone as partial, stop reason "interrupted";
        a live owner's row (another instance still answering) is left alone."""
        rows = self._rows(
            "SELECT id, stats, owner_pid, owner_started FROM messages WHERE status = 'streaming'"
        )
        orphans = [
            r for r in rows
            if not stream_owner.is_alive(self._key, r["id"], r["owner_pid"], r["owner_started"])
        ]  # fmt: skip
        if not orphans:
            return 0
        with self._write() as db:
            for r in orphans:
                stats = {**json.loads(r["stats"] or "{}"), "stop_reason": "interrupted"}
                db.execute(
                    "UPDATE messages SET status = 'partial', stats = ? WHERE id = ?"
                    " AND status = 'streaming'",
                    (json.dumps(stats), r["id"]),
                )
        return len(orphans)

    def finish_message(
        self,
        message_id: int,
        status: str,
        content: str,
        thinking: str,
        raw: str,
        stats: dict[str, Any] | None = None,
    ) -> None:
        """Save the final text, stats and status (`complete`, `partial` or `error`)."""
        if status not in ("complete", "partial", "error"):
            raise ValueError(f"bad final status {status!r}")
        now = time.time()
        stream_owner.unregister(self._key, message_id)
        with self._write() as db:
            db.execute(
                "UPDATE messages SET content = ?, thinking = ?, raw = ?, stats = ?, status = ?,"
                " updated_at = ? WHERE id = ?",
                (content, thinking, raw, json.dumps(stats or {}), status, now, message_id),
            )
            row = db.execute(
                "SELECT conversation_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row:
                self._touch(row[0], now)

    def edit_message(self, message_id: int, content: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE messages SET content = ?, updated_at = ? WHERE id = ?",
                (content, time.time(), message_id),
            )

    def delete_messages_from(self, conversation_id: int, position: int) -> list[Message]:
        """Remove the messages at `position` and after (edit/regenerate); returns them."""
        removed = [m for m in self.messages(conversation_id) if m.position >= position]
        with self._write() as db:
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                (conversation_id, position),
            )
        return removed

    def history_for_model(self, conversation_id: int) -> list[dict[str, str]]:
        """The turns to send to the model (app/core/history.py): never earlier turns'
        thinking, roles alternating, nothing before the `history_from` position."""
        conv = self.conversation(conversation_id)
        start = int(conv.settings.get("history_from", 0)) if conv else 0
        return model_history(self.messages(conversation_id), start)
