"""What the model wizard and manager need from the core, in one place and in plain words.

A thin layer over the hardware probe (`app.core.hardware`), the planner (`app.core.planner`),
the downloader (`app.core.downloads`) and the measurements (`app.core.model_stats`): the
wizard talks only to this module, so a change in those APIs changes this file alone.

- `describe_machine(profile)`: what was detected, as labelled sentences, plus warnings.
- `recommend(profile, env)`: every catalog option as an `Option` (a planner `Plan` with
  the words a person needs: where it runs, how long an answer takes, what the quant costs),
  ranked, the recommended one first.
- `fetch(option, settings, …)`: plan and run the download (call it on a worker thread).
- `describe_gguf(path, profile)`: a GGUF file's metadata and plan, without loading it;
  `describe_mlx` the same for an MLX model folder (its JSON files; no plan), and
  `describe_local` whichever of the two a path is.

No Qt here; everything that touches the network or the disk is meant for a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.hardware.profile import HardwareProfile
from app.core.model_stats import Measurement, ModelStats
from app.core.planner.words import ctx_words, duration_words, gb_words

GB = 10**9
USABLE_ANSWER_SECONDS = 300.0
MLX_MAX_CTX = 16384  # the context an MLX folder loads with (its own, if smaller)

MODE_LABELS = {
    "gpu": "GPU",
    "hybrid": "GPU + RAM",
    "cpu": "CPU only",
    "server": "Needs a server",
    "no": "Won't run here",
}
MODE_HINTS = {
    "gpu": "The whole model sits in the graphics memory: the fastest way to run it.",
    "hybrid": "Part of the model sits in graphics memory, the rest in RAM: works, but slower.",
    "cpu": "Runs on the processor from RAM: works everywhere, the slowest way.",
    "server": "Too big for this computer: run it on a serving engine and connect to it.",
    "no": "This format cannot run on this computer.",
}

# One line each: what a quantization level costs in quality (for the "compare" tooltip).
QUANT_LEVELS: tuple[tuple[str, str], ...] = (
    (
        "1–2 bit (IQ1, IQ2, UD-…)",
        "only for the giant 671B model: squeezes it onto big machines, "
        "with a real loss of accuracy",
    ),
    ("2-bit (Q2_K)", "smallest of the usual levels; reasoning of small models falls apart"),
    ("3-bit (Q3_K_M, MLX 3bit)", "small and fast; noticeably less precise"),
    ("4-bit (Q4_K_M, MLX 4bit)", "the usual choice: nearly full quality at a third of the size"),
    ("5-bit (Q5_K_M)", "a little closer to full quality; 15% bigger than 4-bit"),
    ("6-bit (Q6_K, MLX 6bit)", "practically full quality"),
    ("8-bit (Q8_0, MLX 8bit)", "indistinguishable from the original; twice the size of 4-bit"),
    ("16-bit (F16, BF16, MLX bf16)", "the original weights: biggest and slowest, no gain here"),
)


def quant_words(quant: str, bits: float | None = None) -> str:
    """A quant in plain words: 'Q4_K_M' -> '4-bit'; 'UD-IQ1_S' -> '1.6-bit'."""
    q = quant.upper()
    if q in ("F16", "BF16") or q.endswith("BF16"):
        return "16-bit (original)"
    if q.endswith("BIT"):
        return f"{q[:-3]}-bit"
    for prefix in ("Q", "IQ", "UD-Q", "UD-IQ"):
        if q.startswith(prefix) and len(q) > len(prefix) and q[len(prefix)].isdigit():
            if "IQ" in prefix and bits:
                return f"{bits:.1f}-bit"
            return f"{q[len(prefix)]}-bit"
    return quant


def quant_quality(quant: str, bits: float | None = None) -> str:
    """One line on what this quant keeps of the original quality."""
    q = quant.upper()
    if q.startswith("UD-") or "IQ1" in q or "IQ2" in q:
        return QUANT_LEVELS[0][1]
    head = quant_words(q, bits).split("-", 1)[0]
    try:
        head = str(round(float(head)))
    except ValueError:
        return ""
    index = {"2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "8": 6, "16": 7}.get(head)
    return QUANT_LEVELS[index][1] if index is not None else ""


def compare_tooltip() -> str:
    """The 'compare quality levels' tooltip: one line per level."""
    lines = [f"<b>{label}</b>: {note}" for label, note in QUANT_LEVELS]
    return (
        "<p><b>Quality levels (quantization)</b>: the same model stored with fewer bits per "
        "weight — smaller and faster, a little less precise.</p>" + "<br>".join(lines)
    )


# -- the machine ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    note: str = ""


def detect(refresh: bool = False) -> HardwareProfile:
    """This machine's profile (probed once per process; can take a second or two)."""
    from app.core.hardware import get_profile

    return get_profile(refresh=refresh)


