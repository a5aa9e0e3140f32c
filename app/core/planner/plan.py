"""One option planned for one machine: where the model sits, how much memory, how fast.

`plan_option(profile, model_id, quant, ctx, kv_type, engine)` returns a frozen `Plan` with
the memory split (VRAM / RAM), the verdict (`gpu`, `hybrid`, `cpu`, `server`, `no`) and its
reason in a sentence, decode speed, the time a typical answer takes, and what the download
needs (repo, files, patterns, size). Bad requests raise `PlanError`, a sentence.

A typical answer is the catalog's `thinking_tokens` + `answer_tokens`, unless `thinking`
gives a measured thinking length for the model (app/core/model_stats: how long it thought in
this user's complete answers on this machine); then that replaces the catalog's typical
figure and the reason says so. The hard math problem keeps the catalog's figure (a typical
answer here says little about an AIME problem).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from app.core.catalog import Catalog, CatalogError, ModelSpec, Quant, WeightSource, load_catalog
from app.core.hardware.profile import HardwareProfile
from app.core.planner import memory as mem
from app.core.planner import speed
from app.core.planner.budget import Budget, budget_for
from app.core.planner.words import ctx_words, duration_words, gb_words, tps_words

VERDICTS = ("gpu", "hybrid", "cpu", "server", "no")
ENGINES = ("llama_cpp", "mlx", "openai")
KV_TYPES = ("f16", "q8_0")
MIN_CTX = 8192  # never plan a reasoning model below this
REASONING_CTX = 16384  # a reasoning-sized context
USABLE_ANSWER_SECONDS = 300.0  # "answers a typical question within a few minutes"
CTX_CHOICES = (32768, 16384, 8192)


class PlanError(ValueError):
    """A request the planner cannot answer (unknown model or quant, context too long…)."""


@dataclass(frozen=True)
class Plan:
    """A planned option. Byte figures are bytes; `total = weights + kv + compute + overhead`
    and `vram + ram = total` for options that run here."""

    model: str
    model_name: str
    quant: str
    format: str  # "gguf" or "mlx"
    engine: str  # "llama_cpp", "mlx" or "openai"
    ctx: int
    kv_type: str
    flash_attn: bool
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    total_bytes: int
    gpu_layers: int  # layers on the accelerator (of `layers`)
    layers: int
    experts_in_ram: bool  # MoE: expert tensors kept in RAM, the rest on the GPU
    vram_bytes: int
    ram_bytes: int
    vram_budget_bytes: int
    ram_budget_bytes: int
    mode: str  # the verdict
    decode_tps: float | None
    prefill_tps: float | None
    answer_seconds: float | None
    answer_tokens: int  # thinking + answer tokens the answer time assumes
    reason: str
    repo: str
    files: tuple[str, ...]  # every file to download (all parts of a split GGUF)
    patterns: tuple[str, ...]  # MLX: the folder's files by pattern
    download_bytes: int
    size_source: str  # "catalog", "estimated", "hub"
    params_b: float
    bits: float
    distill: bool
    hard_answer_tokens: int = 0  # thinking + answer tokens of a hard math problem
    hard_answer_seconds: float | None = None
    thinking_measured: bool = False  # the thinking in answer_tokens was measured here

    @property
    def verdict(self) -> str:
        return self.mode

    @property
    def runs_here(self) -> bool:
        return self.mode in ("gpu", "hybrid", "cpu")

    @property
    def usable(self) -> bool:
        return (
            self.runs_here
            and self.answer_seconds is not None
            and self.answer_seconds <= USABLE_ANSWER_SECONDS
        )

    @property
    def answer_words(self) -> str:
        return duration_words(self.answer_seconds)

    @property
    def hard_answer_words(self) -> str:
        return duration_words(self.hard_answer_seconds)

    @property
    def main_file(self) -> str | None:
        return self.files[0] if self.files else None

    def load_settings(self) -> dict[str, Any]:
        """Keyword arguments for `EngineClient.load` (besides the path)."""
        n_gpu = -1 if self.gpu_layers >= self.layers else self.gpu_layers
        settings: dict[str, Any] = {"n_ctx": self.ctx, "n_gpu_layers": n_gpu,
                                    "flash_attn": self.flash_attn}  # fmt: skip
        if self.kv_type != "f16":
            settings["type_k"] = settings["type_v"] = self.kv_type
        if self.experts_in_ram:
            settings["override_tensors"] = r"\.ffn_.*_exps\.=CPU"
        return settings

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"] = list(self.files)
        d["patterns"] = list(self.patterns)
        d["verdict"] = self.mode
        d["usable"] = self.usable
        d["answer_words"] = self.answer_words
        for k in ("decode_tps", "prefill_tps", "answer_seconds"):
            if d[k] is not None:
                d[k] = round(d[k], 2)
        return d


def plan_option(
    profile: HardwareProfile,
    model_id: str,
    quant: str,
    ctx: int | None = None,
    kv_type: str = "f16",
    engine: str | None = None,
    catalog: Catalog | None = None,
    speed_scale: float = 1.0,
    thinking: Mapping[str, int] | None = None,
) -> Plan:
    """Plan `model_id` at `quant` on `profile`; `ctx` None picks the largest of 32K/16K/8K
    (up to the model's recommendation) that keeps the best placement. `speed_scale` is the
    measured/predicted speed ratio on this machine (1.0 until something was measured);
    `thinking` the measured thinking tokens per answer by catalog model id (none: the
    catalog's figure)."""
    catalog = catalog or load_catalog()
    try:
        model = catalog.get(model_id)
        source, q = model.find_quant(quant)
    except CatalogError as exc:
        raise PlanError(str(exc)) from exc
    if kv_type not in KV_TYPES:
        raise PlanError(f"The KV cache type {kv_type!r} is not one of {', '.join(KV_TYPES)}.")
    if engine is not None and engine not in ENGINES:
        raise PlanError(f"The engine {engine!r} is not one of {', '.join(ENGINES)}.")
    if engine == "llama_cpp" and source.format != "gguf":
        raise PlanError(f"{q.name} of {model.id} is MLX weights; llama.cpp needs a GGUF quant.")
    if engine == "mlx" and source.format != "mlx":
        raise PlanError(f"{q.name} of {model.id} is a GGUF; MLX needs an MLX quant.")
    if source.format == "mlx" and kv_type != "f16":
        raise PlanError("MLX keeps its KV cache in f16 here; use --kv-type f16.")
    engine = engine or ("mlx" if source.format == "mlx" else "llama_cpp")
    budget = budget_for(profile, speed_scale)
    measured = (thinking or {}).get(model.id)
    if ctx is not None:
        if ctx < 512:
            raise PlanError(f"A context of {ctx} tokens is too small to plan; use at least 512.")
        if ctx > model.arch.max_ctx:
            raise PlanError(
                f"{model.id} takes at most {model.arch.max_ctx:,} tokens of context; "
                f"{ctx:,} is more."
            )
        return _with_hard(_plan(model, source, q, ctx, kv_type, engine, budget, measured),
                          catalog)  # fmt: skip
    choices = [c for c in CTX_CHOICES if c <= min(model.recommended_ctx, model.arch.max_ctx)]
    plans = [_plan(model, source, q, c, kv_type, engine, budget, measured)
             for c in choices or [MIN_CTX]]  # fmt: skip
    best = min(VERDICTS.index(p.mode) for p in plans)
    return _with_hard(next(p for p in plans if VERDICTS.index(p.mode) == best), catalog)


def _with_hard(plan: Plan, catalog: Catalog) -> Plan:
    """Add the time a hard math problem takes (the catalog's hard thinking length)."""
    from app.core.planner.quality import quality

    model = catalog.get(plan.model)
    tokens = quality(catalog, plan.model).hard_thinking_tokens + model.answer_tokens
    seconds = speed.answer_seconds(plan.decode_tps, plan.prefill_tps,
                                   speed.TYPICAL_PROMPT_TOKENS, tokens)  # fmt: skip
    reason = plan.reason
    if seconds is not None and reason.endswith("."):
        reason = (
            f"{reason[:-1]}; a hard math problem ({tokens:,} tokens) up to "
            f"{duration_words(seconds).removeprefix('about ')}."
        )
    return replace(plan, hard_answer_tokens=tokens, hard_answer_seconds=seconds, reason=reason)


def _plan(model: ModelSpec, source: WeightSource, q: Quant, ctx: int, kv_type: str,
          engine: str, budget: Budget, thinking: int | None = None) -> Plan:  # fmt: skip
    """`thinking`: the measured thinking tokens per answer (None: the catalog's figure)."""
    arch = model.arch
    weights = q.size_bytes
    ws = mem.split_weights(arch, weights, q.bits, model.params_b, model.active_params_b)
    layout = source.kv_layout or "mla"
    kv = mem.kv_cache_bytes(arch, ctx, kv_type, layout=layout)
    flash = mem.flash_attention_possible(arch, layout)
    gen_tokens = (thinking or model.thinking_tokens) + model.answer_tokens
    base = {
        "model": model.id, "model_name": model.name, "quant": q.name, "format": source.format,
        "engine": engine, "ctx": ctx, "kv_type": kv_type, "flash_attn": flash,
        "weights_bytes": weights, "kv_cache_bytes": kv, "layers": arch.layers,
        "answer_tokens": gen_tokens, "repo": source.repo_for(q.name), "files": q.files,
        "patterns": mem_patterns(source), "download_bytes": q.size_bytes,
        "size_source": q.size_source, "params_b": model.params_b, "bits": q.bits,
        "distill": model.distill, "vram_budget_bytes": budget.gpu_total_bytes,
        "ram_budget_bytes": budget.ram_bytes, "thinking_measured": bool(thinking),
    }  # fmt: skip
    comp_gpu = mem.compute_bytes_gpu(arch, ctx, flash)
    comp_ram = mem.compute_bytes_ram(arch, ctx, flash)
    cpu_ovh = mem.cpu_overhead_bytes(arch)
    server_total = weights + kv + comp_gpu + mem.CUDA_OVERHEAD + cpu_ovh
    if engine == "openai":
        return _server(base, server_total, comp_gpu, mem.CUDA_OVERHEAD + cpu_ovh,
                       "You chose a serving engine; it needs "
                       f"about {gb_words(server_total)} across its machines.")  # fmt: skip
    if not flash and kv_type != "f16":
        return _no(base, server_total, comp_gpu, cpu_ovh,
                   f"{source.repo} holds the first, non-MLA R1 files: llama.cpp runs them "
                   "without flash attention, so the V cache cannot be quantized; use an f16 "
                   "cache, or R1-0528's MLA files.")  # fmt: skip
    if engine == "mlx":
        if not (budget.unified and budget.mlx):
            why = "MLX is not installed" if budget.unified else "this is not an Apple Silicon Mac"
            return _no(base, server_total, comp_gpu, cpu_ovh,
                       f"MLX weights need a Mac with Apple Silicon and MLX, and {why}; "
                       "choose a GGUF quant of this model instead.")  # fmt: skip
        vram = weights + kv + comp_gpu + mem.METAL_OVERHEAD
        if vram <= budget.gpu_bytes[0] and vram + cpu_ovh <= budget.ram_bytes:
            place = _Place("gpu", arch.layers, False, vram, cpu_ovh, comp_gpu,
                           mem.METAL_OVERHEAD + cpu_ovh)  # fmt: skip
            return _finish(base, place, ws, model, budget, kv)
        return _too_big(base, server_total, comp_gpu, cpu_ovh, budget)
    fitted = _place_gguf(model, ws, kv, comp_gpu, comp_ram, cpu_ovh, budget)
    if fitted is None:
        return _too_big(base, server_total, comp_gpu, cpu_ovh, budget)
    return _finish(base, fitted, ws, model, budget, kv)


def mem_patterns(source: WeightSource) -> tuple[str, ...]:
    from app.core.catalog import MLX_PATTERNS

    return MLX_PATTERNS if source.format == "mlx" else ()


@dataclass(frozen=True)
class _Place:
    mode: str
    gpu_layers: int
    experts_in_ram: bool
    vram: int
    ram: int
    compute: int
    overhead: int


def _place_gguf(model: ModelSpec, ws: mem.WeightSplit, kv: int, comp_gpu: int, comp_ram: int,
                cpu_ovh: int, b: Budget) -> _Place | None:  # fmt: skip
    """Full offload, else a layer split, else CPU, else None.

    No "MoE experts in RAM" here: llama-cpp-python 0.3.x has no tensor buffer overrides (its
    `Llama` takes no override_tensor; abetlen/llama-cpp-python PR 2007 is still open), so the
    local engine cannot place them. The llama-server commands keep that route."""
    arch = model.arch
    if b.accel != "none":
        n = len(b.gpu_bytes)
        dev_ovh = mem.CUDA_OVERHEAD if b.accel == "cuda" else mem.METAL_OVERHEAD
        host_ovh = cpu_ovh + (0 if b.unified else mem.HOST_OVERHEAD_WITH_GPU)
        fixed_gpu = n * (comp_gpu + dev_ovh)
        cap = b.gpu_total_bytes - fixed_gpu

        def fits(vram: int, ram: int) -> bool:
            if vram > b.gpu_total_bytes:
                return False
            return vram + ram <= b.ram_bytes if b.unified else ram <= b.ram_bytes

        on_gpu = ws.total - ws.embedding + kv
        if on_gpu <= cap and fits(on_gpu + fixed_gpu, ws.embedding + host_ovh):
            return _Place("gpu", arch.layers, False, on_gpu + fixed_gpu, ws.embedding + host_ovh,
                          n * comp_gpu, n * dev_ovh + host_ovh)  # fmt: skip
        per = ws.per_layer + kv / arch.layers
        layers = min(arch.layers - 1, int(max(0.0, cap - ws.output) // per)) if per else 0
        if layers >= 1:
            vram = int(layers * per + ws.output) + fixed_gpu
            # the embedding and the layers left on the CPU, with their share of the cache
            left = ws.total - ws.output - layers * ws.per_layer
            ram = int(left + kv * (1 - layers / arch.layers))
            ram += comp_ram + host_ovh
            if fits(vram, ram):
                return _Place("hybrid", layers, False, vram, ram, n * comp_gpu + comp_ram,
                              n * dev_ovh + host_ovh)  # fmt: skip
    ram = ws.total + kv + comp_ram + cpu_ovh
    if ram <= b.ram_bytes:
        return _Place("cpu", 0, False, 0, ram, comp_ram, cpu_ovh)
    return None


def _finish(base: dict[str, Any], p: _Place, ws: mem.WeightSplit, model: ModelSpec, b: Budget,
            kv: int) -> Plan:  # fmt: skip
    arch = model.arch
    ctx = base["ctx"]
    kind = b.accel if b.accel != "none" else "cpu"
    avg_ctx = speed.TYPICAL_PROMPT_TOKENS + base["answer_tokens"] / 2
    kv_read = kv / ctx * avg_ctx
    decode = speed.decode_tps(_route(p, ws, arch, b, kind, kv_read))
    if decode:
        decode *= b.speed_scale
    pre_kind = "cpu" if p.mode == "cpu" else kind
    pre_bw = b.gpu_bandwidth_gbs if pre_kind != "cpu" else None
    prefill = speed.prefill_tps(model.active_params_b, pre_kind, pre_bw, b.cpu_cores)
    if decode and prefill:
        prefill = max(prefill, decode)
    seconds = speed.answer_seconds(decode, prefill, speed.TYPICAL_PROMPT_TOKENS,
                                   base["answer_tokens"])  # fmt: skip
    total = base["weights_bytes"] + kv + p.compute + p.overhead
    fields = base | {
        "compute_bytes": p.compute, "overhead_bytes": p.overhead, "total_bytes": total,
        "gpu_layers": p.gpu_layers, "experts_in_ram": p.experts_in_ram,
        "vram_bytes": p.vram, "ram_bytes": total - p.vram, "mode": p.mode,
        "decode_tps": decode, "prefill_tps": prefill, "answer_seconds": seconds,
    }  # fmt: skip
    fields["reason"] = _reason(fields, b)
    return Plan(**fields)


def _route(p: _Place, ws: mem.WeightSplit, arch: Any, b: Budget, kind: str,
           kv_read: float) -> speed.Route:  # fmt: skip
    """Where one token's reads and layers happen for placement `p` (see speed.Route)."""
    read = ws.active_per_token + kv_read
    moe = arch.layers - arch.dense_layers if arch.is_moe else 0
    common: dict[str, Any] = {
        "gpu_bandwidth_gbs": b.gpu_bandwidth_gbs, "cpu_bandwidth_gbs": b.cpu_bandwidth_gbs,
        "cpu_cores": b.cpu_cores, "gpus": max(1, len(b.gpu_bytes)),
    }  # fmt: skip
    if p.mode == "cpu":
        return speed.Route("cpu", cpu_bytes=read, cpu_moe_layers=moe, **common)
    if p.mode == "gpu":
        return speed.Route(kind, gpu_bytes=read, gpu_layers=arch.layers, gpu_moe_layers=moe,
                           **common)  # fmt: skip
    if p.experts_in_ram:
        expert_read = ws.expert * arch.experts_per_token / arch.experts
        return speed.Route(kind, gpu_bytes=read - expert_read, cpu_bytes=expert_read,
                           gpu_layers=arch.layers, cpu_moe_layers=moe, **common)  # fmt: skip
    f = p.gpu_layers / arch.layers
    return speed.Route(kind, gpu_bytes=read * f, cpu_bytes=read * (1 - f),
                       gpu_layers=p.gpu_layers, gpu_moe_layers=round(moe * f),
                       cpu_moe_layers=moe - round(moe * f), **common)  # fmt: skip


def _reason(f: dict[str, Any], b: Budget) -> str:
    ctx = ctx_words(f["ctx"])
    took = duration_words(f["answer_seconds"])
    mine = ", from your answers" if f["thinking_measured"] else ""
    when = (f"at {tps_words(f['decode_tps'])} a typical answer ({f['answer_tokens']:,} "
            f"tokens{mine}) takes {took}")  # fmt: skip
    slow = "" if (f["answer_seconds"] or math.inf) <= USABLE_ANSWER_SECONDS else " — slow"
    if f["mode"] == "gpu":
        where = (f"Fits entirely in {b.describe_gpu()} ({gb_words(f['vram_bytes'])} of "
                 f"{b.describe_gpu_memory()}) with a {ctx} context")  # fmt: skip
    elif f["mode"] == "cpu":
        what = "there is no usable GPU" if b.accel == "none" else "too big for the GPU"
        where = (f"Runs on the CPU from RAM ({gb_words(f['ram_bytes'])} of "
                 f"{gb_words(b.ram_bytes)} usable; {what}) with a {ctx} context")  # fmt: skip
    elif f["experts_in_ram"]:
        where = (f"Too big for {b.describe_gpu()}: the expert tensors stay in RAM "
                 f"({gb_words(f['ram_bytes'])}), the rest on the GPU "
                 f"({gb_words(f['vram_bytes'])}), with a {ctx} context")  # fmt: skip
    else:
        where = (f"Too big for {b.describe_gpu()} alone: {f['gpu_layers']} of {f['layers']} "
                 f"layers on the GPU ({gb_words(f['vram_bytes'])}), the rest in RAM "
                 f"({gb_words(f['ram_bytes'])}), with a {ctx} context")  # fmt: skip
    return f"{where}; {when}{slow}."


def _server(base: dict[str, Any], total: int, compute: int, overhead: int, reason: str) -> Plan:
    return Plan(**base | {
        "engine": "openai", "compute_bytes": compute, "overhead_bytes": overhead,
        "total_bytes": total, "gpu_layers": 0, "experts_in_ram": False, "vram_bytes": 0,
        "ram_bytes": 0, "mode": "server", "decode_tps": None, "prefill_tps": None,
        "answer_seconds": None, "reason": reason,
    })  # fmt: skip


def _too_big(base: dict[str, Any], total: int, compute: int, cpu_ovh: int, b: Budget) -> Plan:
    have = b.ram_bytes + (0 if b.unified else b.gpu_total_bytes)
    reason = (f"Needs about {gb_words(total)} with a {ctx_words(base['ctx'])} context, more "
              f"than this machine's {gb_words(have)} for models: run it on a serving engine "
              "(vLLM, SGLang, llama-server) and connect Ponder to it.")  # fmt: skip
    return _server(base, total, compute, mem.CUDA_OVERHEAD + cpu_ovh, reason)


def _no(base: dict[str, Any], total: int, compute: int, overhead: int, reason: str) -> Plan:
    plan = _server(base, total, compute, overhead, reason)
    return Plan(**asdict(plan) | {"mode": "no", "engine": base["engine"]})
