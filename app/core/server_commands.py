"""Copyable commands that serve the chosen model on a server: vLLM, SGLang, llama-server.

The commands follow the option the user chose: vLLM and SGLang serve that model's original
checkpoint (`hf_repo` in the catalog: BF16 for the dense models, FP8 for the full R1) on a
valid tensor-parallel layout (app/core/server_layout.py), with the reasoning parser the
engines document for it; llama-server runs the chosen GGUF file. Precisions follow what each
engine documents per GPU generation: R1's FP8 weights only on FP8 GPUs (compute capability
≥ 8.9; vLLM runs FP8 MoE models only there, SGLang lists FP8 for H100/H200 and BF16 for
A100), and the community AWQ of R1 (cognitivecomputations/DeepSeek-R1-AWQ, whose card serves
it with vLLM on 8 × 80 GB) on any of them.

Safe by default: every command carries an API key Ponder generated (`new_api_key`) and binds
to the address the user picked (127.0.0.1 unless they choose otherwise).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

from app.core.catalog import Catalog, ModelSpec, Quant, WeightSource, load_catalog
from app.core.planner.memory import compute_bytes_gpu, flash_attention_possible, kv_cache_bytes
from app.core.server_layout import DEFAULT_SERVER, GB, Layout, ServerGpus, gpu_words, pick_layout

R1_FP8_BYTES = 671 * GB  # one byte per weight as published (FP8)
R1_AWQ_REPO = "cognitivecomputations/DeepSeek-R1-AWQ"  # card: vLLM, TP 8 on 8 × 80 GB GPUs
R1_AWQ_BYTES = 365 * GB  # estimate: 4-bit experts with group scales, the rest 16-bit
GPU_RESERVE = 2 * GB  # llama.cpp: runtime per GPU besides its compute buffer
RAM_USABLE = 0.85
LOCAL_HOST = "127.0.0.1"
ANY_HOST = "0.0.0.0"
PORTS = {"vllm": 8000, "sglang": 30000, "llama.cpp": 8080}
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*|[0-9A-Fa-f:]+")


def new_api_key() -> str:
    """A random key for one server (never starts with '-', so no parser takes it for a flag)."""
    return "pk-" + secrets.token_urlsafe(32)


def check_host(host: str) -> str:
    """The address to listen on, validated (an IP address or a host name)."""
    host = host.strip()
    if not _HOST_RE.fullmatch(host):
        raise ValueError(f"{host!r} is not an address to listen on (e.g. 127.0.0.1 or 0.0.0.0).")
    return host


def host_warning(host: str) -> str:
    """One line when the server would listen on every network interface, else ''."""
    if host in (ANY_HOST, "::"):
        return ("Listening on 0.0.0.0 opens the server to every network it is on: anyone who "
                "reaches the port can use it with the key, and plain HTTP sends the key "
                "unencrypted.")  # fmt: skip
    return ""


def keyring_missing_words() -> str:
    """'' when the OS keyring can keep a server's key, else one sentence saying it cannot."""
    from app.core.secrets import guarded_keyring

    try:
        guarded_keyring()
    except Exception:  # noqa: BLE001 - no usable keyring, whatever the reason
        return ("This system has no password store (keyring): Ponder cannot remember this key "
                "after it closes. Keep a copy (it is in every command); Connect to a server "
                "can use it for this session.")  # fmt: skip
    return ""


def base_url_for(host: str, port: int) -> str:
    """What to enter in "Connect to a server" ("SERVER" = the machine's name)."""
    if host in (ANY_HOST, "::"):
        host = "SERVER"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


def _reach_note(host: str, port: int) -> str:
    if host in ("127.0.0.1", "localhost", "::1"):
        return (f" It listens on {host} only: from this computer open a tunnel first "
                f"(ssh -N -L {port}:127.0.0.1:{port} you@SERVER).")  # fmt: skip
    return ""