def read_profile_file(path: str | os.PathLike[str]) -> HardwareProfile:
    """A profile written by `ponder-cli doctor --json` (the example machines in resources/)."""
    from app.core.planner.profile_file import read_hardware_file

    return read_hardware_file(path)


def example_profiles() -> dict[str, Path]:
    """The example machines shipped in resources/hardware_profiles, by file stem."""
    from app.core.paths import resources_dir

    folder = resources_dir() / "hardware_profiles"
    return {p.stem: p for p in sorted(folder.glob("*.json"))}


def _gb(n: int) -> str:
    return gb_words(n) if n else "unknown"


def capacity_words(n: int) -> tuple[str, str]:
    """A memory size as its maker labels it ('24 GB': binary) and a note with the decimal
    figure Ponder uses for every other size, so '24 GB' and '25.8 GB' are not a puzzle."""
    if not n:
        return "unknown", ""
    gib = n / 2**30
    if gib >= 4 and abs(gib - round(gib)) < 0.05:
        return f"{round(gib)} GB", f"= {gb_words(n)} in the decimal units Ponder uses for sizes"
    return gb_words(n), ""


def describe_machine(profile: HardwareProfile, models_folder: Path | None = None) -> list[Fact]:
    """What was detected, one labelled sentence per part, in words a person reads at once."""
    from app.core.planner.budget import budget_for

    budget = budget_for(profile)
    facts: list[Fact] = []
    if profile.apple is not None:
        a = profile.apple
        gpu_cores = f", {a.gpu_cores}-core GPU" if a.gpu_cores else ""
        facts.append(Fact(
            "Chip", f"{a.chip}{gpu_cores}",
            f"Memory is shared by the CPU and GPU; up to {_gb(a.gpu_wired_limit_bytes)} of "
            "it can hold a model on the GPU.",
        ))  # fmt: skip
    elif profile.gpus:
        for g in profile.gpus:
            usable = budget.accel == "cuda" and g.name in budget.gpu_names
            note = ("Ponder can run models on it." if usable else
                    "This copy of llama.cpp cannot use it yet (see below).")  # fmt: skip
            if g.vendor != "nvidia":
                note = "Ponder's llama.cpp build does not use this GPU; models run on the CPU."
            size, units = capacity_words(g.memory_total_bytes)
            facts.append(Fact("Graphics card", f"{g.name} with {size} of video memory",
                              f"{note} ({units})" if units else note))  # fmt: skip
    else:
        facts.append(Fact("Graphics card", "None that Ponder can use",
                          "Models run on the processor: smaller models work best."))  # fmt: skip
    cpu = profile.cpu
    cores = cpu.cores_physical or cpu.cores_logical
    facts.append(Fact("Processor", f"{cpu.model or 'Unknown CPU'}, {cores} cores"))
    ram = profile.ram
    size, units = capacity_words(ram.total_bytes)
    notes = [f"{_gb(ram.available_bytes)} free right now"] if ram.available_bytes else []
    facts.append(Fact("Memory (RAM)", size, "; ".join(notes + ([units] if units else []))))
    where = f" in {models_folder}" if models_folder else ""
    facts.append(Fact("Free disk space", _gb(profile.disk_free_bytes),
                      f"Where models are stored{where}."))  # fmt: skip
    eng = profile.engines
    engines = []
    if eng.llama_cpp_installed:
        gpu = " with GPU support" if eng.llama_cpp_gpu_offload else " (CPU only)"
        engines.append(f"llama.cpp {eng.llama_cpp_version or ''}".strip() + gpu)
    if eng.mlx_installed:
        engines.append(f"MLX {eng.mlx_version or ''}".strip())
    facts.append(Fact("Engines", ", ".join(engines) or "none installed"))
    return facts


