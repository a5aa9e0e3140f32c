"""Copyable commands to serve the full DeepSeek-R1 on a server, sized to its GPUs.

When the planner says `server`, the wizard shows how to start the model with vLLM or SGLang
(FP8 weights, tensor parallelism, the DeepSeek-R1 reasoning parser) or with llama.cpp's
`llama-server` on an unsloth dynamic quant (split GGUF, MoE experts in RAM when the GPUs
are too small). Flags follow the engines' documentation; every command asks for an API key.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 10**9
R1_REPO = "deepseek-ai/DeepSeek-R1"
R1_FP8_BYTES = 671 * GB  # one byte per weight as published (FP8)
GGUF_REPO = "unsloth/DeepSeek-R1-GGUF"
# unsloth dynamic quants of the full R1: (name, bytes, parts) — smallest first
DYNAMIC_QUANTS: tuple[tuple[str, int, int], ...] = (
    ("UD-IQ1_S", int(140.2 * GB), 3),
    ("UD-IQ2_XXS", int(196.2 * GB), 4),
    ("UD-Q2_K_XL", int(226.6 * GB), 5),
)
MLA_KV_BYTES_PER_TOKEN = int(68.6 * 1024)  # f16 latent cache, llama.cpp MLA builds
GPU_USABLE = 0.90  # vLLM's default --gpu-memory-utilization
RAM_USABLE = 0.85
GPU_RESERVE = 2 * GB  # compute buffers and runtime per GPU for llama.cpp
KEY_HINT = '"$PONDER_API_KEY"'


@dataclass(frozen=True)
class ServerCommand:
    """One way to serve the model: the command to paste, whether it fits, what to know."""

    engine: str  # "vllm" | "sglang" | "llama.cpp"
    title: str
    command: str
    fits: bool
    note: str
    base_url: str  # what to enter in "Connect to a server" ("SERVER" = the machine's name)


def _lines(parts: list[str]) -> str:
    return " \\\n    ".join(parts)


def _tp(gpus: int) -> int:
    """The largest power of two ≤ gpus (R1's 128 attention heads must divide evenly)."""
    tp = 1
    while tp * 2 <= gpus:
        tp *= 2
    return tp


def _fp8_fits(gpus: int, gpu_memory_gb: float, context: int) -> tuple[bool, str]:
    have = gpus * gpu_memory_gb * GB * GPU_USABLE
    need = R1_FP8_BYTES * 1.05 + gpus * 4 * GB  # weights, activations/graphs per GPU
    if have >= need:
        return True, (
            f"{gpus} × {gpu_memory_gb:g} GB holds the {R1_FP8_BYTES / GB:.0f} GB of "
            f"FP8 weights with room for the KV cache ({context:,}-token context)."
        )
    per_gpu = need / (GPU_USABLE * GB * max(gpus, 1))
    gpus_needed = -(-need // (gpu_memory_gb * GB * GPU_USABLE)) if gpu_memory_gb else 0
    return False, (f"Too small: the FP8 weights alone are {R1_FP8_BYTES / GB:.0f} GB, and "
                   f"{gpus} × {gpu_memory_gb:g} GB gives about {have / GB:.0f} GB usable "
                   f"(~{per_gpu:.0f} GB per GPU needed; or {int(gpus_needed)} such GPUs "
                   "across nodes). Use the llama.cpp dynamic quant instead.")  # fmt: skip


def vllm_command(gpus: int, gpu_memory_gb: float, context: int = 32768, port: int = 8000,
                 repo: str = R1_REPO) -> ServerCommand:  # fmt: skip
    fits, why = _fp8_fits(gpus, gpu_memory_gb, context)
    tp = _tp(min(gpus, 8))
    parts = [f"vllm serve {repo}", f"--tensor-parallel-size {tp}"]
    if gpus >= 16:
        parts.append(f"--pipeline-parallel-size {gpus // 8}")
        why += " Multi-node: start a Ray cluster over the nodes first (vLLM's docs)."
    parts += ["--enable-expert-parallel", "--reasoning-parser deepseek_r1",
              f"--max-model-len {context}", "--gpu-memory-utilization 0.90",
              "--trust-remote-code", f"--host 0.0.0.0 --port {port}",
              f"--api-key {KEY_HINT}"]  # fmt: skip
    return ServerCommand("vllm", "vLLM (FP8, tensor + expert parallel)", _lines(parts), fits,
                         why, f"http://SERVER:{port}/v1")  # fmt: skip


def sglang_command(gpus: int, gpu_memory_gb: float, context: int = 32768, port: int = 30000,
                   repo: str = R1_REPO) -> ServerCommand:  # fmt: skip
    fits, why = _fp8_fits(gpus, gpu_memory_gb, context)
    tp = _tp(gpus)
    parts = ["python3 -m sglang.launch_server", f"--model-path {repo}", f"--tp {tp}"]
    if tp > 8:
        nodes = tp // 8
        parts += [f"--nnodes {nodes}", "--node-rank 0", "--dist-init-addr HEAD_NODE:5000"]
        why += f" Multi-node: run it on each of the {nodes} nodes with its own --node-rank."
    parts += ["--reasoning-parser deepseek-r1", f"--context-length {context}",
              "--trust-remote-code", f"--host 0.0.0.0 --port {port}",
              f"--api-key {KEY_HINT}"]  # fmt: skip
    return ServerCommand("sglang", "SGLang (FP8, tensor parallel)", _lines(parts), fits, why,
                         f"http://SERVER:{port}/v1")  # fmt: skip


def llama_server_command(gpus: int, gpu_memory_gb: float, ram_gb: float, context: int = 32768,
                         port: int = 8080) -> ServerCommand:  # fmt: skip
    """llama-server on the biggest unsloth dynamic quant that fits in VRAM + RAM."""
    vram = gpus * gpu_memory_gb * GB
    ram = ram_gb * GB * RAM_USABLE
    kv = MLA_KV_BYTES_PER_TOKEN * context
    usable_vram = max(0.0, vram - gpus * GPU_RESERVE)
    pick = None
    for name, size, parts in DYNAMIC_QUANTS:
        if size + kv <= usable_vram + ram:
            pick = (name, size, parts)
    fits = pick is not None
    name, size, n_parts = pick or DYNAMIC_QUANTS[0]
    all_on_gpu = size + kv <= usable_vram
    first = f"DeepSeek-R1-{name}/DeepSeek-R1-{name}-00001-of-{n_parts:05d}.gguf"
    parts = ["llama-server", f"--model {first}", "--n-gpu-layers 99", f"--ctx-size {context}"]
    if not all_on_gpu:
        parts.append('-ot ".ffn_.*_exps.=CPU"')
    parts += ["--jinja --reasoning-format deepseek", "--temp 0.6 --top-p 0.95",
              f"--host 0.0.0.0 --port {port}", f"--api-key {KEY_HINT}"]  # fmt: skip
    where = (
        "entirely in GPU memory"
        if all_on_gpu
        else "attention and shared weights on the GPUs, MoE experts in RAM (-ot …=CPU)"
    )
    if fits:
        note = (
            f"{name} is {size / GB:.1f} GB in {n_parts} parts; it runs {where}. "
            f"The {context:,}-token KV cache adds {kv / GB:.1f} GB."
        )
    else:
        note = (f"Even {name} ({size / GB:.1f} GB) does not fit in {vram / GB:.0f} GB VRAM + "
                f"{ram_gb:g} GB RAM; it would read from disk (very slow).")  # fmt: skip
    download = f'hf download {GGUF_REPO} --include "DeepSeek-R1-{name}/*" --local-dir .'
    return ServerCommand("llama.cpp", f"llama.cpp llama-server ({name} dynamic quant)",
                         download + "\n" + _lines(parts), fits, note,
                         f"http://SERVER:{port}/v1")  # fmt: skip


def server_commands(gpus: int, gpu_memory_gb: float, ram_gb: float = 0.0,
                    context: int = 32768, repo: str = R1_REPO) -> list[ServerCommand]:  # fmt: skip
    """The three ways, best fit first (FP8 engines when the GPUs hold the weights); `repo`
    is the FP8 checkpoint (DeepSeek-R1 or R1-0528) for vLLM and SGLang."""
    if gpus < 1 or gpu_memory_gb <= 0:
        raise ValueError("a server needs at least one GPU with memory")
    cmds = [
        vllm_command(gpus, gpu_memory_gb, context, repo=repo),
        sglang_command(gpus, gpu_memory_gb, context, repo=repo),
        llama_server_command(gpus, gpu_memory_gb, ram_gb, context),
    ]
    return sorted(cmds, key=lambda c: not c.fits)
