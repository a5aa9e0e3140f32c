"""The model catalog: resources/catalog.toml read into frozen values, validated on load.

`load_catalog()` returns a `Catalog` of `ModelSpec`s (architecture numbers, license,
sampling settings) each with its `WeightSource`s (GGUF or MLX repos) and their `Quant`s
(file names, sizes in bytes). Sizes are the catalog's stored ones until
`app.core.hub_sizes.refresh_sizes` replaces them with the Hub's. Errors are `CatalogError`
with a message that is a sentence.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).resolve().parents[2] / "resources" / "catalog.toml"
GB = 10**9

# Effective bits per weight of real files (FACTS.md); MLX n-bit files carry n + 0.5.
GGUF_BITS: dict[str, float] = {
    "Q2_K": 3.1, "Q3_K_M": 3.95, "Q4_K_M": 4.87, "Q5_K_M": 5.69, "Q6_K": 6.57, "Q8_0": 8.51,
    "F16": 16.0, "BF16": 16.0, "IQ4_XS": 4.25, "UD-IQ1_S": 1.67, "UD-IQ1_M": 2.03,
    "UD-IQ2_XXS": 2.34, "UD-Q2_K_XL": 2.70,
}  # fmt: skip
MLX_FORMAT_BITS = {"3bit": 3.5, "4bit": 4.5, "5bit": 5.5, "6bit": 6.5, "8bit": 8.5, "bf16": 16.0}
# What mlx-lm loads from a folder: the weights, config.json and the tokenizer files; every one
# of these must match a file. "*.json" brings the optional JSON files along (index, special
# tokens map, generation config); config.json guarantees it matches. mlx-community's 2025 R1
# conversions hold exactly config.json, model*.safetensors, model.safetensors.index.json,
# special_tokens_map.json, tokenizer.json and tokenizer_config.json (FACTS.md).
MLX_PATTERNS = ("config.json", "model*.safetensors", "tokenizer.json", "tokenizer_config.json",
                "*.json")  # fmt: skip
# Taken when present, never required: newer conversions keep the chat template in a file.
MLX_OPTIONAL_PATTERNS = ("*.jinja",)
KV_LAYOUTS = ("mla", "legacy")
ARCH_TYPES = ("dense", "moe_mla")
_DENSE_KEYS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "max_ctx")
_MLA_KEYS = ("dense_layers", "experts", "experts_per_token", "expert_ffn", "kv_lora_rank",
             "qk_rope_head_dim")  # fmt: skip


class CatalogError(ValueError):
    """A catalog or a request against it is wrong; the message says what, in a sentence."""


@dataclass(frozen=True)
class Architecture:
    """The numbers the memory and speed formulas need (config.json of the model)."""

    type: str  # "dense" or "moe_mla"
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    max_ctx: int
    tied_embeddings: bool = False
    dense_layers: int = 0
    experts: int = 0
    shared_experts: int = 0
    experts_per_token: int = 0
    expert_ffn: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0

    @property
    def is_moe(self) -> bool:
        return self.type == "moe_mla"


@dataclass(frozen=True)
class Quant:
    """One downloadable variant: its files and total size."""

    name: str
    bits: float  # effective bits per weight
    size_bytes: int
    files: tuple[str, ...]  # GGUF: every part of a split; MLX: () and the source's patterns
    size_source: str = "catalog"  # "catalog", "estimated", "hub"
    repo: str = ""  # MLX: a repo named unlike the source's pattern ("" = the pattern)

    @property
    def parts(self) -> int:
        return max(1, len(self.files))


@dataclass(frozen=True)
class WeightSource:
    """A repo holding one format of a model, with the quants it offers."""

    format: str  # "gguf" or "mlx"
    repo: str  # MLX: a pattern with {quant}
    quants: tuple[Quant, ...]
    kv_layout: str = ""  # MLA models' GGUFs: "mla" or "legacy" (see resources/catalog.toml)

    def repo_for(self, quant: str) -> str:
        for q in self.quants:
            if q.name == quant and q.repo:
                return q.repo
        return self.repo.format(quant=quant)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the catalog (a distill, the full R1, or another reasoning family)."""

    id: str
    name: str
    family: str
    base: str
    distill: bool
    license: str
    params_b: float
    active_params_b: float
    released: str
    arch: Architecture
    sampling: dict[str, Any]
    thinking_tokens: int
    answer_tokens: int
    recommended_ctx: int
    sources: tuple[WeightSource, ...]
    order: int = 0
    hf_repo: str = ""  # the original checkpoint (what vLLM and SGLang serve)

    @property
    def quant_names(self) -> list[str]:
        return [q.name for s in self.sources for q in s.quants]

    def find_quant(self, quant: str) -> tuple[WeightSource, Quant]:
        """The source and quant named `quant` (case-insensitive); CatalogError if none."""
        for source in self.sources:
            for q in source.quants:
                if q.name.lower() == quant.lower():
                    return source, q
        raise CatalogError(
            f"{self.id} has no quant {quant!r}; it has {', '.join(self.quant_names)}."
        )