def machine_warnings(profile: HardwareProfile) -> list[str]:
    """The probe's warnings (each says how to fix it) and what could not be read."""
    out = list(profile.warnings)
    if profile.unreadable:
        out.append("Could not read: " + "; ".join(profile.unreadable) + ".")
    return out


def machine_summary(profile: HardwareProfile) -> str:
    """One sentence: where models will run on this machine."""
    from app.core.planner.budget import budget_for

    b = budget_for(profile)
    if b.accel == "metal":
        return (f"Models run on the {b.gpu_names[0]} GPU, using up to "
                f"{gb_words(b.gpu_total_bytes)} of its shared memory.")  # fmt: skip
    if b.accel == "cuda":
        return (
            f"Models run on the graphics card ({gb_words(b.gpu_total_bytes)} of video "
            f"memory); bigger ones spill over into RAM ({gb_words(b.ram_bytes)} usable)."
        )
    return (f"Models run on the processor, from RAM ({gb_words(b.ram_bytes)} usable): "
            "smaller models answer in reasonable time.")  # fmt: skip


# -- options -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One model × quant planned for a machine, with the words the wizard shows."""

    plan: Any  # app.core.planner.Plan
    recommended: bool = False
    measured: Measurement | None = None
    n_threads: int | None = None
    speed_scale: float = 1.0  # the calibration already applied to the plan's speeds

    # plan fields, read through so the UI never depends on the planner's names
    @property
    def model_id(self) -> str:
        return self.plan.model

    @property
    def name(self) -> str:
        return self.plan.model_name

    @property
    def quant(self) -> str:
        return self.plan.quant

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def format(self) -> str:
        return self.plan.format

    @property
    def runs_here(self) -> bool:
        return self.mode in ("gpu", "hybrid", "cpu")

    @property
    def usable(self) -> bool:
        return bool(self.plan.usable)

    @property
    def download_bytes(self) -> int:
        return int(self.plan.download_bytes)

    @property
    def memory_bytes(self) -> int:
        return int(self.plan.total_bytes)

    @property
    def decode_tps(self) -> float | None:
        return self.plan.decode_tps

    @property
    def uncalibrated_tps(self) -> float | None:
        """The bandwidth rule's own prediction (what measurements are compared with)."""
        tps = self.plan.decode_tps
        return tps / self.speed_scale if tps else None

    @property
    def answer_seconds(self) -> float | None:
        return self.plan.answer_seconds

    @property
    def thinking_measured(self) -> bool:
        """Whether the answer time uses how long the model thought in this user's answers."""
        return bool(self.plan.thinking_measured)

    @property
    def reason(self) -> str:
        return self.plan.reason

    @property
    def repo(self) -> str:
        return self.plan.repo

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.plan.files)

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(self.plan.patterns)

    @property
    def key(self) -> str:
        return f"{self.model_id}:{self.quant}"

    # words
    @property
    def mode_label(self) -> str:
        return MODE_LABELS.get(self.mode, self.mode)

    @property
    def quant_label(self) -> str:
        return f"{quant_words(self.quant, self.plan.bits)} ({self.quant})"

    @property
    def quality_note(self) -> str:
        return quant_quality(self.quant, self.plan.bits)

    @property
    def speed_words(self) -> str:
        tps = self.decode_tps
        if tps is None:
            return "—"
        text = f"≈{tps:.0f} tokens/s" if tps >= 3 else f"≈{tps:.1f} tokens/s"
        if self.measured is not None and self.measured.decode_tps:
            text += f" · measured on this machine {self.measured.decode_tps:.0f}"
        return text

    @property
    def answer_words(self) -> str:
        if self.answer_seconds is None:
            return "—"
        return duration_words(self.answer_seconds)

    @property
    def tier(self) -> str:
        """'good' (runs well), 'slow' (runs, long waits), 'server', 'no': for colours."""
        if self.mode in ("server", "no"):
            return self.mode
        return "good" if self.usable else "slow"

    def where_words(self, profile: HardwareProfile | None = None) -> str:
        """'Fits in your graphics card (20.9 of 24 GB)' and the like."""
        p = self.plan
        if self.mode == "gpu":
            if p.format == "mlx" or (profile is not None and profile.apple is not None):
                return (f"Fits in the GPU's share of your memory ({gb_words(p.vram_bytes)} of "
                        f"{gb_words(p.vram_budget_bytes)})")  # fmt: skip
            return (f"Fits in your graphics card ({gb_words(p.vram_bytes)} of "
                    f"{gb_words(p.vram_budget_bytes)})")  # fmt: skip
        if self.mode == "hybrid":
            return (f"Too big for the graphics card alone: {gb_words(p.vram_bytes)} on the GPU, "
                    f"{gb_words(p.ram_bytes)} in RAM")  # fmt: skip
        if self.mode == "cpu":
            return (f"Runs on the processor, using {gb_words(p.ram_bytes)} of your "
                    f"{gb_words(p.ram_budget_bytes)} usable RAM")  # fmt: skip
        if self.mode == "server":
            return f"Needs about {gb_words(p.total_bytes)} of memory: more than this computer has"
        return p.reason

    def headline(self) -> str:
        """The recommendation in one sentence a newcomer understands."""
        mine = " (its thinking length from your answers)" if self.thinking_measured else ""
        return f"{self.where_words()}. A typical answer takes {self.answer_words}{mine}."

    def load_settings(self) -> dict[str, Any]:
        """Keyword arguments for the engine's load: context, GPU layers, threads, KV cache."""
        settings = dict(self.plan.load_settings())
        if self.n_threads:
            settings["n_threads"] = self.n_threads
        if self.format == "mlx":
            settings["engine"] = "mlx"
        return settings

    def server_words(self) -> str:
        """Why this option needs a serving engine, and what to do instead."""
        p = self.plan
        return (
            f"{p.model_name} ({self.quant}) needs about {gb_words(p.total_bytes)} of memory with "
            f"a {ctx_words(p.ctx)} context — more than this computer has. Downloading it here "
            "would not help. Run it with a serving engine (vLLM, SGLang, llama.cpp's "
            "llama-server or Ollama) on a machine or cloud server that can hold it, then "
            "connect Ponder to that server: you chat here, the server does the thinking."
        )


