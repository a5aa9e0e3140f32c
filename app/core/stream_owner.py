"""Who is streaming a chat message: the owner of a `streaming` row, and whether it still lives.

A streaming assistant row records its owner (process id and that process's start time), so
that a second Ponder on the same database can tell a live answer from one left behind by a
killed process: only rows whose owner is gone are marked interrupted at start-up. Within one
process, the rows a store is streaming right now are registered here too, so a second store
in the same process (tests, a restarted window) can recover a row its first store dropped.
Also the words for a failed save. No Qt.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass

_LIVE: set[tuple[str, int]] = set()  # (database path, message id) streamed by this process
_LIVE_LOCK = threading.Lock()
_START_TOLERANCE_S = 1.0  # process start times are read with about 10 ms precision


@dataclass(frozen=True)
class Owner:
    pid: int
    started: float  # the process's start time (Unix seconds), to tell a reused pid apart


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (Unix seconds), or None if there is no such process."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def this_process() -> Owner:
    return Owner(os.getpid(), process_start_time(os.getpid()) or 0.0)


def register(db_path: str, message_id: int) -> None:
    with _LIVE_LOCK:
        _LIVE.add((db_path, message_id))


def unregister(db_path: str, message_id: int) -> None:
    with _LIVE_LOCK:
        _LIVE.discard((db_path, message_id))


def is_alive(db_path: str, message_id: int, pid: int | None, started: float | None) -> bool:
    """Whether the row's owner is still streaming it (another live process, or this one)."""
    if pid is None:
        return False  # written by a Ponder that did not record owners
    if pid == os.getpid():
        with _LIVE_LOCK:
            return (db_path, message_id) in _LIVE
    actual = process_start_time(pid)
    return actual is not None and abs(actual - (started or 0.0)) <= _START_TOLERANCE_S


DISK_FULL = (
    "Ponder could not save this chat: the disk is full. Free some space; the answer so far "
    "is shown but not saved."
)


def describe_save_error(exc: BaseException) -> str:
    """A failed write to the chat database, in words a person can act on."""
    text = str(exc).lower()
    if "full" in text or getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        return DISK_FULL
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
        return DISK_FULL
    if "readonly" in text or "read-only" in text:
        reason = "the chat database is read-only"
    elif "locked" in text or "busy" in text:
        reason = "another program keeps the chat database locked"
    elif "disk i/o" in text or isinstance(exc, OSError):
        reason = "the disk reported an error"
    elif isinstance(exc, sqlite3.DatabaseError) and "malformed" in text:
        reason = "the chat database is damaged"
    else:
        reason = str(exc) or type(exc).__name__
    return f"Ponder could not save this chat: {reason}. The answer so far is shown but not saved."
