"""A stand-in engine client that plays a script: for screenshots, the UI benchmark and
UI-only tests. Same interface as `app.core.engine.EngineClient` (load / chat / close), and
its generations support cancel(), answer_now(), a thinking budget, a pause point (to look
at a state mid-stream) and a simulated crash.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta


@dataclass
class Script:
    thinking: list[str] = field(default_factory=lambda: [" Two", " plus", " two", " is", " four."])
    answer: list[str] = field(default_factory=lambda: ["The", " answer", " is", " **4**."])
    delay_s: float = 0.0  # between tokens
    rate: float = 0.0  # tokens per second (paced on a schedule), 0: as fast as possible
    pause_at: int | None = None  # wait for resume() after this many tokens
    crash_at: int | None = None  # report an engine crash after this many tokens
    prompt_tokens: int = 12
    load_error: tuple[str, str] | None = None


class ScriptedGeneration:
    """One scripted answer; iterate it for events. cancel()/answer_now() from any thread."""

    def __init__(self, script: Script, thinking_budget: int | None, max_tokens: int) -> None:
        self.script = script
        self.thinking_budget = thinking_budget
        self.max_tokens = max_tokens
        self.cancelled = False
        self.answer_requested = False
        self._wake = threading.Event()
        self.paused = threading.Event()  # set while waiting at the pause point

    def cancel(self) -> None:
        self.cancelled = True
        self._wake.set()

    def answer_now(self) -> None:
        self.answer_requested = True
        self._wake.set()

    def resume(self) -> None:
        self._wake.set()

    def __iter__(self) -> Iterator[StreamEvent]:
        s, t0 = self.script, time.perf_counter()
        yield StreamStarted("s", s.prompt_tokens, True)
        count, thinking_tokens, in_thinking, ended_in_thinking = 0, 0, True, False
        tokens = [("t", x) for x in s.thinking] + [("close", "</think>")]
        tokens += [("a", x) for x in s.answer]
        i, stop = 0, "eos"
        while i < len(tokens):
            if s.pause_at is not None and count == s.pause_at and not self._wake.is_set():
                self.paused.set()
                self._wake.wait()
            if s.crash_at is not None and count >= s.crash_at:
                yield StreamError(
                    "s",
                    "engine_crashed",
                    "The engine process was killed (SIGKILL). Ponder is fine; "
                    "load the model again, or choose another model.",
                    "scripted crash",
                )
                return
            if self.cancelled:
                stop, ended_in_thinking = "cancelled", in_thinking
                break
            if count >= self.max_tokens:
                stop, ended_in_thinking = "length", in_thinking
                break
            over = self.thinking_budget is not None and thinking_tokens >= self.thinking_budget
            if in_thinking and (self.answer_requested or over):
                i = len(s.thinking)  # jump to the closing tag
            kind, text = tokens[i]
            i += 1
            count += 1
            if kind == "t":
                thinking_tokens += 1
                yield TextDelta("s", text, "", text, 1)
            elif kind == "close":
                in_thinking = False
                yield TextDelta("s", "", "", text + "\n\n", 1)
            else:
                yield TextDelta("s", "", text, text, 1)
            if s.delay_s:
                time.sleep(s.delay_s)
            elif s.rate:
                ahead = t0 + count / s.rate - time.perf_counter()
                if ahead > 0.002:
                    time.sleep(ahead)
        elapsed = time.perf_counter() - t0
        yield StreamDone(
            "s",
            stop,
            count,
            s.prompt_tokens,
            0.01,
            count / max(elapsed, 1e-6),
            elapsed,
            thinking_tokens,
            ended_in_thinking,
        )


class ScriptedClient:
    """Plays `scripts` in order (the last one repeats); records the messages it was sent."""

    def __init__(
        self, *scripts: Script, n_ctx: int = 8192, name: str = "DeepSeek-R1-Distill-Qwen-7B"
    ) -> None:
        self.scripts = list(scripts) or [Script()]
        self.n_ctx = n_ctx
        self.name = name
        self.calls: list[list[dict[str, str]]] = []
        self.params: list[dict[str, Any]] = []
        self.generations: list[ScriptedGeneration] = []
        self.loads: list[str] = []
        self.closed = 0
        self.model_info: dict[str, Any] | None = None

    def load(self, path: str, **opts: Any) -> dict[str, Any]:
        self.loads.append(path)
        err = self.scripts[0].load_error
        if err is not None:
            from app.core.engine import EngineError

            raise EngineError(err[0], err[1])
        self.model_info = {
            "path": path,
            "engine": opts.get("engine") or "llama_cpp",
            "name": self.name,
            "n_ctx": opts.get("n_ctx") or self.n_ctx,
            "architecture": "qwen2",
        }
        return self.model_info

    def chat(
        self,
        messages: list[dict[str, str]],
        temperature: float = 0.6,
        top_p: float = 0.95,
        max_tokens: int = 4096,
        thinking_budget: int | None = None,
        seed: int | None = None,
    ) -> ScriptedGeneration:
        self.calls.append([dict(m) for m in messages])
        self.params.append(
            {
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
                "thinking_budget": thinking_budget,
            }
        )
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        gen = ScriptedGeneration(script, thinking_budget, max_tokens)
        self.generations.append(gen)
        return gen

    def close(self, timeout_s: float = 5.0) -> None:
        self.closed += 1
        for gen in self.generations:
            gen.cancel()

    def restart(self) -> None:
        self.close()