@dataclass(frozen=True)
class ServePlan:
    """How to run an option that needs a server: the machine it needs, and the commands.

    Every command carries `api_key` (random, made by Ponder) and listens on `host`;
    `rebind(host)` gives the same plan for another address with the same key."""

    intro: str
    gpus: int
    gpu_memory_gb: float
    commands: tuple[Any, ...]  # app.core.server_commands.ServerCommand
    api_key: str = ""
    host: str = "127.0.0.1"
    served_name: str = ""  # the model name the server answers to
    notes: tuple[str, ...] = ()  # what is not offered on this server, and why
    warning: str = ""  # one line when the address opens the server to the network
    option: Any = field(default=None, compare=False, repr=False)
    server: Any = field(default=None, compare=False, repr=False)

    def rebind(self, host: str) -> ServePlan:
        return serve_plan(self.option, self.server, host=host, api_key=self.api_key)


def serve_plan(option: Option, server: Any = None, host: str = "127.0.0.1",
               api_key: str = "") -> ServePlan:  # fmt: skip
    """The vLLM, SGLang and llama-server commands for `option` (its own model, checkpoint
    and GGUF), sized for `server` (a `server_layout.ServerGpus`; default: rented 80 GB H100s,
    as many as it needs). A new random API key unless `api_key` is given."""
    from app.core.server_commands import host_warning, new_api_key, serve_target, server_commands
    from app.core.server_layout import DEFAULT_SERVER, gpu_words

    server = server or DEFAULT_SERVER
    key = api_key or new_api_key()
    target = serve_target(option.model_id, option.quant, option.plan.ctx)
    commands, notes = server_commands(target, server, host, key)
    best = commands[0] if commands else None
    gpus = best.gpus if best is not None else 0
    intro = (
        f"{option.name} at {option.quant} needs about {gb_words(option.plan.total_bytes)} with "
        f"a {ctx_words(option.plan.ctx)} context."
    )
    if best is not None and best.fits and server.rented:
        intro += (f" For example on a server with {gpu_words(gpus)} of {server.memory_gb:.0f} GB "
                  f"({server.name}).")  # fmt: skip
    elif best is not None and best.fits:
        intro += f" Sized for {server.words(server.count)}."
    elif best is not None:
        intro += f" Nothing here fits {server.words(max(1, server.count))}: each tab says why."
    intro += (" Start it with one of these (all carry the same new API key), then use Connect "
              "to a server with the address and key shown.")  # fmt: skip
    return ServePlan(intro, gpus, server.memory_gb, tuple(commands), key, host,
                     target.served_name, tuple(notes), host_warning(host), option,
                     server)  # fmt: skip


