"""A stand-in engine for timing tests of the engine process and its client.

The host and the protocol are the real ones; only the model is fake, so a test can make a
load as slow as it likes or a stream as long as it likes. `host_command()` starts
`backends.host` with this engine registered as "fake" (load with engine="fake").

Load options: `delay_s` (seconds the load takes), `token_delay_s` (seconds per token),
`thinking_tokens` (how many thinking tokens come before the answer).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def host_command() -> list[str]:
    """A real engine process (`backends.host`) that also knows the "fake" engine."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        "import backends.base as base; base.ENGINES['fake'] = 'fake_engine:FakeEngine'; "
        "from backends.host import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code]


class FakeEngine:
    """Says "t0 t1 …" as thinking, then "a0 a1 …" as the answer, one token at a time."""

    name = "fake"

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.opts: dict[str, Any] = {}

    def load(self, path: str, **opts: Any) -> dict[str, Any]:
        time.sleep(float(opts.get("delay_s") or 0))
        self.opts = opts
        self.info = {"path": path, "n_ctx": opts.get("n_ctx") or 4096}
        return self.info

    def unload(self) -> None:
        self.info = {}

    def generate(self, cmd: dict[str, Any], control: Any, emit: Any, emit_parts: Any) -> dict:
        request_id = cmd["id"]
        max_tokens = (cmd.get("params") or {}).get("max_tokens") or 100
        thinking = int(self.opts.get("thinking_tokens", max_tokens // 2))
        delay = float(self.opts.get("token_delay_s") or 0)
        emit({"event": "started", "id": request_id, "prompt_tokens": 3, "thinking_open": True})
        counts, raw, stop = [0, 0], ["<think>\n"], "length"
        for i in range(max_tokens):
            if control.cancelled:
                stop = "cancelled"
                break
            in_thinking = i < thinking and not control.answer_now
            text = f"{'t' if in_thinking else 'a'}{i} "
            emit_parts(text, "", 1, 0) if in_thinking else emit_parts("", text, 0, 1)
            counts[0 if in_thinking else 1] += 1
            raw.append(text)
            time.sleep(delay)
        return {
            "completion_tokens": sum(counts),
            "thinking_tokens": counts[0],
            "answer_tokens": counts[1],
            "prompt_tokens": 3,
            "elapsed_s": 0.0,
            "stop_reason": stop,
            "raw": "".join(raw),
        }
