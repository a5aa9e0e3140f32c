"""A stand-in engine client that plays a script: for screenshots, the UI benchmark and
UI-only tests. Same interface as `app.core.engine.EngineClient` (load / chat / close /
active) and its generations are read the same way (`next_event(timeout)`, cancel(),
answer_now()); they also support a thinking budget, the answer reserve, a pause point (to
look at a state mid-stream), a simulated crash and answering without thinking (`thinking=False`,
as a model whose chat template has a thinking switch, e.g. Qwen3: the answer only).

Like the engine, the script's raw tokens go through the one think-tag state machine
(`ThinkSplitter`, backends/think_tags.py, re-exported by app.core.reasoning because app/ui
never imports backends) and come out as typed `TextDelta` parts with exact token counts,
batched by time the way the engine batches them (the first delta at once, then at most every
`FLUSH_S`); the raw text comes once, in `StreamDone.raw`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta
from app.core.reasoning import ThinkSplitter

FLUSH_S = 0.033  # as the engine's DELTA_FLUSH_S (backends/base.py)
CLOSE = "</think>\n\n"
CRASH = (
    "The engine process was killed (SIGKILL). Ponder is fine; load the model again, or "
    "choose another model."
)


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
    """One scripted answer, played on its own thread (the stand-in engine process)."""

    def __init__(self, script: Script, params: dict[str, Any], n_ctx: int, rid: str) -> None:
        self.script = script
        self.request_id = rid
        self.thinking = params.get("thinking") is not False  # False: the answer only
        self.thinking_budget = params.get("thinking_budget")
        self.max_tokens = params.get("max_tokens")
        self.answer_reserve = int(params.get("answer_reserve") or 0)
        self.n_ctx = n_ctx
        self.cancelled = False
        self.answer_requested = False
        self.finished = False
        self._wake = threading.Event()
        self.paused = threading.Event()  # set while waiting at the pause point
        self._events: queue.Queue[StreamEvent] = queue.Queue()
        self._thread = threading.Thread(target=self._play, daemon=True, name="scripted-engine")
        self._thread.start()

    def cancel(self) -> None:
        self.cancelled = True
        self._wake.set()

    def answer_now(self) -> None:
        self.answer_requested = True
        self._wake.set()

    def resume(self) -> None:
        self._wake.set()

    def next_event(self, timeout_s: float | None = None) -> StreamEvent | None:
        """The next event, or None when nothing arrived in time (or the stream has ended)."""
        if self.finished:
            return None
        try:
            event = self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None
        self.finished = isinstance(event, StreamDone | StreamError)
        return event

    def __iter__(self) -> Iterator[StreamEvent]:
        while not self.finished:
            event = self.next_event(None)
            if event is not None:
                yield event

    # -- the stand-in engine -------------------------------------------------------------
    def _limit(self) -> int:
        room = self.n_ctx - self.script.prompt_tokens
        return room if self.max_tokens is None else min(self.max_tokens, room)

    def _play(self) -> None:
        s, rid, t0 = self.script, self.request_id, time.perf_counter()
        # without thinking the prompt closes the think block (as Qwen3's template does with
        # enable_thinking=false): the model writes the answer only
        self._events.put(StreamStarted(rid, s.prompt_tokens, self.thinking))
        splitter = ThinkSplitter(start_in_thinking=self.thinking)
        batch, raw = _Batch(rid, self._events), []
        tokens = [*s.thinking, CLOSE, *s.answer] if self.thinking else list(s.answer)
        count, i, stop, ended_by = 0, 0, "eos", None
        reserve = min(self.answer_reserve, self.n_ctx // 4)
        while i < len(tokens):
            if s.pause_at is not None and count == s.pause_at and not self._wake.is_set():
                batch.flush()
                self.paused.set()
                self._wake.wait()
            if s.crash_at is not None and count >= s.crash_at:
                batch.flush()
                self._events.put(StreamError(rid, "engine_crashed", CRASH, "scripted crash"))
                return
            if self.cancelled:
                stop = "cancelled"
                break
            if count >= self._limit():
                stop = "length"
                break
            if splitter.in_thinking and ended_by is None:
                used = s.prompt_tokens + count
                if self.answer_requested:
                    ended_by = "answer_now"
                elif self.thinking_budget is not None and count >= self.thinking_budget:
                    ended_by = "budget"
                elif reserve and used >= self.n_ctx - reserve:
                    ended_by = "context"
                if ended_by is not None:
                    i = len(s.thinking)  # jump to the closing tag
            text = tokens[i]
            i += 1
            count += 1
            raw.append(text)
            batch.add(splitter.feed(text, 1))
            self._pace(t0, count, batch)
        batch.add(splitter.finish())
        batch.flush()
        elapsed = time.perf_counter() - t0
        self._events.put(StreamDone(
            rid, stop, count, s.prompt_tokens, 0.01, count / max(elapsed, 1e-6), elapsed,
            splitter.thinking_tokens, splitter.in_thinking, splitter.answer_tokens,
            ended_by, "".join(raw), {"thinking_off": not self.thinking}))  # fmt: skip

    def _pace(self, t0: float, count: int, batch: _Batch) -> None:
        s = self.script
        if s.delay_s:
            due = time.perf_counter() + s.delay_s
        elif s.rate:
            due = t0 + count / s.rate
        else:
            batch.flush_if_due()
            return
        batch.flush_if_due()
        while (left := due - time.perf_counter()) > 0.002 and not self.cancelled:
            if batch.pending and batch.due_at() < due:
                time.sleep(max(0.0, batch.due_at() - time.perf_counter()))
                batch.flush()
                continue
            time.sleep(left)


class _Batch:
    """Deltas gathered between flushes: the first at once, then at most every FLUSH_S."""

    def __init__(self, rid: str, out: queue.Queue[StreamEvent]) -> None:
        self.rid, self.out = rid, out
        self.thinking: list[str] = []
        self.answer: list[str] = []
        self.tokens = [0, 0]
        self.last = -1e9

    @property
    def pending(self) -> bool:
        return bool(self.thinking or self.answer or any(self.tokens))

    def due_at(self) -> float:
        return self.last + FLUSH_S

    def add(self, split: Any) -> None:
        if split.thinking:
            self.thinking.append(split.thinking)
        if split.answer:
            self.answer.append(split.answer)
        self.tokens[0] += split.thinking_tokens
        self.tokens[1] += split.answer_tokens

    def flush_if_due(self) -> None:
        if time.perf_counter() >= self.due_at():
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.out.put(TextDelta(self.rid, "".join(self.thinking), "".join(self.answer),
                                   self.tokens[0], self.tokens[1]))  # fmt: skip
            self.thinking, self.answer, self.tokens = [], [], [0, 0]
        self.last = time.perf_counter()


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

    @property
    def active(self) -> ScriptedGeneration | None:
        gen = self.generations[-1] if self.generations else None
        return gen if gen is not None and gen._thread.is_alive() else None

    def load(self, path: str, **opts: Any) -> dict[str, Any]:
        if (gen := self.active) is not None:  # as the engine: stop an answer first
            gen.cancel()
            gen._thread.join(5)
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
        max_tokens: int | None = None,
        thinking_budget: int | None = None,
        answer_reserve: int = 1024,
        seed: int | None = None,
        thinking: bool = True,
    ) -> ScriptedGeneration:
        self.calls.append([dict(m) for m in messages])
        params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                  "thinking_budget": thinking_budget, "answer_reserve": answer_reserve}  # fmt: skip
        if not thinking:  # as the engine client sends it; the script plays its answer only
            params["thinking"] = False
        self.params.append(params)
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        n_ctx = int((self.model_info or {}).get("n_ctx") or self.n_ctx)
        gen = ScriptedGeneration(script, params, n_ctx, f"s{len(self.generations) + 1}")
        self.generations.append(gen)
        return gen

    def close(self, timeout_s: float = 5.0) -> None:
        self.closed += 1
        for gen in self.generations:
            gen.cancel()

    def restart(self) -> None:
        self.close()

    def __enter__(self) -> ScriptedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