@dataclass(frozen=True)
class ServeTarget:
    """What to serve: the chosen model, its original checkpoint and the chosen GGUF file."""

    model: ModelSpec
    quant: str  # the quant the user chose
    ctx: int
    gguf_source: WeightSource | None
    gguf: Quant | None
    gguf_note: str = ""  # why the GGUF differs from the chosen quant (MLX options)

    @property
    def served_name(self) -> str:
        return self.model.id

    @property
    def vllm_parser(self) -> str:
        """vLLM's docs: `deepseek_r1` for the R1 series and QwQ-32B, `qwen3` for Qwen3."""
        return "qwen3" if self.model.id.startswith("qwen3") else "deepseek_r1"

    @property
    def sglang_parser(self) -> str:
        """SGLang's docs: `deepseek-r1` for all R1 variants, `qwen3` for Qwen3. QwQ's template
        opens the thinking in the prompt, which the deepseek-r1 parser expects."""
        return "qwen3" if self.model.id.startswith("qwen3") else "deepseek-r1"


def serve_target(model_id: str, quant: str, ctx: int,
                 catalog: Catalog | None = None) -> ServeTarget:  # fmt: skip
    """The target for a catalog option. An MLX quant (Apple only) maps to the GGUF quant of
    the same model nearest in bits for llama-server."""
    model = (catalog or load_catalog()).get(model_id)
    source, q = model.find_quant(quant)
    if source.format == "gguf":
        return ServeTarget(model, q.name, ctx, source, q)
    ggufs = [(s, g) for s in model.sources if s.format == "gguf" for g in s.quants]
    if not ggufs:
        return ServeTarget(model, q.name, ctx, None, None)
    s, g = min(ggufs, key=lambda sg: abs(sg[1].bits - q.bits))
    note = (f"MLX weights run only on Apple Silicon; this is the GGUF nearest to {q.name}: "
            f"{g.name}.")  # fmt: skip
    return ServeTarget(model, q.name, ctx, s, g, note)


@dataclass(frozen=True)
class ServerCommand:
    """One way to serve the model: the command to paste, whether it fits, what to know."""

    engine: str  # "vllm" | "sglang" | "llama.cpp"
    title: str
    command: str
    fits: bool
    note: str
    base_url: str  # what to enter in "Connect to a server"
    gpus: int = 0  # the GPUs its layout uses


def _lines(parts: list[str]) -> str:
    return " \\\n    ".join(parts)


def _tail(t: ServeTarget, host: str, port: int, key: str, alias_flag: str) -> list[str]:
    return [f"{alias_flag} {t.served_name}", f"--host {host} --port {port}", f"--api-key {key}"]


@dataclass(frozen=True)
class _Weights:
    label: str  # "BF16", "FP8", "AWQ 4-bit"
    repo: str
    bytes: float


def _engine_weights(t: ServeTarget, server: ServerGpus) -> list[_Weights]:
    m = t.model
    if not m.arch.is_moe:
        return [_Weights("BF16", m.hf_repo, m.params_b * 1e9 * 2)]
    return [_Weights("FP8", m.hf_repo, R1_FP8_BYTES * 1.05)] if server.fp8 else []


def _sized(t: ServeTarget, w: _Weights, server: ServerGpus, multi_node: bool = True
           ) -> tuple[Layout, str]:  # fmt: skip
    arch = t.model.arch
    kv = kv_cache_bytes(arch, t.ctx, layout="mla")
    per_gpu = (5 if arch.is_moe else 3) * GB
    layout = pick_layout(w.bytes + kv, per_gpu, arch.heads, arch.kv_heads, server, multi_node)
    sizes = (f"{w.label} weights {w.bytes / GB:.0f} GB + KV cache {kv / GB:.1f} GB "
             f"({t.ctx:,}-token context)")  # fmt: skip
    if layout.fits:
        return layout, f"{sizes} on {layout.words()} of {server.name}."
    have = layout.gpus * server.memory_gb
    return layout, (f"Too small: {sizes} do not fit in {gpu_words(layout.gpus)} × "
                    f"{server.memory_gb:.0f} GB ({have:.0f} GB).")  # fmt: skip


