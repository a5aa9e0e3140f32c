"""One engine, two users: the window and the local server take turns through `EngineShare`.

The chat window's engine thread and the OpenAI-compatible server (app/serve) drive the same
engine client. Whoever loads a model or answers holds the share; the other waits for it
(never cancels it), and sees who holds it, so the window can say the engine is busy with
another program's request and the server can wait for the window's answer. Each load takes
a ticket: a holder whose ticket is no longer the current one knows the other user loaded
another model since, and loads its own again before answering. No Qt, no engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WINDOW = "window"
SERVER = "server"

Listener = Callable[[str | None], None]


class EngineShare:
    """A lock with a name on it, a load ticket and listeners told when the holder changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: str | None = None
        self._ticket = 0
        self._listeners: list[Listener] = []

    @property
    def holder(self) -> str | None:
        """Who is using the engine now (WINDOW, SERVER), or None."""
        return self._holder

    def acquire(self, owner: str, timeout_s: float | None = None,
                should_stop: Callable[[], bool] | None = None) -> bool:  # fmt: skip
        """Wait until the engine is free and take it (any thread may give it back).

        Returns False when `timeout_s` passed or `should_stop()` became true first (checked
        every 50 ms).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._holder is not None:
                if should_stop is not None and should_stop():
                    return False
                left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                if left <= 0:
                    return False
                self._cond.wait(left)
            self._holder = owner
        self._tell(owner)
        return True

    def release(self, owner: str) -> None:
        """Give the engine back; `owner` must be the one that took it."""
        with self._cond:
            if self._holder != owner:
                raise RuntimeError(f"EngineShare: {owner} gave back what {self._holder} holds")
            self._holder = None
            self._cond.notify_all()
        self._tell(None)

    # -- loads ---------------------------------------------------------------------------
    def note_load(self) -> int:
        """Record that the holder loaded a model; its ticket (compare with `is_current`)."""
        with self._cond:
            self._ticket += 1
            return self._ticket

    def is_current(self, ticket: int | None) -> bool:
        """Whether the model loaded with `ticket` is still the engine's model."""
        return ticket is not None and ticket == self._ticket

    # -- listeners -----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call `listener(holder)` (from the thread that took or gave back the engine)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _tell(self, holder: str | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(holder)
            except Exception:  # a listener's fault must not break the engine's users
                import logging

                logging.getLogger(__name__).exception("EngineShare listener failed")
