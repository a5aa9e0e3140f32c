"""Which installed models Auto uses, and which of them answers each prompt.

`pick_pair` finds a small model (at most SMALL_MAX_B billion parameters) and a big one (at
least BIG_MIN_B, and at least BIG_RATIO times the small one) among the installed models;
parameter counts come from the catalog when the file (or an MLX model's repo) is one of its
quants, else from the name ("…-1.5B-…", "14b"). Either side may be a GGUF file or an MLX
model folder (`ModelSide.format`); each loads with its own engine. `Router.choose`
classifies a prompt and names the side that answers; the engine holds one model at a time,
so a switch is a reload: the router only switches when the other side is needed, and says so
(`switch`), so the window can load first.

A model whose chat template has a thinking switch (Qwen3's `enable_thinking`) can answer a
routine prompt itself, without thinking, at no reload: when the big model has one, routine
prompts go to it with `thinking=False` and complex ones with thinking, and the small model is
not used. Such a model is also an Auto choice on its own, with no small model installed. No Qt.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from app.core.routing.classifier import Classifier, Decision, default_classifier

SMALL_MAX_B = 4.0
BIG_MIN_B = 7.0
BIG_RATIO = 3.0
# an MLX repo's quant where the catalog's pattern has {quant}: "4bit", "MLX-8Bit", "4bit-DWQ"
_MLX_QUANT = r"(?:mlx[-_])?(?:\d+[-_]?bits?|bf16|fp16|f16)(?:[-_][A-Za-z0-9]+)?"
_PARAMS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


class InstalledModel(Protocol):
    """What pick_pair needs of app.core.model_discovery.FoundModel."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Any: ...
    @property
    def problem(self) -> str | None: ...


@dataclass(frozen=True)
class ModelSide:
    """One of the two models: its file, name, size and the load settings planned for it."""

    path: str
    name: str
    params_b: float
    load_opts: dict[str, Any] = field(default_factory=dict, compare=False)
    thinking_switch: bool = False  # can answer without thinking (Qwen3's enable_thinking)
    format: str = "gguf"  # "gguf" (llama.cpp) or "mlx" (an MLX model folder)


@dataclass(frozen=True)
class AutoPair:
    small: ModelSide
    big: ModelSide

    def side(self, route: str) -> ModelSide:
        return self.big if route == "big" else self.small

    @property
    def single(self) -> bool:
        """One model with a thinking switch plays both sides."""
        return _same(self.small.path, self.big.path)

    def describe(self) -> str:
        if self.big.thinking_switch:
            return (f"{self.big.name} without thinking for routine prompts, with thinking for "
                    "complex ones")  # fmt: skip
        return f"{self.small.name} for routine prompts, {self.big.name} for complex ones"


def params_from_catalog(path: str, repo: str = "") -> float | None:
    """Billions of parameters of a catalog model whose quant file this is, or (an MLX model)
    whose MLX repo `repo` is: one of its quants' repos, or its pattern with a quant name."""
    from app.core.catalog import CatalogError, load_catalog

    name = os.path.basename(path)
    try:
        catalog = load_catalog()
    except (CatalogError, OSError):
        return None
    for model in catalog.models:
        for source in model.sources:
            if any(name in q.files for q in source.quants):
                return model.params_b
    if not repo:
        return None
    mlx = [(m, s) for m in catalog.models for s in m.sources if s.format == "mlx"]
    for model, source in mlx:
        if any(source.repo_for(q.name).lower() == repo.lower() for q in source.quants):
            return model.params_b
    for model, source in mlx:  # a quant the catalog does not list ("…-5bit")
        pattern = _MLX_QUANT.join(re.escape(p) for p in source.repo.split("{quant}"))
        if "{quant}" in source.repo and re.fullmatch(pattern, repo, re.IGNORECASE):
            return model.params_b
    return None


def params_from_name(*names: str) -> float | None:
    """ "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M" -> 1.5; None when no name says it."""
    for name in names:
        found = [float(m) for m in _PARAMS.findall(name or "")]
        if found:
            return max(found)
    return None


