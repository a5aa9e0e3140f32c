"""Generation settings: per-model presets with the family's recommended values, and the knobs.

Each knob carries a one-line explanation for the settings panel. DeepSeek-R1 and its
distills: temperature 0.6, top-p 0.95, no system prompt (instructions go in the user turn),
thinking budget off. Also a rough token estimate for the context meter. No Qt.

Length policy for thinking models: no answer length cap by default (`max_tokens` None: the
answer may use the rest of the context). The engine keeps `answer_reserve` tokens (about
1,024) for the answer: when the thinking reaches the context minus the reserve it ends the
thinking as Answer now does, the model answers, and the message says so (`ending_note`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

DEFAULT_ANSWER_RESERVE = 1024
LEGACY_MAX_TOKENS = 4096  # the old presets' cap, saved in conversations before the reserve
MIN_THINKING_ROOM = 1024  # a new turn should leave at least this much room to think
CONTEXT_NOTE = "Thinking was cut short to leave room for the answer (context full)."
BUDGET_NOTE = "Thinking was cut short at the thinking budget."


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int | None = None  # None: the answer may use the rest of the context
    thinking_budget: int | None = None  # tokens of thinking before the model must answer
    system_prompt: str = ""
    answer_reserve: int = DEFAULT_ANSWER_RESERVE  # context kept for the answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, base: GenerationSettings | None = None):
        """Settings from a saved dict; unknown keys are ignored, missing ones come from base."""
        base = base or cls()
        data = data or {}
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        budget = known.get("thinking_budget", base.thinking_budget)
        known["thinking_budget"] = int(budget) if budget else None
        limit = known.get("max_tokens", base.max_tokens)
        if "answer_reserve" not in data and limit == LEGACY_MAX_TOKENS:
            limit = base.max_tokens  # saved before the reserve existed: the old default cap
        known["max_tokens"] = int(limit) if limit else None
        reserve = known.get("answer_reserve", base.answer_reserve)
        known["answer_reserve"] = max(0, int(reserve)) if reserve is not None else 0
        return replace(base, **known)

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for EngineClient.chat."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "thinking_budget": self.thinking_budget,
            "answer_reserve": self.answer_reserve,
        }


@dataclass(frozen=True)
class Knob:
    name: str
    label: str
    explanation: str  # one line, shown next to the control
    minimum: float = 0.0
    maximum: float = 1.0
    step: float = 0.05


KNOBS: tuple[Knob, ...] = (
    Knob(
        "temperature",
        "Temperature",
        "Randomness of each word: lower is more focused, higher more varied.",
        0.0,
        2.0,
        0.05,
    ),
    Knob(
        "top_p",
        "Top-p",
        "Only the most likely words whose chances add up to this are considered.",
        0.05,
        1.0,
        0.05,
    ),
    Knob(
        "max_tokens",
        "Answer length limit",
        "The most tokens the model may write per answer, thinking included "
        "(none: the rest of the context).",
        0,
        131072,
        256,
    ),
    Knob(
        "answer_reserve",
        "Room kept for the answer",
        "When the thinking fills the context up to this many tokens, it is cut short and "
        "the model answers.",
        0,
        16384,
        256,
    ),
    Knob(
        "thinking_budget",
        "Thinking budget",
        "Cap on thinking tokens; when reached the model stops thinking and answers.",
        0,
        65536,
        256,
    ),
    Knob(
        "system_prompt",
        "System prompt",
        "Standing instructions for the model (not used by models that advise against it).",
    ),
)
KNOB_BY_NAME = {k.name: k for k in KNOBS}


@dataclass(frozen=True)
class Preset:
    family: str
    pattern: str  # regular expression matched against the model's name or file name
    settings: GenerationSettings
    system_prompt_supported: bool = True
    can_disable_thinking: bool = False
    note: str = ""
    math_hint: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


R1_NOTE = (
    "DeepSeek recommends temperature 0.6, top-p 0.95 and no system prompt: put instructions "
    "in your message. R1 always thinks; a thinking budget can cut it short."
)
PRESETS: tuple[Preset, ...] = (
    Preset(
        "DeepSeek-R1",
        r"deepseek[-_ ]?r1|r1[-_ ]distill|r1-0528",
        GenerationSettings(temperature=0.6, top_p=0.95),
        system_prompt_supported=False,
        note=R1_NOTE,
        math_hint="Please reason step by step, and put your final answer within \\boxed{}.",
    ),
    Preset(
        "Qwen3 / QwQ",
        r"qwen3|qwq",
        GenerationSettings(temperature=0.6, top_p=0.95),
        note="Qwen recommends temperature 0.6 and top-p 0.95 for thinking mode.",
    ),
    Preset("Other", r".*", GenerationSettings(), note="Generic defaults for a thinking model."),
)


def preset_for_model(name: str | None) -> Preset:
    """The preset whose pattern matches the model name or file name (case-insensitive)."""
    text = (name or "").lower()
    for preset in PRESETS:
        if re.search(preset.pattern, text):
            return preset
    return PRESETS[-1]


def settings_for(model: str | None, saved: dict[str, Any] | None = None) -> GenerationSettings:
    """The model family's defaults, overridden by what the conversation saved."""
    return GenerationSettings.from_dict(saved, preset_for_model(model).settings)


