"""Comparisons saved in the chat database (tables `compare_runs`, `compare_results`, schema 3
in app/core/chat_schema.py): a run's models, problems and settings, and each answer as it
arrives, so a cancelled or interrupted comparison resumes where it stopped.

One connection of its own to the chat database file (WAL; the chat store's connection and
this one take turns through SQLite's locks); every use holds `self._lock`, so the GUI
thread may read while the comparison's worker thread writes. No Qt.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.chat_schema import SCHEMA_VERSION, StoreError, default_db_path
from app.core.compare.problems import Problem

COMPARE_SCHEMA = 3  # the chat schema version that added the compare tables
STATUSES = ("new", "running", "cancelled", "complete", "failed")


@dataclass(frozen=True)
class AttemptResult:
    """One answer of one model to one problem (attempt 0, 1, …)."""

    model_index: int
    problem_index: int
    attempt: int
    answer: str = ""
    thinking: str = ""
    final: str = ""  # the final answer extracted from `answer`
    correct: bool | None = None  # None: the problem has no expected answer (or an error)
    thinking_tokens: int = 0
    answer_tokens: int = 0
    elapsed_s: float = 0.0
    decode_tps: float | None = None
    peak_memory_bytes: int | None = None
    stop_reason: str = ""
    error: str = ""
    created_at: float = 0.0

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.model_index, self.problem_index, self.attempt)


@dataclass(frozen=True)
class RunRecord:
    """A saved comparison: `models` are ModelSpec dicts (never an API key)."""

    id: int
    title: str
    models: list[dict[str, Any]]
    problems: list[Problem]
    settings: dict[str, Any] = field(default_factory=dict)
    status: str = "new"
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def repeats(self) -> int:
        return int(self.settings.get("repeats", 2))

    @property
    def total(self) -> int:
        """How many answers the whole comparison asks for."""
        return len(self.models) * len(self.problems) * self.repeats


_RESULT_COLUMNS = ("model_index", "problem_index", "attempt", "answer", "thinking", "final",
                   "correct", "thinking_tokens", "answer_tokens", "elapsed_s", "decode_tps",
                   "peak_memory_bytes", "stop_reason", "error", "created_at")  # fmt: skip


class CompareStore:
    """Comparison runs and their answers in the chat database at `path`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = threading.RLock()
        self._ensure_schema()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")

    def _ensure_schema(self) -> None:
        """The chat store migrates the database (the one place that knows how)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.path) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        db.close()
        if version < COMPARE_SCHEMA <= SCHEMA_VERSION:
            from app.core.chat_store import ChatStore

            ChatStore(self.path).close()
        elif version < COMPARE_SCHEMA:
            raise StoreError("This Ponder's chat database has no room for comparisons.")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> CompareStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, title: str, models: list[dict[str, Any]], problems: list[Problem],
                   settings: dict[str, Any]) -> int:  # fmt: skip
        """Save a new comparison (nothing answered yet); returns its id."""
        now = time.time()
        cur = self._execute(
            "INSERT INTO compare_runs (created_at, updated_at, title, models, problems, settings,"
            " status) VALUES (?, ?, ?, ?, ?, ?, 'new')",
            (now, now, title, json.dumps(models), json.dumps([p.to_dict() for p in problems]),
             json.dumps(settings)),
        )  # fmt: skip
        return int(cur.lastrowid or 0)

    def _run_from(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=row["id"], title=row["title"], models=json.loads(row["models"]),
            problems=[Problem.from_dict(p) for p in json.loads(row["problems"])],
            settings=json.loads(row["settings"]), status=row["status"],
            created_at=row["created_at"], updated_at=row["updated_at"],
        )  # fmt: skip

    def run(self, run_id: int) -> RunRecord | None:
        rows = self._rows("SELECT * FROM compare_runs WHERE id = ?", (run_id,))
        return self._run_from(rows[0]) if rows else None

    def runs(self, limit: int = 50) -> list[RunRecord]:
        """Saved comparisons, the latest first."""
        rows = self._rows("SELECT * FROM compare_runs ORDER BY updated_at DESC, id DESC LIMIT ?",
                          (limit,))  # fmt: skip
        return [self._run_from(r) for r in rows]

    def unfinished(self) -> list[RunRecord]:
        """Comparisons that stopped before their last answer (cancelled or interrupted)."""
        return [r for r in self.runs() if r.status != "complete"]

    def set_status(self, run_id: int, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        self._execute("UPDATE compare_runs SET status = ?, updated_at = ? WHERE id = ?",
                      (status, time.time(), run_id))  # fmt: skip

    def delete_run(self, run_id: int) -> None:
        self._execute("DELETE FROM compare_runs WHERE id = ?", (run_id,))

    # -- answers -------------------------------------------------------------------------
    def save_result(self, run_id: int, result: AttemptResult) -> None:
        """Save one answer at once (an answer saved twice is a bug: IntegrityError)."""
        values = [getattr(result, c) for c in _RESULT_COLUMNS]
        values[_RESULT_COLUMNS.index("correct")] = (
            None if result.correct is None else int(result.correct)
        )
        values[-1] = result.created_at or time.time()
        marks = ", ".join("?" for _ in _RESULT_COLUMNS)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    f"INSERT INTO compare_results (run_id, {', '.join(_RESULT_COLUMNS)}) "
                    f"VALUES (?, {marks})", (run_id, *values),
                )  # fmt: skip
                self._db.execute("UPDATE compare_runs SET updated_at = ? WHERE id = ?",
                                 (time.time(), run_id))  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def results(self, run_id: int) -> list[AttemptResult]:
        """Every saved answer of a run, in model, problem, attempt order."""
        rows = self._rows(
            f"SELECT {', '.join(_RESULT_COLUMNS)} FROM compare_results WHERE run_id = ? "
            "ORDER BY model_index, problem_index, attempt", (run_id,),
        )  # fmt: skip
        out = []
        for row in rows:
            data = dict(row)
            data["correct"] = None if data["correct"] is None else bool(data["correct"])
            out.append(AttemptResult(**data))
        return out

    def done_keys(self, run_id: int) -> set[tuple[int, int, int]]:
        """(model, problem, attempt) of every answer already saved."""
        rows = self._rows("SELECT model_index, problem_index, attempt FROM compare_results "
                          "WHERE run_id = ?", (run_id,))  # fmt: skip
        return {(r[0], r[1], r[2]) for r in rows}
