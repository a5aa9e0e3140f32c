"""Auto routing (#17): how well the classifier separates routine from complex prompts, and how
much time routing saves against always using the big model.

    .venv/bin/python bench/routing.py [--no-engine] [--prompts 2000]

1. Precision and recall of "complex" on the held-back `check` split (and on the `fresh`
   prompts written after the classifier was fitted), with the shipped classifier; the fit is
   redone from the `fit` split and must give the same classifier.
2. A simulated mix, 70% routine prompts, drawn from the check split in a random order (fixed
   seed), each answered by the model the router picks. Times per answer:
   - decode and prefill speeds: the planner's predictions (app/core/planner, fitted on the
     published llama.cpp measurements in tests/data/speed_measurements.csv) for
     DeepSeek-R1-Distill-Qwen-1.5B and -14B / -32B at Q4_K_M on example machines;
   - answer lengths (thinking + answer tokens), published: QwQ-32B-Preview writes 713 tokens
     on ASDIV (easy arithmetic word problems, the closest published set to routine
     requests) and 2,409 on MATH500 (arXiv 2412.21187, "Do NOT Think That Much for 2+3=?",
     Table 1). Both models are given the same lengths (small distills are, if anything, more
     verbose: that favours the big model);
   - a model switch is a reload: the engine's own load overhead measured here on a scripted
     GGUF through the real engine process (`--no-engine`: 1.0 s assumed), plus the weights
     read at DISK_GBS (an NVMe drive's sequential read, assumed; a model still in the page
     cache loads faster). The router switches only when the other model is needed;
   - a complex prompt sent to the small model is answered there, then asked again of the
     big model (Think harder): both times count.
3. One Qwen3 model with a thinking switch (its chat template's `enable_thinking`): routine
   prompts are answered by the same model without thinking, complex ones with thinking, and
   there is no switch at all. Qwen3-8B at Q4_K_M with the planner's speeds, thinking answers
   as long as above (713 / 2,409), an answer without thinking NO_THINK_FACTOR times shorter:
   5.1x, the largest token saving measured for "NoThinking" (the thinking block prefilled
   empty, what Qwen3's switch does) on DeepSeek-R1-Distill-Qwen (arXiv 2504.09858, Ma et al.,
   "Reasoning Models Can Be Effective Without Thinking"), measured on hard benchmarks where an
   answer without thinking is still a full solution, so likely conservative for routine
   prompts; the bound printed next to it is ~18x, reasoning against non-reasoning models on
   basic math (arXiv 2507.04023, "Do LLMs Overthink Basic Math Reasoning?"). A complex
   prompt classified routine is answered without thinking, then again with it (Think harder).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from app.core.routing.classifier import (  # noqa: E402
    Classifier,
    default_classifier,
    evaluate,
    fit,
    load_prompts,
)

ROUTINE_TOKENS = 713  # QwQ-32B-Preview on ASDIV (arXiv 2412.21187, Table 1)
COMPLEX_TOKENS = 2409  # QwQ-32B-Preview on MATH500 (same table)
ROUTINE_SHARE = 0.70
NO_THINK_FACTOR = 5.1  # NoThinking: up to 5.1x fewer tokens (arXiv 2504.09858)
NO_THINK_BOUND = 18.0  # reasoning vs non-reasoning models on basic math (arXiv 2507.04023)
SWITCH_MODEL = "qwen3-8b"
DISK_GBS = 2.0
SMALL = "deepseek-r1-distill-qwen-1.5b"
MACHINES = [
    ("desktop-rtx4090-64gb", "deepseek-r1-distill-qwen-32b"),
    ("desktop-rtx4090-64gb", "deepseek-r1-distill-qwen-14b"),
    ("macbook-pro-m2-max-64gb", "deepseek-r1-distill-qwen-32b"),
    ("macbook-pro-m2-max-64gb", "deepseek-r1-distill-qwen-14b"),
    ("laptop-16gb-no-gpu", "deepseek-r1-distill-qwen-14b"),
]


@dataclass(frozen=True)
class ModelTimes:
    name: str
    decode_tps: float
    prefill_tps: float
    load_s: float

    def answer_s(self, prompt: str, tokens: int) -> float:
        return max(1, len(prompt) // 4) / self.prefill_tps + tokens / self.decode_tps


def measure_load_overhead(rounds: int = 5) -> float:
    """Median seconds for the engine process to load a (3 MB) scripted GGUF: the fixed cost of
    a switch besides reading the weights."""
    from app.core.engine import EngineClient
    from scripted import write_scripted_gguf

    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_scripted_gguf(Path(tmp) / f"m{i}.gguf") for i in range(2)]
        client = EngineClient(load_timeout_s=120)
        try:
            client.load(str(paths[0]), n_ctx=2048)
            times = []
            for i in range(rounds):
                start = time.perf_counter()
                client.load(str(paths[(i + 1) % 2]), n_ctx=2048)
                times.append(time.perf_counter() - start)
        finally:
            client.close()
    return sorted(times)[len(times) // 2]


def model_times(profile_name: str, model_id: str, overhead_s: float) -> ModelTimes:
    from app.core.planner import plan_option
    from app.core.planner.profile_file import read_hardware_file

    root = Path(__file__).resolve().parents[1] / "resources" / "hardware_profiles"
    plan = plan_option(read_hardware_file(root / f"{profile_name}.json"), model_id, "Q4_K_M")
    if not plan.decode_tps or not plan.prefill_tps:
        raise SystemExit(f"{model_id} does not run on {profile_name}")
    load = overhead_s + plan.weights_bytes / (DISK_GBS * 1e9)
    return ModelTimes(plan.model_name, plan.decode_tps, plan.prefill_tps, load)


def simulate(model: Classifier, small: ModelTimes, big: ModelTimes, n: int,
             seed: int = 17) -> tuple[float, float, int]:  # fmt: skip
    """(routed seconds, always-big seconds, switches) over `n` prompts of the check split."""
    rows = [r for r in load_prompts() if r.split == "check"]
    routine = [r for r in rows if not r.complex]
    hard = [r for r in rows if r.complex]
    rng = random.Random(seed)
    loaded = "big"  # both start with the big model loaded (not counted)
    routed = always = 0.0
    switches = 0
    for _ in range(n):
        is_complex = rng.random() >= ROUTINE_SHARE
        r = rng.choice(hard if is_complex else routine)
        tokens = COMPLEX_TOKENS if is_complex else ROUTINE_TOKENS
        always += big.answer_s(r.prompt, tokens)
        route = model.classify(r.prompt).route
        if route != loaded:
            routed += (big if route == "big" else small).load_s
            switches += 1
            loaded = route
        routed += (big if route == "big" else small).answer_s(r.prompt, tokens)
        if is_complex and route == "small":  # the person asks the big model: Think harder
            routed += big.load_s + big.answer_s(r.prompt, tokens)
            switches += 1
            loaded = "big"
    return routed, always, switches


def simulate_switch(model: Classifier, one: ModelTimes, n: int, factor: float,
                    seed: int = 17) -> tuple[float, float]:  # fmt: skip
    """(routed seconds, always-thinking seconds) for one model with a thinking switch: the
    same prompts as `simulate` (same seed); routine ones answered without thinking."""
    rows = [r for r in load_prompts() if r.split == "check"]
    routine = [r for r in rows if not r.complex]
    hard = [r for r in rows if r.complex]
    rng = random.Random(seed)
    routed = always = 0.0
    for _ in range(n):
        is_complex = rng.random() >= ROUTINE_SHARE
        r = rng.choice(hard if is_complex else routine)
        tokens = COMPLEX_TOKENS if is_complex else ROUTINE_TOKENS
        always += one.answer_s(r.prompt, tokens)
        if model.classify(r.prompt).route == "big":
            routed += one.answer_s(r.prompt, tokens)
            continue
        routed += one.answer_s(r.prompt, round(tokens / factor))  # without thinking
        if is_complex:  # the person asks again with thinking: Think harder
            routed += one.answer_s(r.prompt, tokens)
    return routed, always


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-engine", action="store_true", help="assume 1.0 s load overhead")
    parser.add_argument("--prompts", type=int, default=2000)
    args = parser.parse_args()
    rows = load_prompts()
    model = default_classifier()
    refit = fit(r for r in rows if r.split == "fit")
    same = refit.to_dict() == model.to_dict()
    print(f"classifier: threshold {model.threshold:.3f}; refit on the fit split gives the "
          f"shipped one: {'yes' if same else 'NO'}")  # fmt: skip
    for split in ("check", "fresh"):
        s = evaluate(model, [r for r in rows if r.split == split])
        print(f"  {split:5} ({s.n} prompts): precision of complex {s.precision:.3f}, "
              f"recall {s.recall:.3f}, accuracy {s.accuracy:.3f}")  # fmt: skip
    check = evaluate(model, [r for r in rows if r.split == "check"])
    overhead = 1.0 if args.no_engine else measure_load_overhead()
    how = "assumed" if args.no_engine else "measured here, scripted GGUF, real engine process"
    print(f"\nswitch cost: {overhead:.2f} s engine load overhead ({how}) + weights at "
          f"{DISK_GBS:.0f} GB/s")  # fmt: skip
    print(f"mix: {args.prompts} prompts, {ROUTINE_SHARE:.0%} routine; answer lengths "
          f"{ROUTINE_TOKENS} / {COMPLEX_TOKENS} tokens (arXiv 2412.21187, Table 1)\n")  # fmt: skip
    savings = []
    for profile, big_id in MACHINES:
        small = model_times(profile, SMALL, overhead)
        big = model_times(profile, big_id, overhead)
        routed, always, switches = simulate(model, small, big, args.prompts)
        saved = 1 - routed / always
        savings.append(saved)
        print(f"{profile:25} {small.name[-4:]:>5} {small.decode_tps:5.0f} tok/s, load "
              f"{small.load_s:4.1f} s | {big.name[-3:]} {big.decode_tps:5.1f} tok/s, load "
              f"{big.load_s:4.1f} s | per prompt {routed / args.prompts:6.1f} s vs "
              f"{always / args.prompts:6.1f} s always big, {switches} switches: "
              f"saved {saved:.0%}")  # fmt: skip
    ceiling = (
        ROUTINE_SHARE
        * ROUTINE_TOKENS
        / (ROUTINE_SHARE * ROUTINE_TOKENS + (1 - ROUTINE_SHARE) * COMPLEX_TOKENS)
    )
    print(f"\nceiling (every routine answer free, no switches): {ceiling:.0%}")

    quick = round(ROUTINE_TOKENS / NO_THINK_FACTOR)
    print(f"\none Qwen3 model with a thinking switch: routine prompts answered by the same model "
          f"without thinking ({ROUTINE_TOKENS} / {NO_THINK_FACTOR} = {quick} tokens, arXiv "
          f"2504.09858), complex ones with thinking; no switch cost")  # fmt: skip
    switch_savings = []
    for profile in dict.fromkeys(p for p, _ in MACHINES):
        one = model_times(profile, SWITCH_MODEL, overhead)
        routed, always = simulate_switch(model, one, args.prompts, NO_THINK_FACTOR)
        bound, _ = simulate_switch(model, one, args.prompts, NO_THINK_BOUND)
        saved = 1 - routed / always
        switch_savings.append(saved)
        print(f"{profile:25} {one.name} {one.decode_tps:5.1f} tok/s | per prompt "
              f"{routed / args.prompts:6.1f} s vs {always / args.prompts:6.1f} s always "
              f"thinking, 0 switches: saved {saved:.0%} (at {NO_THINK_BOUND:.0f}x shorter, "
              f"arXiv 2507.04023: {1 - bound / always:.0%})")  # fmt: skip
    free = ROUTINE_SHARE * ROUTINE_TOKENS * (1 - 1 / NO_THINK_FACTOR)
    switch_ceiling = free / (ROUTINE_SHARE * ROUTINE_TOKENS + (1 - ROUTINE_SHARE) * COMPLEX_TOKENS)
    print(f"ceiling for this mode (every prompt routed right, answers {NO_THINK_FACTOR}x "
          f"shorter): {switch_ceiling:.0%}")  # fmt: skip

    print(f"\ntargets: recall >= 0.9: {'met' if check.recall >= 0.9 else 'NOT met'} "
          f"({check.recall:.3f}); time saved >= 40%: "
          f"{'met' if min(savings) >= 0.4 else 'NOT met'} "
          f"(from {min(savings):.0%} to {max(savings):.0%}); with Qwen3's no-thinking mode "
          f"instead: {'met' if min(switch_savings) >= 0.4 else 'NOT met'} "
          f"(from {min(switch_savings):.0%} to {max(switch_savings):.0%})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
