"""What a model really did on this machine: measured tokens/s, memory, how long it thought.

After a real answer (a complete one, long enough to time), the window records the engine's
decode speed and peak memory for the model file, next to what the planner predicted, and how
many tokens it thought (answers that thought to their own end only). The wizard and the model
manager show the measurement beside the prediction from then on; `speed_ratio(trusted)` tells
the planner how far its predictions are off on this machine, and `thinking_lengths(trusted)`
how long each catalog model thinks in this user's answers — learned only from measured runs of
real catalog models (model_choice says which), clamped.

Stored as one small JSON file (`model_stats.json`) in the user data folder, next to the
chat database; written atomically. No Qt.

    stats = ModelStats()
    stats.record_answer("/models/x.gguf", decode_tps=31.2, peak_memory_bytes=5_100_000_000,
                        predicted_tps=35.0, model_id="deepseek-r1-distill-qwen-7b", quant="Q4_K_M")
    stats.get("/models/x.gguf").decode_tps
    stats.thinking_lengths()  # {"deepseek-r1-distill-qwen-7b": 1840} after 3 answers that thought
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FILE_NAME = "model_stats.json"
MIN_TOKENS = 4  # fewer generated tokens cannot be timed meaningfully
SMOOTHING = 0.3  # weight of a new measurement in the running average
# One machine's measurements may correct the planner by at most 2× either way: a larger gap
# means the measurement was unusual (another program busy, a tiny model), not the machine.
RATIO_LIMITS = (0.5, 2.0)
# Calibrate only from models big enough for the weights to dominate a token's time: a tiny
# test model is ruled by per-token overhead (585 measured vs 1,510 predicted tokens/s for a
# 2 MB model) and says nothing about how a 7B model runs here.
MIN_CALIBRATION_PARAMS_B = 1.0
# How long a model thinks: the median over each file's last THINKING_WINDOW answers that
# thought, pooled over the files of one catalog model (its quants think about as long), used
# once MIN_THINKING_ANSWERS answers were measured, clamped to THINKING_LIMITS tokens.
THINKING_WINDOW = 15
MIN_THINKING_ANSWERS = 3
THINKING_LIMITS = (100, 32768)


def default_stats_path() -> Path:
    """`model_stats.json` in the user data folder (PONDER_DATA_DIR overrides the folder)."""
    override = os.environ.get("PONDER_DATA_DIR")
    if override:
        return Path(override) / FILE_NAME
    from platformdirs import user_data_dir

    return Path(user_data_dir("Ponder", appauthor=False)) / FILE_NAME


def model_key(path: str | os.PathLike[str]) -> str:
    """The identity of a model file: its real path (an HF cache link resolves to the blob)."""
    return os.path.realpath(os.fspath(path))


@dataclass(frozen=True)
class Measurement:
    """One model's record. Speeds in tokens/s, memory in bytes, times in Unix seconds."""

    key: str
    name: str = ""
    model_id: str | None = None  # the catalog id, when the model came from the catalog
    quant: str | None = None
    decode_tps: float | None = None  # running average over answers
    first_decode_tps: float | None = None  # the first real answer's speed
    predicted_tps: float | None = None  # the planner's prediction when it was measured
    peak_memory_bytes: int | None = None
    n_ctx: int | None = None
    n_gpu_layers: int | None = None
    answers: int = 0
    # thinking tokens of the last THINKING_WINDOW complete answers that thought, oldest first
    thinking_samples: tuple[int, ...] = ()
    measured_at: float | None = None
    last_used: float | None = None

    @property
    def measured(self) -> bool:
        return self.decode_tps is not None

    @property
    def ratio(self) -> float | None:
        """Measured / predicted decode speed (1.0 = the prediction was right)."""
        if self.decode_tps and self.predicted_tps:
            return self.decode_tps / self.predicted_tps
        return None

    @property
    def thinking_tokens(self) -> int | None:
        """The median thinking length of this file's recent answers that thought."""
        return int(statistics.median(self.thinking_samples)) if self.thinking_samples else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "thinking_samples" in values:  # a JSON list (or a damaged value: dropped)
            samples = values["thinking_samples"]
            values["thinking_samples"] = tuple(
                int(n) for n in (samples if isinstance(samples, (list, tuple)) else ())
                if isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0
            )  # fmt: skip
        return cls(**values)