def vllm_command(t: ServeTarget, w: _Weights, server: ServerGpus, host: str, key: str,
                 multi_node: bool = True) -> ServerCommand:  # fmt: skip
    layout, note = _sized(t, w, server, multi_node)
    port = PORTS["vllm"]
    parts = [f"vllm serve {w.repo}", f"--tensor-parallel-size {layout.tp}"]
    if layout.pp > 1:
        parts.append(f"--pipeline-parallel-size {layout.pp}")
        note += f" Multi-node: start a Ray cluster over the {layout.pp} nodes first (vLLM's docs)."
    if t.model.arch.is_moe:
        parts.append("--enable-expert-parallel")
    parts += [f"--reasoning-parser {t.vllm_parser}", f"--max-model-len {t.ctx}",
              "--gpu-memory-utilization 0.90",
              *_tail(t, host, port, key, "--served-model-name")]  # fmt: skip
    title = f"vLLM ({w.label}, {layout.words()})"
    return ServerCommand("vllm", title, _lines(parts), layout.fits, note + _reach_note(host, port),
                         base_url_for(host, port), layout.gpus)  # fmt: skip


def sglang_command(t: ServeTarget, w: _Weights, server: ServerGpus, host: str,
                   key: str) -> ServerCommand:  # fmt: skip
    layout, note = _sized(t, w, server)
    port = PORTS["sglang"]
    parts = ["python3 -m sglang.launch_server", f"--model-path {w.repo}", f"--tp {layout.gpus}"]
    if layout.pp > 1:
        parts += [f"--nnodes {layout.pp}", "--node-rank 0", "--dist-init-addr HEAD_NODE:5000"]
        note += (f" Multi-node: tensor parallel over {layout.pp} nodes; run it on each node "
                 "with its own --node-rank.")  # fmt: skip
    parts += [f"--reasoning-parser {t.sglang_parser}", f"--context-length {t.ctx}",
              *_tail(t, host, port, key, "--served-model-name")]  # fmt: skip
    title = f"SGLang ({w.label}, {layout.words()})"
    return ServerCommand("sglang", title, _lines(parts), layout.fits,
                         note + _reach_note(host, port), base_url_for(host, port),
                         layout.gpus)  # fmt: skip


def _download(source: WeightSource, q: Quant) -> str:
    if q.parts > 1:
        folder = q.files[0].rsplit("/", 1)[0]
        return f'hf download {source.repo} --include "{folder}/*" --local-dir .'
    return f"hf download {source.repo} {q.files[0]} --local-dir ."