@dataclass(frozen=True)
class Recommendation:
    recommended: Option | None
    options: tuple[Option, ...]
    reason: str  # why the recommended option, in words

    def find(self, model_id: str, quant: str) -> Option | None:
        for o in self.options:
            if o.model_id == model_id and o.quant.lower() == quant.lower():
                return o
        return None


def recommend(
    profile: HardwareProfile,
    catalog_path: str | os.PathLike[str] | None = None,
    stats: ModelStats | None = None,
) -> Recommendation:
    """Every catalog option for `profile`, ranked by the planner, the recommended one first."""
    from app.core.catalog import load_catalog
    from app.core.planner import rank

    catalog = load_catalog(str(catalog_path)) if catalog_path else load_catalog()
    trusted = calibration_filter(catalog)
    scale = (stats.speed_ratio(trusted) if stats is not None else None) or 1.0
    # how long each model thought in this user's answers here, by catalog id: it replaces
    # that model's typical thinking length only (a figure per model, so none leaks to others)
    thinking = stats.thinking_lengths(trusted) if stats is not None else {}
    ranking = rank(profile, catalog, speed_scale=scale, thinking=thinking)
    measured: dict[tuple[str, str], Measurement] = {}
    if stats is not None:
        for m in stats.all():
            if m.model_id and m.quant and m.measured:
                measured.setdefault((m.model_id, m.quant.lower()), m)
    threads = profile.cpu.cores_physical or None
    options = tuple(
        Option(
            p,
            recommended=p is ranking.recommended,
            measured=measured.get((p.model, p.quant.lower())),
            n_threads=threads,
            speed_scale=scale,
        )
        for p in ranking.options
    )
    rec = next((o for o in options if o.recommended), None)
    return Recommendation(rec, options, ranking.reason)


def calibration_filter(catalog: Any) -> Callable[[Measurement], bool]:
    """Which measurements may calibrate the planner (its speeds and thinking lengths): runs
    of catalog models of at least MIN_CALIBRATION_PARAMS_B parameters (never a tiny or
    unknown model: a scripted test model's few thinking tokens say nothing either)."""
    from app.core.model_stats import MIN_CALIBRATION_PARAMS_B

    sizes = {m.id: m.params_b for m in catalog.models}

    def trusted(m: Measurement) -> bool:
        return sizes.get(m.model_id or "", 0.0) >= MIN_CALIBRATION_PARAMS_B

    return trusted


