"""Run a comparison: models one at a time through the engine, each problem N times.

Each model is loaded (planned settings for a local file), answers every problem `repeats`
times, and is unloaded before the next one, so two models that would not fit together are
compared on one machine. Each answer is saved in the chat database as it arrives
(app/core/compare/store.py); `run()` skips answers already saved, so a cancelled or
interrupted comparison resumes where it stopped and no answer is asked for twice. `cancel()`
(any thread) stops the answer being written; that answer is not saved.

The engine may be shared with the chat window (app/core/engine_share.py): the runner takes it
for each answer, and when the window loaded its own model in between, loads the compared
model again first. Complete answers feed the planner's calibration for the model on this
machine through `ModelStats.record_answer` (speed, memory and thinking length), under the same
rules as the window's answers.
No Qt: `on_progress` is called on the runner's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.compare.answers import final_answer, is_correct
from app.core.compare.models import ModelSpec, load_arguments, planned_load
from app.core.compare.problems import Problem
from app.core.compare.store import AttemptResult, CompareStore
from app.core.engine.events import StreamDone, StreamError, TextDelta
from app.core.engine_share import EngineShare

log = logging.getLogger(__name__)
COMPARE = "compare"  # the EngineShare holder name
BOXED_HINT = "Please reason step by step, and put your final answer within \\boxed{}."
EVENT_POLL_S = 0.25
RELOAD_KINDS = ("engine_crashed", "engine_hung")
Planner = Callable[..., tuple[dict[str, Any], dict[str, Any]]]  # (spec, n_ctx) -> (opts, meta)


@dataclass(frozen=True)
class CompareSettings:
    """How every model answers (R1's recommended sampling by default)."""

    repeats: int = 2
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int | None = None
    thinking_budget: int | None = None
    n_ctx: int | None = None
    seed: int | None = None  # attempt k of every problem uses seed + k
    reference: int = 0  # the model the others are compared with where nothing is expected
    boxed_hint: bool = True  # ask for the final answer in \boxed{}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareSettings:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Progress:
    """Where a comparison stands; `phase`: loading, answering, answered, model_failed,
    finished, cancelled."""

    phase: str
    done: int
    total: int
    model_index: int = -1
    model: str = ""
    problem_index: int = -1
    attempt: int = -1
    seconds_left: float | None = None
    message: str = ""
    result: AttemptResult | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def prompt_for(problem: Problem, settings: CompareSettings) -> str:
    if settings.boxed_hint and "\\boxed" not in problem.prompt:
        return f"{problem.prompt}\n\n{BOXED_HINT}"
    return problem.prompt


class CompareRunner:
    """Runs saved comparisons through one engine client (driven from one thread)."""

    def __init__(self, client: Any, store: CompareStore, share: EngineShare | None = None,
                 stats: Any = None, on_progress: Callable[[Progress], None] | None = None,
                 planner: Planner | None = planned_load) -> None:  # fmt: skip
        self.client = client
        self.store = store
        self.share = share or EngineShare()
        self.stats = stats
        self.on_progress = on_progress
        self.planner = planner
        self._cancel = threading.Event()
        self._generation: Any = None
        self._times: dict[int, list[float]] = {}
        self._load_times: list[float] = []
        self._ticket: int | None = None
        self._per_model = 1

    # -- control (any thread) ------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the comparison: the answer being written stops and is not saved. A cancel
        before `run` starts counts too; a cancelled runner stays so (resume with a new one)."""
        self._cancel.set()
        gen = self._generation
        if gen is not None:
            gen.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- running -------------------------------------------------------------------------
    def create(self, models: list[ModelSpec], problems: list[Problem],
               settings: CompareSettings | None = None, title: str = "") -> int:  # fmt: skip
        """Save a new comparison; returns its id (answer it with `run`)."""
        settings = settings or CompareSettings()
        if not 1 <= len(models) <= 4 or not problems or settings.repeats < 1:
            raise ValueError("a comparison needs 1-4 models, problems and repeats >= 1")
        title = title or " vs ".join(m.label for m in models)
        return self.store.create_run(title, [m.to_dict() for m in models], problems,
                                     settings.to_dict())  # fmt: skip

    def run(self, run_id: int) -> str:
        """Answer what is still missing; returns the run's status (complete, cancelled,
        failed: a model could not be loaded, its answers are asked for on resume)."""
        record = self.store.run(run_id)
        if record is None:
            raise ValueError(f"no comparison {run_id}")
        settings = CompareSettings.from_dict(record.settings)
        models = [ModelSpec.from_dict(m) for m in record.models]
        done = self.store.done_keys(run_id)
        self._times = {}
        self._per_model = max(1, len(record.problems) * settings.repeats)
        for r in self.store.results(run_id):
            if not r.error:
                self._times.setdefault(r.model_index, []).append(r.elapsed_s)
        self.store.set_status(run_id, "running")
        total, failed = record.total, False
        for mi, spec in enumerate(models):
            todo = [(pi, a) for pi in range(len(record.problems))
                    for a in range(settings.repeats) if (mi, pi, a) not in done]  # fmt: skip
            if not todo or self.cancelled:
                continue
            ok = self._run_model(run_id, mi, spec, record.problems, todo, settings, done, total)
            failed = failed or not ok
            if self.cancelled:
                break
        status = "cancelled" if self.cancelled else "failed" if failed else "complete"
        self.store.set_status(run_id, status)
        phase = "cancelled" if self.cancelled else "finished"
        self._tell(Progress(phase, len(done), total, message=status))
        return status

    def _run_model(self, run_id: int, mi: int, spec: ModelSpec, problems: list[Problem],
                   todo: list[tuple[int, int]], settings: CompareSettings,
                   done: set[tuple[int, int, int]], total: int) -> bool:  # fmt: skip
        self._tell(Progress("loading", len(done), total, mi, spec.label,
                            seconds_left=self._left(mi, done, total, len(todo)),
                            message=f"Loading {spec.label}…"))  # fmt: skip
        try:
            loaded = self._load(spec, settings)
            if loaded is None:  # cancelled while waiting for the engine
                return True
        except Exception as exc:  # noqa: BLE001 - EngineError and the like, in words
            message = getattr(exc, "message", "") or str(exc)
            said = f"{spec.label} could not be loaded: {message}"
            self._tell(Progress("model_failed", len(done), total, mi, spec.label, message=said))
            return False
        try:
            for pi, attempt in todo:
                if self.cancelled:
                    return True
                left = self._left(mi, done, total, len(todo) - todo.index((pi, attempt)))
                self._tell(Progress("answering", len(done), total, mi, spec.label, pi, attempt,
                                    left))  # fmt: skip
                result = self._answer(spec, loaded, mi, pi, attempt, problems[pi], settings)
                if result is None:  # cancelled: not saved, asked again on resume
                    return True
                self.store.save_result(run_id, result)
                done.add(result.key)
                if not result.error:
                    self._times.setdefault(mi, []).append(result.elapsed_s)
                self._tell(Progress("answered", len(done), total, mi, spec.label, pi, attempt,
                                    self._left(mi, done, total, len(todo) - todo.index(
                                        (pi, attempt)) - 1), result=result))  # fmt: skip
            return True
        finally:
            self._unload()

    def _load(self, spec: ModelSpec,
              settings: CompareSettings) -> tuple[str, dict, dict] | None:  # fmt: skip
        path, options = load_arguments(spec)
        meta: dict[str, Any] = {"name": spec.label}
        if self.planner is not None and not spec.is_remote:
            planned, meta = self.planner(spec, settings.n_ctx)
            options = {**options, **planned}
        elif settings.n_ctx and not spec.is_remote:
            options.setdefault("n_ctx", settings.n_ctx)
        loaded = (path, options, meta)
        return loaded if self._load_now(loaded) else None

    def _load_now(self, loaded: tuple[str, dict, dict]) -> bool:
        """Load while holding the engine (the window waits for it meanwhile); False when
        cancelled before the engine was free."""
        t0 = time.monotonic()
        if not self._acquire():
            return False
        try:
            self.client.load(loaded[0], **loaded[1])
            self._ticket = self.share.note_load()
        finally:
            self.share.release(COMPARE)
        self._load_times.append(time.monotonic() - t0)
        if self.stats is not None and not loaded[0].startswith(("http://", "https://")):
            meta = loaded[2]
            self.stats.touch(loaded[0], meta.get("name") or "", model_id=meta.get("model_id"),
                             quant=meta.get("quant"))  # fmt: skip
        return True

    def _acquire(self) -> bool:
        return self.share.acquire(COMPARE, should_stop=self._cancel.is_set)

    def _unload(self) -> None:
        """Free the model's memory before the next one is loaded."""
        if not self.share.acquire(COMPARE, timeout_s=60.0):
            return
        try:
            if self.share.is_current(self._ticket):
                self.client.unload()
        except Exception:  # noqa: BLE001 - a dead engine holds no memory
            log.exception("unloading a compared model failed")
        finally:
            self._ticket = None
            self.share.release(COMPARE)

    def _answer(self, spec: ModelSpec, loaded: tuple[str, dict, dict], mi: int, pi: int,
                attempt: int, problem: Problem,
                settings: CompareSettings) -> AttemptResult | None:  # fmt: skip
        if not self._acquire():
            return None
        try:
            if self.cancelled:  # stopped before this answer began: not asked at all
                return None
            if not self.share.is_current(self._ticket) or self.client.model_info is None:
                self._load_now_held(loaded)
            seed = None if settings.seed is None else settings.seed + attempt
            gen = self.client.chat(
                [{"role": "user", "content": prompt_for(problem, settings)}],
                temperature=settings.temperature, top_p=settings.top_p,
                max_tokens=settings.max_tokens, thinking_budget=settings.thinking_budget,
                seed=seed,
            )  # fmt: skip
            self._generation = gen
            if self.cancelled:
                gen.cancel()
            return self._read(gen, loaded, mi, pi, attempt, problem)
        except Exception as exc:  # noqa: BLE001 - a failed reload: saved as this answer's error
            message = getattr(exc, "message", "") or str(exc)
            return AttemptResult(mi, pi, attempt, stop_reason="error", error=message)
        finally:
            self._generation = None
            self.share.release(COMPARE)

    def _load_now_held(self, loaded: tuple[str, dict, dict]) -> None:
        """Load again (the window loaded its model, or the engine restarted after a crash)."""
        self.client.load(loaded[0], **loaded[1])
        self._ticket = self.share.note_load()

    def _read(self, gen: Any, loaded: tuple[str, dict, dict], mi: int, pi: int, attempt: int,
              problem: Problem) -> AttemptResult | None:  # fmt: skip
        thinking: list[str] = []
        answer: list[str] = []
        while True:
            event = gen.next_event(EVENT_POLL_S)
            if event is None:
                if getattr(gen, "finished", False):
                    return AttemptResult(mi, pi, attempt, stop_reason="error",
                                         error="The answer ended without a word.")  # fmt: skip
                continue
            if isinstance(event, TextDelta):
                thinking.append(event.thinking)
                answer.append(event.answer)
            elif isinstance(event, StreamError):
                if event.kind in RELOAD_KINDS:
                    self._ticket = None  # the next answer loads the model again
                return AttemptResult(mi, pi, attempt, "".join(answer), "".join(thinking),
                                     stop_reason="error", error=event.message)  # fmt: skip
            elif isinstance(event, StreamDone):
                if event.stop_reason == "cancelled" and self.cancelled:
                    return None
                return self._finished(event, "".join(answer), "".join(thinking), loaded,
                                      mi, pi, attempt, problem)  # fmt: skip

    def _finished(self, done: StreamDone, answer: str, thinking: str,
                  loaded: tuple[str, dict, dict], mi: int, pi: int, attempt: int,
                  problem: Problem) -> AttemptResult:  # fmt: skip
        extra = done.extra or {}
        peak = extra.get("peak_memory_bytes") or extra.get("peak_rss_bytes")
        final = final_answer(answer)
        correct = None if problem.expected is None else is_correct(answer, problem.expected)
        self._record(loaded, done, peak)
        return AttemptResult(
            mi, pi, attempt, answer, thinking, final, correct, done.thinking_tokens,
            done.answer_tokens, done.elapsed_s, done.decode_tps,
            int(peak) if peak else None, done.stop_reason,
        )  # fmt: skip

    def _record(self, loaded: tuple[str, dict, dict], done: StreamDone, peak: Any) -> None:
        """The window's rule (main_window._record_answer): complete answers only."""
        if self.stats is None or done.stop_reason != "eos":
            return
        path, options, meta = loaded
        try:
            self.stats.record_answer(
                path, done.decode_tps, completion_tokens=done.completion_tokens,
                peak_memory_bytes=peak, predicted_tps=meta.get("predicted_tps"),
                name=meta.get("name") or "", model_id=meta.get("model_id"),
                quant=meta.get("quant"), n_ctx=(self.client.model_info or {}).get("n_ctx")
                or options.get("n_ctx"), n_gpu_layers=options.get("n_gpu_layers"),
                thinking_tokens=done.thinking_tokens,
                thinking_cut=bool(done.thinking_ended_by or done.ended_in_thinking),
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - measurements never break a comparison
            log.exception("recording a compared answer's speed failed")

    # -- progress ------------------------------------------------------------------------
    def _left(self, mi: int, done: set[tuple[int, int, int]], total: int,
              model_left: int) -> float | None:  # fmt: skip
        """Seconds left: this model's mean time per answer for its rest, the mean of all
        answers so far for the models after it, plus their loads."""
        every = [t for times in self._times.values() for t in times]
        if not every:
            return None
        mine = self._times.get(mi) or every
        mean_all = sum(every) / len(every)
        later = max(0, total - len(done) - model_left)
        loads = (sum(self._load_times) / len(self._load_times)) if self._load_times else 0.0
        later_models = -(-later // self._per_model)
        return model_left * sum(mine) / len(mine) + later * mean_all + loads * later_models

    def _tell(self, progress: Progress) -> None:
        if self.on_progress is not None:
            try:
                self.on_progress(progress)
            except Exception:  # noqa: BLE001 - a listener's fault must not stop the run
                log.exception("a comparison progress listener failed")
