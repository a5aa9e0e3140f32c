"""OpenAI's `stop` strings, applied to the answer as it streams (the engine has none).

`StopCutter.feed` returns the answer text that may be sent now: an ending that could be the
start of a stop string is held back until the next piece shows whether it is; when a stop
string appears, the text before it is returned and the answer is over (the caller cancels
the engine). Stop strings apply to the answer only, never to the thinking. Each feed looks at
the held-back tail and the new piece only, so the cost per piece does not grow.
"""

from __future__ import annotations

MAX_STOPS = 4  # as OpenAI's API


class StopCutter:
    """Cuts an answer stream at the first of `stops`."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._keep = max((len(s) for s in self.stops), default=1) - 1
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text to send now, whether a stop string ended the answer)."""
        if not self.stops:
            return text, False
        buf = self._held + text
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buf[:cut], True
        keep = next((k for k in range(min(self._keep, len(buf)), 0, -1)
                     if any(s.startswith(buf[-k:]) for s in self.stops)), 0)  # fmt: skip
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        """The held-back text, when the answer ended without a stop string."""
        held, self._held = self._held, ""
        return held
