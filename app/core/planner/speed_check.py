"""The speed model against published measurements (tests/data/speed_measurements.csv).

Each row names a machine (peak bandwidth, backend, GPUs or CPU cores), a model with the
architecture of a catalog entry, a quant, the context it was measured at, the tokens/s a
public benchmark reported and where. `predict(row)` plans the same work with the planner's
own weight split and `speed.token_seconds`; `summary(rows)` gives the median |log ratio| and
the worst row for a set. `bench/speed_accuracy.py` prints it; tests/test_speed_model.py holds
it to the targets: median within ±25%, no row off by more than 2×.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from app.core.catalog import Catalog, load_catalog
from app.core.planner import memory as mem
from app.core.planner import speed

TABLE = Path(__file__).resolve().parents[3] / "tests" / "data" / "speed_measurements.csv"
TARGET_MEDIAN = math.log(1.25)  # median |log(predicted / measured)| within ±25%
TARGET_WORST = math.log(2.0)  # no row off by more than 2×


@dataclass(frozen=True)
class Measurement:
    machine: str
    bandwidth_gbs: float
    backend: str
    gpus: int
    cpu_cores: int
    model: str
    arch: str
    quant: str
    context: int
    tok_s: float
    set: str
    source: str
    note: str = ""


def load_measurements(path: str | Path = TABLE) -> list[Measurement]:
    """The table's rows (comment lines start with '#')."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        rows.append(Measurement(
            machine=r["machine"], bandwidth_gbs=float(r["bandwidth_gbs"]), backend=r["backend"],
            gpus=int(r["gpus"] or 0), cpu_cores=int(r["cpu_cores"] or 1), model=r["model"],
            arch=r["arch"], quant=r["quant"], context=int(r["context"]), tok_s=float(r["tok_s"]),
            set=r["set"], source=r["source"], note=r.get("note") or "",
        ))  # fmt: skip
    return rows


def route_for(row: Measurement, catalog: Catalog | None = None) -> speed.Route:
    """The planner's route for a fully offloaded (or CPU-only) run of the row's model."""
    catalog = catalog or load_catalog()
    model = catalog.get(row.arch)
    _, q = model.find_quant(row.quant)
    arch = model.arch
    ws = mem.split_weights(arch, q.size_bytes, q.bits, model.params_b, model.active_params_b)
    kv_read = mem.kv_bytes_per_token(arch) * row.context / 2  # the cache grows during the run
    moe = arch.layers - arch.dense_layers if arch.is_moe else 0
    read = ws.active_per_token + kv_read
    if row.backend == "cpu":
        return speed.Route("cpu", cpu_bytes=read, cpu_bandwidth_gbs=row.bandwidth_gbs,
                           cpu_cores=row.cpu_cores, cpu_moe_layers=moe)  # fmt: skip
    return speed.Route(row.backend, gpu_bytes=read, gpu_bandwidth_gbs=row.bandwidth_gbs,
                       gpus=max(1, row.gpus), gpu_layers=arch.layers,
                       gpu_moe_layers=moe)  # fmt: skip


def predict(row: Measurement, catalog: Catalog | None = None) -> float:
    tps = speed.decode_tps(route_for(row, catalog))
    if tps is None:
        raise ValueError(f"no prediction for {row.machine} {row.model}")
    return tps


def log_ratio(row: Measurement, catalog: Catalog | None = None) -> float:
    return math.log(predict(row, catalog) / row.tok_s)


@dataclass(frozen=True)
class Summary:
    n: int
    median_abs_log: float
    worst_abs_log: float
    worst: Measurement | None

    @property
    def median_factor(self) -> float:
        return math.exp(self.median_abs_log)

    @property
    def worst_factor(self) -> float:
        return math.exp(self.worst_abs_log)

    @property
    def meets_targets(self) -> bool:
        return self.median_abs_log <= TARGET_MEDIAN and self.worst_abs_log <= TARGET_WORST


def summary(rows: list[Measurement], catalog: Catalog | None = None) -> Summary:
    if not rows:
        return Summary(0, 0.0, 0.0, None)
    logs = [(abs(log_ratio(r, catalog)), r) for r in rows]
    worst = max(logs, key=lambda t: t[0])
    return Summary(len(rows), statistics.median(v for v, _ in logs), worst[0], worst[1])
