"""Saved conversations: one SQLite database (WAL, synchronous=FULL) with one writer connection.

A streaming assistant message is inserted as `streaming`, updated while it grows and finished
as `complete`, `partial` or `error`; rows still `streaming` when the store opens (the app was
killed mid-answer) become `partial`, so nothing saved is lost and the UI can say so. No Qt.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("complete", "partial", "error", "streaming")
ROLES = ("user", "assistant", "system")
DEFAULT_TITLE = "New chat"

# Each entry upgrades the schema by one version; user_version holds the version reached.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        model TEXT,
        settings TEXT NOT NULL DEFAULT '{}',
        deleted_at REAL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
        content TEXT NOT NULL DEFAULT '',
        thinking TEXT NOT NULL DEFAULT '',
        raw TEXT NOT NULL DEFAULT '',
        model TEXT,
        settings TEXT NOT NULL DEFAULT '{}',
        stats TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'complete'
            CHECK (status IN ('complete', 'partial', 'error', 'streaming')),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (conversation_id, position)
    );
    CREATE INDEX conversations_by_update ON conversations(deleted_at, updated_at DESC);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The chat database cannot be used; `message` says why in words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: float
    updated_at: float
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    deleted_at: float | None = None


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    position: int
    role: str
    content: str = ""  # the answer (or the user's text)
    thinking: str = ""
    raw: str = ""  # exactly what the model produced, tags included
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    status: str = "complete"
    created_at: float = 0.0
    updated_at: float = 0.0


def default_db_path() -> Path:
    """Where chats live: the platform's user data folder for Ponder."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("Ponder", appauthor=False)) / "chats.sqlite3"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ChatStore:
    """Conversations and their messages. Use from one thread (the GUI thread)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        with self._write():
            self._db.execute("UPDATE messages SET status = 'partial' WHERE status = 'streaming'")

    # -- plumbing ------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
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
        row = self._db.execute(
            "SELECT * FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return self._conversation(row) if row else None

    def conversations(self) -> list[Conversation]:
        """Every conversation not deleted, most recently updated first."""
        rows = self._db.execute(
            "SELECT * FROM conversations WHERE deleted_at IS NULL ORDER BY updated_at DESC, id DESC"
        )
        return [self._conversation(r) for r in rows]

    def search(self, text: str) -> list[Conversation]:
        """Conversations whose title or any message's text contains `text` (case-insensitive)."""
        if not text.strip():
            return self.conversations()
        pattern = _like(text.strip())
        rows = self._db.execute(
            "SELECT * FROM conversations c WHERE deleted_at IS NULL AND ("
            " c.title LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m"
            " WHERE m.conversation_id = c.id AND m.content LIKE ?1 ESCAPE '\\'))"
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

    def purge_deleted(self, older_than_s: float = 0.0) -> int:
        """Remove deleted conversations for good; returns how many."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                (time.time() - older_than_s,),
            )
        return cur.rowcount

    # -- messages ------------------------------------------------------------------------
    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._db.execute(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY position",
            (conversation_id,),
        )
        return [self._message(r) for r in rows]

    def message(self, message_id: int) -> Message | None:
        row = self._db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return self._message(row) if row else None

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
        """Append a message at the end of the conversation."""
        if role not in ROLES or status not in STATUSES:
            raise ValueError(f"bad role or status: {role!r}, {status!r}")
        now = time.time()
        with self._write() as db:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(position), -1) FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            cur = db.execute(
                "INSERT INTO messages (conversation_id, position, role, content, thinking, raw,"
                " model, settings, stats, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        """Insert the assistant message that is about to stream, as `streaming`."""
        return self.add_message(
            conversation_id, "assistant", model=model, settings=settings, status="streaming"
        )

    def update_streaming(self, message_id: int, content: str, thinking: str, raw: str) -> None:
        """Save the text so far of a streaming message (call at least once a second)."""
        with self._write() as db:
            db.execute(
                "UPDATE messages SET content = ?, thinking = ?, raw = ?, updated_at = ?"
                " WHERE id = ?",
                (content, thinking, raw, time.time(), message_id),
            )

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
        """The turns to send to the model: [{role, content}], never earlier turns' thinking.

        Failed or empty assistant turns are left out, and so are turns before the
        conversation's `history_from` position (old turns dropped to fit the context).
        """
        conv = self.conversation(conversation_id)
        start = int(conv.settings.get("history_from", 0)) if conv else 0
        history = []
        for m in self.messages(conversation_id):
            if m.position < start or m.status == "streaming":
                continue
            if m.role == "assistant" and (m.status == "error" or not m.content.strip()):
                continue
            history.append({"role": m.role, "content": m.content})
        return history


def title_from_text(text: str, limit: int = 60) -> str:
    """A conversation title from its first message: one line, at most `limit` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line or DEFAULT_TITLE
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