@dataclass(frozen=True)
class Catalog:
    """All models, in catalog order."""

    models: tuple[ModelSpec, ...]
    path: str = ""
    _index: dict[str, ModelSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({m.id: m for m in self.models})

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def get(self, model_id: str) -> ModelSpec:
        """The model with this id (case-insensitive); CatalogError naming the closest ids."""
        model = self._index.get(model_id.strip().lower())
        if model is not None:
            return model
        close = difflib.get_close_matches(model_id.lower(), self.ids, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise CatalogError(
            f"There is no model {model_id!r} in the catalog.{hint} "
            "`ponder-cli plan --list` shows them all."
        )

    def with_sizes(self, sizes: dict[tuple[str, str], int]) -> Catalog:
        """A copy where quant sizes keyed by (model id, quant) come from the Hub."""
        models = []
        for m in self.models:
            sources = []
            for s in m.sources:
                quants = tuple(
                    replace(q, size_bytes=sizes[(m.id, q.name)], size_source="hub")
                    if (m.id, q.name) in sizes
                    else q
                    for q in s.quants
                )
                sources.append(replace(s, quants=quants))
            models.append(replace(m, sources=tuple(sources)))
        return Catalog(tuple(models), self.path)


@functools.lru_cache(maxsize=4)
def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate the catalog (resources/catalog.toml unless `path` is given)."""
    p = Path(path) if path else CATALOG_PATH
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise CatalogError(f"The model catalog {p} cannot be read: {exc.strerror}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"The model catalog {p} is not valid TOML: {exc}.") from exc
    return parse_catalog(data, str(p))


def parse_catalog(data: dict[str, Any], path: str = "") -> Catalog:
    """Build a Catalog from the parsed TOML; CatalogError says which entry is wrong."""
    if data.get("schema") != 1:
        raise CatalogError("The model catalog has no `schema = 1` line; it may be from another "
                           "version of Ponder.")  # fmt: skip
    defaults = data.get("defaults") or {}
    models = []
    seen: set[str] = set()
    for order, (key, entry) in enumerate((data.get("models") or {}).items()):
        model = _parse_model(key, entry, defaults, order)
        if model.id in seen:
            raise CatalogError(f"The model catalog lists {model.id!r} twice.")
        seen.add(model.id)
        models.append(model)
    if not models:
        raise CatalogError("The model catalog lists no models.")
    return Catalog(tuple(models), path)


def _parse_model(key: str, e: dict[str, Any], defaults: dict[str, Any], order: int) -> ModelSpec:
    model_id = str(e.get("id", key))
    where = f"catalog entry {model_id!r}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", model_id):
        raise CatalogError(f"The {where} has an id that is not lower-case letters, digits, "
                           "dots and dashes.")  # fmt: skip
    try:
        arch = _parse_arch(e["arch"], where)
        params = float(e["params_b"])
        if params <= 0:
            raise CatalogError(f"The {where} has a non-positive params_b.")
        model = ModelSpec(
            id=model_id,
            name=str(e["name"]),
            family=str(e.get("family", "")),
            base=str(e.get("base", "")),
            distill=bool(e.get("distill", False)),
            license=str(e["license"]),
            params_b=params,
            active_params_b=float(e.get("active_params_b", params)),
            released=str(e.get("released", "")),
            arch=arch,
            sampling=dict(e.get("sampling") or defaults.get("sampling") or {}),
            thinking_tokens=int(e.get("thinking_tokens", defaults.get("thinking_tokens", 1200))),
            answer_tokens=int(e.get("answer_tokens", defaults.get("answer_tokens", 300))),
            recommended_ctx=int(e.get("recommended_ctx", defaults.get("recommended_ctx", 16384))),
            sources=(),
            order=order,
            hf_repo=str(e.get("hf_repo", "")),
        )
    except KeyError as exc:
        raise CatalogError(f"The {where} has no {exc.args[0]!r}.") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CatalogError):
            raise
        raise CatalogError(f"The {where} has a value of the wrong type: {exc}.") from exc
    sources = tuple(_parse_source(s, model, where) for s in e.get("sources") or ())
    if not sources:
        raise CatalogError(f"The {where} has no weight sources.")
    names = [q.name.lower() for s in sources for q in s.quants]
    if len(names) != len(set(names)):
        raise CatalogError(f"The {where} names the same quant in two sources.")
    if model.recommended_ctx > arch.max_ctx:
        raise CatalogError(f"The {where} recommends a context above its maximum.")
    return replace(model, sources=sources)


def _parse_arch(a: dict[str, Any], where: str) -> Architecture:
    kind = a.get("type")
    if kind not in ARCH_TYPES:
        raise CatalogError(f"The {where} has arch type {kind!r}; expected one of {ARCH_TYPES}.")
    needed = _DENSE_KEYS + (_MLA_KEYS if kind == "moe_mla" else ())
    missing = [k for k in needed if k not in a]
    if missing:
        raise CatalogError(f"The {where} lacks the architecture numbers {', '.join(missing)}.")
    known = set(Architecture.__dataclass_fields__)
    unknown = sorted(set(a) - known)
    if unknown:
        raise CatalogError(f"The {where} has unknown architecture keys {', '.join(unknown)}.")
    values: dict[str, Any] = {
        k: (v if k in ("type", "tied_embeddings") else int(v)) for k, v in a.items()
    }
    if any(values[k] <= 0 for k in needed):
        raise CatalogError(f"The {where} has an architecture number that is not positive.")
    return Architecture(**values)


def _parse_source(s: dict[str, Any], model: ModelSpec, where: str) -> WeightSource:
    fmt = s.get("format")
    if fmt not in ("gguf", "mlx"):
        raise CatalogError(f"The {where} has a source with format {fmt!r}; expected gguf or mlx.")
    repo = s.get("repo")
    if not isinstance(repo, str) or "/" not in repo:
        raise CatalogError(f"The {where} has a source without an owner/name repo.")
    quants: list[Quant] = []
    for name, v in (s.get("quants") or {}).items():
        quants.append(_parse_quant(str(name), v, s, fmt, model, where))
    for name in s.get("estimate") or ():
        quants.append(_parse_quant(str(name), {"estimated": True}, s, fmt, model, where))
    if not quants:
        raise CatalogError(f"The {where} has a {fmt} source ({repo}) with no quants.")
    layout = str(s.get("kv_layout", ""))
    if layout and layout not in KV_LAYOUTS:
        raise CatalogError(f"The {where} has kv_layout {layout!r}; expected mla or legacy.")
    if fmt == "gguf" and model.arch.type == "moe_mla" and not layout:
        raise CatalogError(f"The {where} has a GGUF source ({repo}) that does not say its "
                           "kv_layout (mla or legacy).")  # fmt: skip
    return WeightSource(fmt, repo, tuple(quants), layout)


def _parse_quant(name: str, v: Any, s: dict[str, Any], fmt: str, model: ModelSpec,
                 where: str) -> Quant:  # fmt: skip
    table = v if isinstance(v, dict) else {"gb": v}
    bits = (MLX_FORMAT_BITS if fmt == "mlx" else GGUF_BITS).get(name)
    if bits is None:
        raise CatalogError(f"The {where} has quant {name!r}, whose bits per weight Ponder "
                           "does not know.")  # fmt: skip
    estimated = bool(table.get("estimated", False)) or "gb" not in table
    if "gb" in table:
        try:
            gb = float(table["gb"])
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"The {where} has a size for {name} that is not a number.") from exc
        if gb <= 0:
            raise CatalogError(f"The {where} has a non-positive size for {name}.")
        size = int(round(gb * GB))
    else:
        size = int(model.params_b * 1e9 * bits / 8)
    repo = str(table.get("repo", ""))
    if fmt == "mlx":
        if "{quant}" not in s["repo"] and not repo:
            raise CatalogError(f"The {where} has an MLX repo without {{quant}} in its name.")
        files: tuple[str, ...] = ()
    else:
        if repo:
            raise CatalogError(f"The {where} names a repo for GGUF quant {name}; give it its "
                               "own source instead.")  # fmt: skip
        parts = int(table.get("parts", 1))
        if parts > 1:
            pattern = table.get("split_pattern") or s.get("split_pattern")
            if not pattern:
                raise CatalogError(f"The {where} has a split quant {name} but no split_pattern.")
            files = tuple(pattern.format(quant=name, part=i, parts=parts)
                          for i in range(1, parts + 1))  # fmt: skip
        else:
            pattern = s.get("pattern")
            if not pattern:
                raise CatalogError(f"The {where} has quant {name} but no file pattern.")
            files = (pattern.format(quant=name),)
    return Quant(name, bits, size, files, "estimated" if estimated else "catalog", repo)


@dataclass(frozen=True)
class DownloadSource:
    """What to fetch for one catalog (model, quant): a repo and its files or patterns."""

    repo: str
    files: tuple[str, ...]
    patterns: tuple[str, ...]
    size_bytes: int
    format: str
    optional_patterns: tuple[str, ...] = ()  # taken when present (MLX chat templates)


def find_source(model_id: str, quant: str | None, catalog: Catalog | None = None) -> DownloadSource:
    """The download for `model_id` at `quant`; CatalogError (a sentence) when there is none."""
    model = (catalog or load_catalog()).get(model_id)
    if not quant:
        raise CatalogError(f"Say which quant of {model.id}: {', '.join(model.quant_names)}.")
    source, q = model.find_quant(quant)
    mlx = source.format == "mlx" and not q.files
    return DownloadSource(source.repo_for(q.name), q.files, MLX_PATTERNS if mlx else (),
                          q.size_bytes, source.format,
                          MLX_OPTIONAL_PATTERNS if mlx else ())  # fmt: skip
