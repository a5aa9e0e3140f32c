"""The chat database's schema and the values read from it: migrations, conversations, messages.

`user_version` holds the schema version reached; each migration upgrades it by one. No Qt.
"""

from __future__ import annotations

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
    # 2: the owner of a streaming row, so a second instance leaves a live answer alone
    """
    ALTER TABLE messages ADD COLUMN owner_pid INTEGER;
    ALTER TABLE messages ADD COLUMN owner_started REAL;
    """,
    # 3: model comparisons (app/core/compare): a run and each answer saved as it arrives
    """
    CREATE TABLE compare_runs (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        models TEXT NOT NULL DEFAULT '[]',
        problems TEXT NOT NULL DEFAULT '[]',
        settings TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'new'
    );
    CREATE TABLE compare_results (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES compare_runs(id) ON DELETE CASCADE,
        model_index INTEGER NOT NULL,
        problem_index INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        answer TEXT NOT NULL DEFAULT '',
        thinking TEXT NOT NULL DEFAULT '',
        final TEXT NOT NULL DEFAULT '',
        correct INTEGER,
        thinking_tokens INTEGER NOT NULL DEFAULT 0,
        answer_tokens INTEGER NOT NULL DEFAULT 0,
        elapsed_s REAL NOT NULL DEFAULT 0,
        decode_tps REAL,
        peak_memory_bytes INTEGER,
        stop_reason TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (run_id, model_index, problem_index, attempt)
    );
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
    owner_pid: int | None = None  # the process streaming it (status `streaming`)
    owner_started: float | None = None


def default_db_path() -> Path:
    """Where chats live: the platform's user data folder for Ponder."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("Ponder", appauthor=False)) / "chats.sqlite3"


def title_from_text(text: str, limit: int = 60) -> str:
    """A conversation title from its first message: one line, at most `limit` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line or DEFAULT_TITLE
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