def apply_system_prompt(
    history: list[dict[str, str]], settings: GenerationSettings, preset: Preset
) -> list[dict[str, str]]:
    """Add the system prompt: as a system turn, or (R1) in front of the first user turn."""
    prompt = settings.system_prompt.strip()
    if not prompt or not history:
        return history
    if preset.system_prompt_supported:
        return [{"role": "system", "content": prompt}, *history]
    out = [dict(m) for m in history]
    for m in out:
        if m["role"] == "user":
            m["content"] = f"{prompt}\n\n{m['content']}"
            break
    return out


def estimate_tokens(text: str) -> int:
    """A rough token count (about 3.5 characters per token for English and code)."""
    return (len(text) * 2 + 6) // 7 if text else 0


@dataclass(frozen=True)
class ContextUse:
    """How the context window is used: the last prompt, thinking and answer, vs its size."""

    n_ctx: int
    prompt: int = 0
    thinking: int = 0
    answer: int = 0

    @property
    def used(self) -> int:
        return self.prompt + self.thinking + self.answer

    def next_turn_fits(self, next_text: str, reserve: int) -> bool:
        """Whether the next prompt (history without thinking + new text) leaves `reserve`
        tokens for the model to think and answer."""
        if self.n_ctx <= 0:
            return True
        next_prompt = self.prompt + self.answer + estimate_tokens(next_text) + 8
        return next_prompt + reserve <= self.n_ctx


def room_to_answer(settings: GenerationSettings, n_ctx: int) -> int:
    """Room a new prompt must leave for thinking plus answer: the length limit if one is set,
    else the answer reserve plus some room to think; at most half the context."""
    wanted = settings.max_tokens or settings.answer_reserve + MIN_THINKING_ROOM
    return max(256, min(wanted, n_ctx // 2))


def ending_note(stats: dict[str, Any]) -> str | None:
    """What to say under an answer whose thinking the engine cut short, or None."""
    by = stats.get("thinking_ended_by")
    if by == "context":
        return CONTEXT_NOTE
    if by == "budget":
        return BUDGET_NOTE
    return None


_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|F16|BF16|F32|\d+bit)(?![A-Za-z0-9])", re.I
)


def quant_from_name(name: str) -> str | None:
    """The quantization named in a model file name (Q4_K_M, IQ2_XXS, F16, 4bit), if any."""
    match = _QUANT.search(name.replace(".gguf", "").replace("-", " ").replace(".", " "))
    return match.group(1).upper() if match else None