def parameters_b(model: InstalledModel) -> float | None:
    path = str(model.path)
    repo = str(getattr(model, "origin", "") or "") if _format(model) == "mlx" else ""
    return params_from_catalog(path, repo) or params_from_name(
        model.name, os.path.basename(path), repo.rsplit("/", 1)[-1]
    )


def _format(model: InstalledModel) -> str:
    return str(getattr(model, "format", "gguf") or "gguf")


def pick_pair(models: Iterable[InstalledModel]) -> AutoPair | None:
    """The smallest model up to SMALL_MAX_B and the largest from BIG_MIN_B (at least
    BIG_RATIO times bigger), among models that passed the header check; without such a pair,
    the largest model with a thinking switch on its own; None if neither."""
    sized = []
    for m in models:
        if m.problem:
            continue
        b = parameters_b(m)
        if b is not None:
            switch = bool(getattr(m, "thinking_switch", False))
            sized.append(ModelSide(str(m.path), m.name, b, thinking_switch=switch,
                                   format=_format(m)))  # fmt: skip
    small = min((s for s in sized if s.params_b <= SMALL_MAX_B), key=lambda s: s.params_b,
                default=None)  # fmt: skip
    big = max((s for s in sized if s.params_b >= BIG_MIN_B), key=lambda s: s.params_b,
              default=None)  # fmt: skip
    if small is None or big is None or big.params_b < BIG_RATIO * small.params_b:
        solo = max((s for s in sized if s.thinking_switch), key=lambda s: s.params_b,
                   default=None)  # fmt: skip
        return AutoPair(solo, solo) if solo is not None else None
    return AutoPair(small, big)


@dataclass(frozen=True)
class RouteChoice:
    """The side that answers a prompt, why, and whether a reload comes first."""

    side: ModelSide
    route: str  # "small" or "big"
    decision: Decision | None
    switch: bool
    note: str  # the plain-text line shown under the answer
    thinking: bool = True  # False: the big model answers a routine prompt without thinking

    @property
    def can_think_harder(self) -> bool:
        """A quick answer (the small model's, or one without thinking) can be asked again."""
        return self.route == "small" or not self.thinking


def route_note(side: ModelSide, route: str, decision: Decision | None,
               thinking: bool = True) -> str:  # fmt: skip
    """ "Answered by X (small model). Auto: routine, a rewrite." in a few words; a model with
    a thinking switch says "without thinking" or "with thinking" instead of its size."""
    if not thinking:
        how = "without thinking"
    elif side.thinking_switch:
        how = "with thinking"
    else:
        how = "(small model)" if route == "small" else "(big model)"
    if decision is None:
        why = "Think harder on the answer above"
    else:
        kind = "complex" if decision.complex else "routine"
        why = f"Auto: {kind}, {decision.reason}"
    return f"Answered by {side.name} {how}. {why}."


class Router:
    """Per prompt: classify, pick the side, switch only when the other side is needed."""

    def __init__(self, pair: AutoPair, classifier: Classifier | None = None) -> None:
        self.pair = pair
        self.classifier = classifier or default_classifier()

    def choose(self, text: str, loaded_path: str | None,
               loaded_switch: bool | None = None) -> RouteChoice:  # fmt: skip
        """`loaded_switch`: the engine's word (load info `thinking_switch`) on the loaded
        model, which overrides what its file's header said when it is the big model."""
        decision = self.classifier.classify(text)
        big = self.pair.big
        if loaded_switch is not None and _same(big.path, loaded_path):
            big = replace(big, thinking_switch=loaded_switch)
        route, thinking = decision.route, True
        side = big if route == "big" else self.pair.small
        if route == "small" and (big.thinking_switch or self.pair.single):
            # no reload: the big model answers, without thinking where it can
            side, route, thinking = big, "big", not big.thinking_switch
        return RouteChoice(side, route, decision, not _same(side.path, loaded_path),
                           route_note(side, route, decision, thinking), thinking)  # fmt: skip

    def think_harder(self, loaded_path: str | None) -> RouteChoice:
        """Ask the big model again."""
        side = self.pair.big
        return RouteChoice(side, "big", None, not _same(side.path, loaded_path),
                           route_note(side, "big", None))  # fmt: skip


def _same(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return os.path.realpath(a) == os.path.realpath(b)