def catalog_match(
    path: str | os.PathLike[str], catalog_path: str | None = None
) -> tuple[str, str] | None:
    """(model id, quant) of the catalog entry whose file this is, by file name; else None."""
    from app.core.catalog import load_catalog

    name = Path(path).name
    catalog = load_catalog(catalog_path) if catalog_path else load_catalog()
    for model in catalog.models:
        for source in model.sources:
            for q in source.quants:
                if name in q.files:
                    return model.id, q.name
    return None


# -- downloads -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DownloadSettings:
    """Where and how to download; the defaults are the real Hub, cache and keyring."""

    endpoint: str | None = None
    cache_dir: Path | None = None
    token: str | bool | None = None  # None: HF_TOKEN or the keyring
    policy: Any = None  # app.core.downloads.RetryPolicy
    disk_free: Callable[[Path], int] | None = None

    def models_folder(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        from app.core.model_discovery import hf_cache_dir

        return hf_cache_dir()


@dataclass
class ChoiceEnv:
    """What the wizard works against: this machine and the real Hub unless told otherwise
    (tests and screenshots pass an example profile, a test catalog and a local Hub)."""

    profile: HardwareProfile | None = None  # None: detect this machine
    catalog_path: Path | None = None
    download: DownloadSettings = field(default_factory=DownloadSettings)
    stats: ModelStats | None = None
    machine_label: str = "This computer"


def plan_files(option: Option, settings: DownloadSettings, control: Any = None) -> Any:
    """Pin the option's repo to a commit and list its files with sizes (network); a
    `control` (DownloadControl) cuts the waits between retries short when cancelled."""
    from app.core.downloads import plan_download

    return plan_download(
        option.repo,
        option.files,
        () if option.files else option.patterns,
        endpoint=settings.endpoint,
        token=settings.token,
        cache_dir=settings.cache_dir,
        policy=settings.policy,
        sleep=control.wait if control is not None else None,
    )


def disk_free_for(settings: DownloadSettings) -> int:
    """Free bytes where the models are stored."""
    from app.core.hardware.probe import disk_free_bytes

    folder = settings.models_folder()
    return settings.disk_free(folder) if settings.disk_free else disk_free_bytes(folder)


def remaining(plan: Any, settings: DownloadSettings) -> int:
    """Bytes of `plan` still to fetch (partial data counted as fetched)."""
    from app.core.downloads import remaining_bytes

    return remaining_bytes(plan, settings.cache_dir)


def run_download(plan: Any, settings: DownloadSettings, on_event: Callable[[Any], None],
                 control: Any) -> Any:  # fmt: skip
    """Run (or resume) `plan` into the cache; returns a DownloadResult. Blocking."""
    from app.core.downloads import download

    kwargs: dict[str, Any] = {}
    if settings.disk_free is not None:
        kwargs["disk_free"] = settings.disk_free
    return download(plan, on_event=on_event, control=control, endpoint=settings.endpoint,
                    token=settings.token, cache_dir=settings.cache_dir, policy=settings.policy,
                    **kwargs)  # fmt: skip


def discard_partial(plan: Any, settings: DownloadSettings) -> None:
    """Delete the partial files a paused download left (after the user cancelled it)."""
    from app.core.downloads import cache as cache_mod
    from app.core.downloads.transfer import incomplete_path

    cache = cache_mod.hub_cache(settings.cache_dir)
    for f in plan.files:
        incomplete_path(cache_mod.blob_path(cache, plan.repo, f.blob_name)).unlink(missing_ok=True)


def save_token(token: str) -> None:
    """Keep a Hugging Face token in the OS keyring (raises TokenStoreError in words)."""
    from app.core.secrets import save_token as _save

    _save(token)


# -- local files ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalModelInfo:
    """A GGUF file (or an MLX model folder, `format` "mlx") read without loading it, and how
    it would run on this machine."""

    path: Path
    name: str
    size_bytes: int
    architecture: str | None
    quant: str | None
    context_length: int | None
    has_chat_template: bool
    plan: Any = None  # a planner Plan, or None when it could not be planned
    plan_problem: str = ""
    n_threads: int | None = None
    format: str = "gguf"

    def load_settings(self) -> dict[str, Any]:
        if self.format == "mlx":  # the MLX engine; its KV cache grows only as it is used
            return {"engine": "mlx", "n_ctx": min(self.context_length or MLX_MAX_CTX,
                                                  MLX_MAX_CTX)}  # fmt: skip
        if self.plan is None:
            return {"n_ctx": min(self.context_length or 8192, 8192)}
        settings = dict(self.plan.load_settings())
        if self.n_threads:
            settings["n_threads"] = self.n_threads
        return settings

    def summary(self) -> str:
        if self.plan is None:
            return self.plan_problem or "Ponder could not plan this file."
        opt = Option(self.plan)
        if not opt.runs_here:
            return opt.where_words() + "."
        return f"{opt.where_words()}, with a {ctx_words(self.plan.ctx)} context. " + (
            f"About {self.plan.decode_tps:.0f} tokens/s; a typical answer takes {opt.answer_words}."
            if self.plan.decode_tps
            else ""
        )


def describe_gguf(path: str | os.PathLike[str], profile: HardwareProfile | None) -> LocalModelInfo:
    """Read a GGUF's header (architecture, size, quant, context, chat template) and plan it
    for `profile`; raises GGUFError (a ValueError) with the reason for a broken file."""
    from app.core.model_discovery import read_model
    from backends.gguf_check import GGUFError

    p = Path(path)
    found = read_model(p, "added", str(p.parent))  # the header only, never the weights
    if found.problem:
        raise GGUFError(found.problem)  # a broken file, with its reason
    plan, problem = None, ""
    if profile is not None:
        from app.core.planner import PlanError
        from app.core.planner.local import plan_gguf_file

        ctx = min(found.context_length or 8192, 16384)
        try:
            plan = plan_gguf_file(profile, p, ctx=ctx)
        except (PlanError, ValueError, KeyError) as exc:
            problem = f"Ponder could not estimate how it runs here: {exc}"
    return LocalModelInfo(
        path=p, name=found.name, size_bytes=found.size_bytes, architecture=found.architecture,
        quant=found.quant, context_length=found.context_length,
        has_chat_template=found.has_chat_template, plan=plan, plan_problem=problem,
        n_threads=(profile.cpu.cores_physical or None) if profile else None,
    )  # fmt: skip


def describe_mlx(path: str | os.PathLike[str], profile: HardwareProfile | None) -> LocalModelInfo:
    """Read an MLX model folder's JSON files (architecture, size, quant, context, chat
    template) without loading it; raises ValueError with the reason for a folder the MLX
    engine would refuse. Not planned: its load settings name the MLX engine and a context."""
    from app.core.model_discovery import read_mlx_folder

    p = Path(path)
    found = read_mlx_folder(p, "added")
    if found.problem:
        raise ValueError(f"{found.name}: {found.problem}.")
    return LocalModelInfo(
        path=p, name=found.name, size_bytes=found.size_bytes, architecture=found.architecture,
        quant=found.quant, context_length=found.context_length,
        has_chat_template=found.has_chat_template,
        plan_problem="Ponder does not plan MLX model folders yet.",
        n_threads=(profile.cpu.cores_physical or None) if profile else None, format="mlx",
    )  # fmt: skip


def describe_local(path: str | os.PathLike[str], profile: HardwareProfile | None) -> LocalModelInfo:
    """`describe_mlx` for a folder (an MLX model), `describe_gguf` for a file."""
    if os.path.isdir(path):
        return describe_mlx(path, profile)
    return describe_gguf(path, profile)


SAMPLE_QUESTION = (
    "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. "
    "How much does the ball cost?"
)
