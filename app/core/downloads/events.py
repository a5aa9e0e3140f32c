"""Download events for a GUI or a CLI, and the thread-safe control (pause / cancel) object.

The downloader runs in the caller's thread and calls `on_event(event)` for each event; a
GUI wraps it in a worker thread and forwards the events. `DownloadControl` is the only
object another thread touches: `pause()` and `cancel()` are checked between chunks, and
they also run the transfer's interrupt (`interrupting`), which shuts its socket from the
asking thread: a read blocked on a stalled server returns at once, not after the stall
timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PlanStarted:
    """The plan is about to run: `done` bytes are already on disk out of `total`."""

    repo: str
    commit: str
    total: int
    done: int
    files: int


@dataclass(frozen=True)
class FileStarted:
    """A file's transfer starts; `resumed_from` bytes were already on disk."""

    path: str
    size: int
    resumed_from: int


@dataclass(frozen=True)
class Progress:
    """Bytes of one file and of the whole plan; speed in bytes/s (smoothed), ETA in seconds."""

    path: str
    file_done: int
    file_total: int
    done: int
    total: int
    speed: float
    eta_s: float | None


@dataclass(frozen=True)
class Verifying:
    """Hashing data already on disk (a resumed prefix or a blob another tool downloaded)."""

    path: str
    done: int
    total: int


@dataclass(frozen=True)
class Retrying:
    """A transient failure; the transfer continues from the bytes on disk after `delay_s`."""

    path: str
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class FileDone:
    """A file is complete and verified; `downloaded` is False when it was already cached."""

    path: str
    local_path: str
    downloaded: bool


@dataclass(frozen=True)
class PlanFinished:
    """The run ended: complete, paused (partial data kept) or cancelled."""

    status: Literal["complete", "paused", "cancelled"]
    done: int
    total: int


DownloadEvent = (
    PlanStarted | FileStarted | Progress | Verifying | Retrying | FileDone | PlanFinished
)


class DownloadControl:
    """Pause / cancel flags shared between the GUI thread and the download thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cancel = False
        self._delete_partial = False
        self._interrupts: list[Callable[[], None]] = []

    def pause(self) -> None:
        """Stop now (a transfer in progress is interrupted), keeping partial data for a
        later resume."""
        self._stop.set()
        self._interrupt()

    def cancel(self, delete_partial: bool = False) -> None:
        """Stop now; with `delete_partial`, remove the partial files."""
        with self._lock:
            self._cancel = True
            self._delete_partial = self._delete_partial or delete_partial
        self._stop.set()
        self._interrupt()

    @contextlib.contextmanager
    def interrupting(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While inside, a pause or cancel also calls `interrupt` (on the thread that asks;
        it may run twice): the transfer gives it a way to end a blocked read."""
        with self._lock:
            self._interrupts.append(interrupt)
        try:
            if self._stop.is_set():  # asked before the interrupt was there
                _call(interrupt)
            yield
        finally:
            with self._lock:
                self._interrupts.remove(interrupt)

    def _interrupt(self) -> None:
        with self._lock:
            interrupts = list(self._interrupts)
        for interrupt in interrupts:
            _call(interrupt)

    def reset(self) -> None:
        """Clear the flags so the same control can run (resume) the download again."""
        with self._lock:
            self._cancel = False
            self._delete_partial = False
        self._stop.clear()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancel

    @property
    def delete_partial(self) -> bool:
        with self._lock:
            return self._delete_partial

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` (a retry back-off); True when a stop was requested meanwhile."""
        return self._stop.wait(seconds)


def _call(interrupt: Callable[[], None]) -> None:
    try:
        interrupt()
    except Exception:  # a failed interrupt leaves the stall timeout to end the read
        logging.getLogger(__name__).exception("interrupting the transfer failed")


class SpeedMeter:
    """Exponentially smoothed transfer speed over ~`window_s` seconds."""

    def __init__(self, window_s: float = 3.0, clock=time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._last_t = clock()
        self._pending = 0
        self.speed = 0.0

    def add(self, nbytes: int) -> float:
        self._pending += nbytes
        now = self._clock()
        dt = now - self._last_t
        if dt >= 0.2:
            rate = self._pending / dt
            alpha = min(1.0, dt / self._window)
            self.speed = rate if self.speed == 0.0 else self.speed + alpha * (rate - self.speed)
            self._pending = 0
            self._last_t = now
        return self.speed

    def eta(self, remaining: int) -> float | None:
        return remaining / self.speed if self.speed > 0 else None