def llama_server_command(t: ServeTarget, server: ServerGpus, host: str,
                         key: str) -> ServerCommand | None:  # fmt: skip
    """llama-server on the chosen GGUF: all on the GPUs when they hold it, else MoE experts
    in RAM (-ot …=CPU) or the front layers on the CPU for a dense model."""
    if t.gguf is None or t.gguf_source is None:
        return None
    arch, q, layout = t.model.arch, t.gguf, t.gguf_source.kv_layout or "mla"
    kv = kv_cache_bytes(arch, t.ctx, layout=layout)
    fa = flash_attention_possible(arch, layout)
    per_gpu = compute_bytes_gpu(arch, t.ctx, fa) + GPU_RESERVE
    need = q.size_bytes + kv
    gpus = server.count
    if server.rented:
        gpus = 1
        while gpus < server.per_node and gpus * (server.memory_gb * GB - per_gpu) < need:
            gpus *= 2
    vram = max(0.0, gpus * (server.memory_gb * GB - per_gpu))
    ram_gb = server.ram_gb or max(256.0, need / GB * 1.25)
    ram = ram_gb * GB * RAM_USABLE
    all_on_gpu = need <= vram
    fits = need <= vram + ram
    parts = ["llama-server", f"--model {q.files[0]}"]
    if all_on_gpu:
        parts.append("--n-gpu-layers 99")
        where = "entirely in GPU memory"
    elif arch.is_moe:
        parts += ["--n-gpu-layers 99", '-ot ".ffn_.*_exps.=CPU"']
        where = "attention and shared weights on the GPUs, MoE experts in RAM (-ot …=CPU)"
    else:
        layers = max(0, min(arch.layers, int(arch.layers * (vram - kv) / q.size_bytes)))
        parts.append(f"--n-gpu-layers {layers}")
        where = f"{layers} of {arch.layers} layers on the GPUs, the rest on the CPU"
    parts += [f"--ctx-size {t.ctx}", "--jinja --reasoning-format deepseek"]
    s = t.model.sampling
    sampling = f"--temp {s.get('temperature', 0.6):g} --top-p {s.get('top_p', 0.95):g}"
    if s.get("top_k"):
        sampling += f" --top-k {s['top_k']}"
    port = PORTS["llama.cpp"]
    parts += [sampling, *_tail(t, host, port, key, "--alias")]
    size = f"{q.name} is {q.size_bytes / GB:.1f} GB"
    if q.parts > 1:
        size += f" in {q.parts} parts"
    machine = f"{gpu_words(gpus)} × {server.memory_gb:.0f} GB"
    if not all_on_gpu:
        machine += f" and {ram_gb:.0f} GB RAM"
    if fits:
        note = (f"{size}; on {machine} it runs {where}. The {t.ctx:,}-token KV cache adds "
                f"{kv / GB:.1f} GB.")  # fmt: skip
    else:
        note = (f"Too small: {size} plus a {kv / GB:.1f} GB KV cache does not fit in "
                f"{machine}; it would read from disk (very slow).")  # fmt: skip
    if t.gguf_note:
        note = t.gguf_note + " " + note
    return ServerCommand("llama.cpp", f"llama.cpp llama-server ({q.name})",
                         _download(t.gguf_source, q) + "\n" + _lines(parts), fits,
                         note + _reach_note(host, port), base_url_for(host, port),
                         gpus)  # fmt: skip


def server_commands(t: ServeTarget, server: ServerGpus = DEFAULT_SERVER, host: str = LOCAL_HOST,
                    api_key: str = "") -> tuple[list[ServerCommand], list[str]]:  # fmt: skip
    """The commands for `t` on `server`, those that fit first, and notes on what is not
    offered there. Every command carries `api_key` (a new one when empty)."""
    host = check_host(host)
    key = api_key or new_api_key()
    notes: list[str] = []
    cmds: list[ServerCommand] = []
    for w in _engine_weights(t, server):
        cmds += [vllm_command(t, w, server, host, key), sglang_command(t, w, server, host, key)]
    if t.model.arch.is_moe and not server.fp8:
        notes.append(f"vLLM and SGLang serve R1's FP8 weights only on GPUs that compute in FP8 "
                     f"(H100, H200, L40S: compute capability 8.9 or newer), not on "
                     f"{server.name}.")  # fmt: skip
    if t.model.id == "deepseek-r1":
        awq = _Weights("AWQ 4-bit", R1_AWQ_REPO, R1_AWQ_BYTES)
        awq_cmd = vllm_command(t, awq, server, host, key, multi_node=False)
        card = ("A community 4-bit quant (cognitivecomputations); its card serves it with vLLM "
                "on 8 × 80 GB GPUs, A100 or H100. Size estimated. ")  # fmt: skip
        cmds.append(replace(awq_cmd, note=card + awq_cmd.note))
    elif t.model.arch.is_moe:
        notes.append("No 4-bit AWQ checkpoint of this model for vLLM is known to Ponder.")
    llama = llama_server_command(t, server, host, key)
    if llama is not None:
        cmds.append(llama)
    return sorted(cmds, key=lambda c: (not c.fits, c.gpus, c.engine != "llama.cpp")), notes