class ModelStats:
    """The measurements file; safe to use from several threads of one process."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_stats_path()
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------
    def _load(self) -> dict[str, Measurement]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable model stats %s: %s", self.path, exc)
            return {}
        out: dict[str, Measurement] = {}
        for entry in data.get("models", []) if isinstance(data, dict) else []:
            try:
                m = Measurement.from_dict(entry)
            except TypeError:
                continue
            out[m.key] = m
        return out

    def all(self) -> list[Measurement]:
        """Every record, most recently used first."""
        with self._lock:
            records = list(self._load().values())
        return sorted(records, key=lambda m: -(m.last_used or m.measured_at or 0))

    def get(self, path: str | os.PathLike[str]) -> Measurement | None:
        with self._lock:
            return self._load().get(model_key(path))

    def for_catalog(self, model_id: str, quant: str) -> Measurement | None:
        """The latest measurement of a catalog model at a quant (any file of it)."""
        found = [
            m
            for m in self.all()
            if m.measured and m.model_id == model_id and (m.quant or "").lower() == quant.lower()
        ]
        return found[0] if found else None

    def last_used(self) -> dict[str, float]:
        """Model key -> when it was last loaded or answered."""
        return {m.key: m.last_used for m in self.all() if m.last_used}

    def speed_ratio(self, trusted: Callable[[Measurement], bool] | None = None) -> float | None:
        """The median measured/predicted decode speed over the `trusted` models with both,
        clamped to RATIO_LIMITS (for the planner to scale its predictions on this machine);
        None until such a model was measured. Without `trusted`, every model counts."""
        ratios = [r for m in self.all() if (r := m.ratio) is not None
                  and (trusted is None or trusted(m))]  # fmt: skip
        if not ratios:
            return None
        low, high = RATIO_LIMITS
        return min(high, max(low, statistics.median(ratios)))

    def thinking_lengths(
        self, trusted: Callable[[Measurement], bool] | None = None
    ) -> dict[str, int]:
        """Catalog model id -> how many tokens it thinks per answer on this machine: the
        median of the recent answers that thought, over every file of the model (the quants
        of one model think about as long), clamped to THINKING_LIMITS; only models with
        MIN_THINKING_ANSWERS such answers, among the `trusted` records (every one without)."""
        pooled: dict[str, list[int]] = {}
        for m in self.all():
            if m.model_id and m.thinking_samples and (trusted is None or trusted(m)):
                pooled.setdefault(m.model_id, []).extend(m.thinking_samples)
        low, high = THINKING_LIMITS
        return {model_id: int(min(high, max(low, statistics.median(samples))))
                for model_id, samples in pooled.items()
                if len(samples) >= MIN_THINKING_ANSWERS}  # fmt: skip

    # -- writing -------------------------------------------------------------------------
    def _save(self, records: dict[str, Measurement]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        body = {"version": 1, "models": [asdict(m) for m in records.values()]}
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    def _update(self, key: str, **changes: Any) -> Measurement:
        with self._lock:
            records = self._load()
            old = records.get(key) or Measurement(key)
            new = Measurement.from_dict({**asdict(old), **changes, "key": key})
            records[key] = new
            try:
                self._save(records)
            except OSError as exc:  # a full or read-only disk must not break a chat
                log.warning("could not save model stats to %s: %s", self.path, exc)
            return new

    def touch(self, path: str | os.PathLike[str], name: str = "", **info: Any) -> Measurement:
        """Remember that the model was loaded now (and what it is, when known)."""
        extra = {k: v for k, v in info.items() if v is not None}
        if name:
            extra["name"] = name
        return self._update(model_key(path), last_used=time.time(), **extra)

    def record_answer(
        self,
        path: str | os.PathLike[str],
        decode_tps: float | None,
        *,
        completion_tokens: int = MIN_TOKENS,
        peak_memory_bytes: int | None = None,
        predicted_tps: float | None = None,
        name: str = "",
        model_id: str | None = None,
        quant: str | None = None,
        n_ctx: int | None = None,
        n_gpu_layers: int | None = None,
        thinking_tokens: int = 0,
        thinking_cut: bool = False,
    ) -> Measurement | None:
        """Store one answer's speed; None (nothing stored) when it cannot be timed. Callers
        pass complete answers only (stopped by the model, not by length or a cancel). Its
        `thinking_tokens` join the thinking length unless 0 (it did not think: a Qwen3 answer
        with thinking off) or `thinking_cut` (a budget, Answer now or the context ended the
        thinking before the model did: a lower bound, not how long it thinks)."""
        if not decode_tps or decode_tps <= 0 or completion_tokens < MIN_TOKENS:
            return None
        key = model_key(path)
        with self._lock:
            old = self._load().get(key)
        now = time.time()
        if old is None or old.decode_tps is None:
            avg, first = float(decode_tps), float(decode_tps)
        else:
            avg = old.decode_tps + SMOOTHING * (float(decode_tps) - old.decode_tps)
            first = old.first_decode_tps or old.decode_tps
        peak = peak_memory_bytes
        if old is not None and old.peak_memory_bytes and peak:
            peak = max(peak, old.peak_memory_bytes)
        changes: dict[str, Any] = {
            "decode_tps": round(avg, 3),
            "first_decode_tps": round(first, 3),
            "peak_memory_bytes": peak or (old.peak_memory_bytes if old else None),
            "answers": (old.answers if old else 0) + 1,
            "thinking_samples": old.thinking_samples if old else (),
            "measured_at": now,
            "last_used": now,
        }
        for field_name, value in (("predicted_tps", predicted_tps), ("name", name),
                                  ("model_id", model_id), ("quant", quant), ("n_ctx", n_ctx),
                                  ("n_gpu_layers", n_gpu_layers)):  # fmt: skip
            if value not in (None, ""):
                changes[field_name] = value
        if thinking_tokens > 0 and not thinking_cut:
            kept = (*changes["thinking_samples"], int(thinking_tokens))
            changes["thinking_samples"] = kept[-THINKING_WINDOW:]
        return self._update(key, **changes)

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop a model's record (after it was deleted)."""
        key = model_key(path)
        with self._lock:
            records = self._load()
            if records.pop(key, None) is not None:
                self._save(records)


def measured_words(m: Measurement | None) -> str:
    """'measured 31 tokens/s, 5.1 GB' for a table cell; '' when nothing was measured."""
    if m is None or m.decode_tps is None:  # not measured
        return ""
    tps = m.decode_tps
    text = f"measured {tps:.0f} tokens/s" if tps >= 3 else (f"measured {tps:.1f} tokens/s")
    if m.peak_memory_bytes:
        text += f", {m.peak_memory_bytes / 1e9:.1f} GB"
    return text
