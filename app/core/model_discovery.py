"""Find models already on this computer, so they can be used without copying them.

Looks in the Hugging Face cache (HF_HUB_CACHE / HF_HOME), LM Studio's models folder, Ollama's
store (GGUF blobs behind manifests) and the files the user added by hand (a small JSON list
in the user config folder). GGUF metadata comes from the pure-Python header check
(`backends.gguf_check`), never from loading the model.

MLX models (a folder written by MLX: config.json, model*.safetensors, tokenizer files, as
mlx-community publishes them) are found in the Hugging Face cache and LM Studio's folder:
their metadata comes from the folder's JSON files (config.json, the shard index, the
tokenizer config) and the safetensors headers, the checks the MLX engine makes before it
loads (`backends.mlx_check`); MLX itself is never imported. No Qt, no network.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from app.core.generation_settings import quant_from_name
from backends.base import EngineFailure
from backends.chat_template import has_thinking_switch
from backends.gguf_check import GGUFError, GGUFHeader, check_gguf
from backends.mlx_check import check_model_folder

log = logging.getLogger(__name__)

SOURCES = {
    "hf-cache": "Hugging Face cache",
    "lmstudio": "LM Studio",
    "ollama": "Ollama",
    "added": "added by you",
}
SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
OLLAMA_MODEL_MEDIA = "application/vnd.ollama.image.model"
ADDED_FILE = "added_models.json"
MLX_WEIGHTS = "model*.safetensors"  # what mlx-lm loads from a folder
MAX_JSON_BYTES = 32 << 20  # a config or tokenizer config larger than this is not read
# "…-4bit", "…-MLX-8Bit", "…-bf16": the quant at the end of an MLX repo's name
_MLX_QUANT = re.compile(r"(?<![A-Za-z0-9])(?:(\d+)[-_]?bits?|(bf16|fp16|f16|fp32|f32))"
                        r"(?![A-Za-z0-9])", re.IGNORECASE)  # fmt: skip
_MLX_NAME_TAIL = re.compile(r"[-_.](?:mlx[-_.]?)?(?:\d+[-_]?bits?|bf16|fp16|f16|fp32|f32)"
                            r"(?:[-_.]mlx)?$|[-_.]mlx$", re.IGNORECASE)  # fmt: skip
_DTYPE_QUANT = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
# config.json `architectures` of a model that writes text (not an encoder, not embeddings)
_GENERATIVE = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


@dataclass(frozen=True)
class FoundModel:
    """One model on disk: `path` is what to load: a GGUF file (part 1 of a split one), or
    an MLX model's folder (`format` "mlx"; `parts` then lists every file in it)."""

    name: str
    path: Path
    size_bytes: int
    source: str  # a key of SOURCES
    format: str = "gguf"
    quant: str | None = None
    parts: tuple[Path, ...] = ()
    architecture: str | None = None
    context_length: int | None = None
    has_chat_template: bool = False
    thinking_switch: bool = False  # its template can turn the thinking off (Qwen3)
    origin: str = ""  # the HF repo, LM Studio publisher/repo or Ollama name:tag
    last_used: float | None = None
    problem: str | None = None  # why the header (or MLX folder) check refused it, in words
    manifest: Path | None = None  # Ollama: the manifest that names this blob

    @property
    def key(self) -> str:
        """A stable identity: the real path of the file to load."""
        return os.path.realpath(self.path)

    @property
    def source_label(self) -> str:
        return SOURCES.get(self.source, self.source)

    @property
    def owned_by_other_tool(self) -> bool:
        """LM Studio's and Ollama's files belong to those apps: delete only if asked twice."""
        return self.source in ("lmstudio", "ollama")


# -- where the tools keep their models ---------------------------------------------------
def hf_cache_dir() -> Path:
    """The Hub cache as huggingface_hub resolves it, without importing huggingface_hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def lmstudio_dirs() -> list[Path]:
    """LM Studio's models folders: the one its settings name (if moved), the current default
    and the pre-0.3 one."""
    home = Path.home()
    dirs = [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    for settings in (home / ".lmstudio" / "settings.json", home / ".cache" / "lm-studio" /
                     "settings.json"):  # fmt: skip
        try:
            moved = json.loads(settings.read_text(encoding="utf-8")).get("downloadsFolder")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(moved, str) and moved and Path(moved).expanduser() not in dirs:
            dirs.insert(0, Path(moved).expanduser())
    return dirs


def ollama_dirs() -> list[Path]:
    """Ollama's store: OLLAMA_MODELS, else the user's and the Linux service's folder."""
    if os.environ.get("OLLAMA_MODELS"):
        return [Path(os.environ["OLLAMA_MODELS"]).expanduser()]
    return [Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def config_dir() -> Path:
    """Ponder's user config folder (PONDER_CONFIG_DIR overrides it)."""
    override = os.environ.get("PONDER_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("Ponder", appauthor=False))


# -- reading one model --------------------------------------------------------------------
def quant_from_file_type(file_type: object) -> str | None:
    """GGUF `general.file_type` (llama_ftype) as a quant name: 15 -> Q4_K_M."""
    if not isinstance(file_type, int):
        return None
    from gguf.constants import LlamaFileType

    try:
        name = LlamaFileType(file_type).name
    except ValueError:
        return None
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def display_name(file_name: str, quant: str | None) -> str:
    """`DeepSeek-R1-Distill-Qwen-7B-Q4_K_M-00001-of-00002.gguf` -> `DeepSeek-R1-Distill-Qwen-7B`."""
    stem = SPLIT_RE.sub("", file_name)
    stem = stem[:-5] if stem.lower().endswith(".gguf") else stem
    for q in (quant, quant_from_name(file_name)):  # the header's and the file name's
        if q:
            for sep in ("-", ".", "_"):
                if stem.upper().endswith(sep + q.upper()):
                    return stem[: -len(q) - 1]
    return stem


def read_model(
    path: Path,
    source: str,
    origin: str = "",
    parts: Sequence[Path] = (),
    name: str | None = None,
    quant_hint: str | None = None,
) -> FoundModel:
    """Describe one model file from its header; a refused header gives `problem`, not a raise."""
    parts = tuple(parts) or (path,)
    size = sum(_size(p) for p in parts)
    header: GGUFHeader | None = None
    problem = None
    try:
        header = check_gguf(path)
    except (GGUFError, OSError) as exc:
        problem = str(exc)
    meta = header.metadata if header else {}
    quant = quant_from_file_type(meta.get("general.file_type")) or quant_hint
    quant = quant or quant_from_name(path.name)
    ctx = header.arch_value("context_length") if header else None
    return FoundModel(
        name=name or display_name(path.name, quant),
        path=path,
        size_bytes=size,
        source=source,
        quant=quant,
        parts=parts,
        architecture=header.architecture if header else None,
        context_length=int(ctx) if isinstance(ctx, int) else None,
        has_chat_template=bool(header and header.chat_template),
        thinking_switch=has_thinking_switch(header.chat_template if header else None),
        origin=origin,
        problem=problem,
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def group_gguf_files(files: Iterable[Path]) -> list[tuple[Path, ...]]:
    """Whole GGUFs and complete split sets (part 1 first); projector files left out."""
    singles: list[tuple[Path, ...]] = []
    splits: dict[tuple[Path, str, int], dict[int, Path]] = {}
    for f in sorted(files):
        if f.name.lower().startswith("mmproj"):
            continue
        m = SPLIT_RE.search(f.name)
        if m:
            key = (f.parent, f.name[: m.start()], int(m.group(2)))
            splits.setdefault(key, {})[int(m.group(1))] = f
        elif f.name.lower().endswith(".gguf"):
            singles.append((f,))
    for (_, _, count), found in splits.items():
        if set(found) == set(range(1, count + 1)):
            singles.append(tuple(found[i] for i in range(1, count + 1)))
    return singles


# -- reading one MLX model folder ---------------------------------------------------------
def mlx_quant_from_name(name: str) -> str | None:
    """`DeepSeek-R1-Distill-Qwen-7B-4bit` -> `4bit`, `…-MLX-8Bit` -> `8bit`, `…-bf16` -> `bf16`."""
    found = list(_MLX_QUANT.finditer(name))
    if not found:
        return None
    bits, dtype = found[-1].groups()
    return f"{int(bits)}bit" if bits else dtype.lower()


def mlx_display_name(repo_name: str) -> str:
    """`DeepSeek-R1-Distill-Qwen-7B-4bit` -> `DeepSeek-R1-Distill-Qwen-7B` (the quant is shown
    on its own, as for GGUF files); `Qwen3-8B-MLX-bf16` -> `Qwen3-8B`."""
    stem = repo_name.rsplit("/", 1)[-1]
    for _ in range(2):  # "…-4bit-mlx", then "…-MLX"
        shorter = _MLX_NAME_TAIL.sub("", stem)
        if not shorter or shorter == stem:
            break
        stem = shorter
    return stem


def hf_repo_of(folder: Path) -> str:
    """`…/models--org--name/snapshots/<commit>` -> `org/name`; "" for another folder."""
    repo = folder.parent.parent.name
    if folder.parent.name != "snapshots" or not repo.startswith("models--"):
        return ""
    return repo[len("models--") :].replace("--", "/")


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    """(the JSON object in `path`, None) or (None, what is wrong, in words)."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None, f"{path.name} is too large to read (over {MAX_JSON_BYTES >> 20} MB)"
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"{path.name} cannot be read ({exc.strerror or exc})"
    except (UnicodeDecodeError, ValueError):
        return None, f"{path.name} is damaged (not valid JSON)"
    if not isinstance(data, dict):
        return None, f"{path.name} is damaged (not a JSON object)"
    return data, None


def _mlx_weights(folder: Path) -> list[Path]:
    """The weight shards mlx-lm loads (broken links included: a missing blob is missing)."""
    return sorted(folder.glob(MLX_WEIGHTS))


def _written_by_mlx(weights: Sequence[Path]) -> bool:
    """A safetensors header whose metadata says `format: mlx` (what MLX writes)."""
    for shard in weights[:1]:
        try:
            with open(shard, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                if 2 <= n <= 100_000_000:
                    meta = json.loads(f.read(n)).get("__metadata__") or {}
                    return isinstance(meta, dict) and meta.get("format") == "mlx"
        except (OSError, ValueError, struct.error, AttributeError):
            return False
    return False


def _generative(config: Mapping) -> bool:
    """False for a config that is clearly not a text-writing model (an encoder-decoder such
    as Whisper or T5, an embedding or classification model)."""
    if config.get("is_encoder_decoder") is True:
        return False
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and all(isinstance(a, str) for a in archs):
        return any(a.endswith(_GENERATIVE) for a in archs)
    return True


def is_mlx_folder(folder: Path, origin: str = "") -> bool:
    """Whether `folder` holds an MLX model (complete or not): config.json, no GGUF, a
    text-writing model, and a sign that MLX wrote it (safetensors metadata `format: mlx`,
    MLX's `quantization` in config.json, or "mlx" in the repo or folder name). A PyTorch
    checkpoint in transformers' format (metadata `format: pt`) is not one."""
    if not (folder / "config.json").is_file():
        return False
    if next(folder.rglob("*.gguf"), None) is not None:
        return False
    config, _ = _read_json(folder / "config.json")
    if config is not None and not _generative(config):
        return False
    weights = _mlx_weights(folder)
    named = "mlx" in f"{origin}/{folder.name}".lower()
    if weights and not named and not _written_by_mlx([w for w in weights if w.is_file()]):
        return config is not None and "quantization" in config
    return bool(weights) or named or (config is not None and "quantization" in config)


def _chat_template(folder: Path) -> str | None:
    """The chat template as mlx-lm's tokenizer finds it: chat_template.jinja, else
    chat_template.json, else tokenizer_config.json (a list of named templates: the default)."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        try:
            if jinja.stat().st_size <= MAX_JSON_BYTES:
                return jinja.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    for name in ("chat_template.json", "tokenizer_config.json"):
        if not (folder / name).is_file():
            continue
        data, _ = _read_json(folder / name)
        value = (data or {}).get("chat_template")
        if isinstance(value, list):  # [{"name": "default", "template": "…"}, …]
            named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
            value = named.get("default") or next(iter(named.values()), None)
        if isinstance(value, str) and value:
            return value
    return None


def _mlx_quant(config: Mapping, name: str) -> str | None:
    """config.json's `quantization.bits` (4 -> "4bit"), else the repo name's, else the dtype
    of unquantized weights (bfloat16 -> "bf16")."""
    quant = config.get("quantization")
    bits = quant.get("bits") if isinstance(quant, dict) else None
    if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= 32:
        return f"{bits}bit"
    dtype = config.get("torch_dtype") or config.get("dtype")
    return mlx_quant_from_name(name) or (_DTYPE_QUANT.get(dtype) if isinstance(dtype, str)
                                         else None)  # fmt: skip


def _mlx_problem(folder: Path, label: str) -> str | None:
    """Why the MLX engine would refuse this folder, in its words (backends/mlx_check.py, all
    but the architecture check, which needs MLX), or None."""
    try:
        check_model_folder(str(folder), label, architecture=False)
    except EngineFailure as exc:
        return exc.message.rstrip(".")
    return None


def read_mlx_folder(folder: Path, source: str, origin: str = "",
                    name: str | None = None) -> FoundModel:  # fmt: skip
    """Describe an MLX model folder from its JSON files and safetensors headers, without
    loading it; what the MLX engine would refuse gives `problem`, not a raise."""
    origin = origin or hf_repo_of(folder)
    repo_name = (origin or folder.name).rsplit("/", 1)[-1]
    config, config_problem = _read_json(folder / "config.json")
    weights = _mlx_weights(folder)
    present = [w for w in weights if w.is_file()]
    cfg: Mapping = config or {}
    text = cfg.get("text_config")  # a model that also reads images keeps its LM's figures here
    ctx = cfg.get("max_position_embeddings") or (
        text.get("max_position_embeddings") if isinstance(text, dict) else None
    )
    arch = cfg.get("model_type")
    template = _chat_template(folder) if config is not None else None
    parts = tuple(sorted(p for p in folder.rglob("*") if p.is_symlink() or p.is_file()))
    name = name or mlx_display_name(repo_name)
    return FoundModel(
        name=name,
        path=folder,
        size_bytes=sum(_size(w) for w in present),
        source=source,
        format="mlx",
        quant=_mlx_quant(cfg, repo_name),
        parts=parts,
        architecture=arch if isinstance(arch, str) and arch else None,
        context_length=ctx if isinstance(ctx, int) and not isinstance(ctx, bool) else None,
        has_chat_template=template is not None,
        thinking_switch=has_thinking_switch(template),
        origin=origin,
        problem=config_problem or _mlx_problem(folder, name),
    )


# -- the sources --------------------------------------------------------------------------
def scan_hf_cache(cache: Path) -> list[FoundModel]:
    """GGUFs in `models--org--name/snapshots/<commit>/`, and MLX snapshot folders; the newest
    snapshot wins a tie (an older snapshot with the same MLX weights is left out)."""
    found: list[FoundModel] = []
    if not cache.is_dir():
        return found
    for folder in sorted(cache.glob("models--*")):
        repo = folder.name[len("models--") :].replace("--", "/")
        snaps = sorted(
            (p for p in (folder / "snapshots").glob("*") if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        mlx_weights: set[frozenset[str]] = set()
        for snap in snaps:
            files = [p for p in snap.rglob("*.gguf") if p.exists()]  # broken links left out
            for group in group_gguf_files(files):
                found.append(read_model(group[0], "hf-cache", repo, group))
            if is_mlx_folder(snap, repo):
                blobs = frozenset(os.path.realpath(w) for w in _mlx_weights(snap) if w.is_file())
                if blobs and blobs in mlx_weights:
                    continue  # the same weights as a newer snapshot of this repo
                mlx_weights.add(blobs)
                found.append(read_mlx_folder(snap, "hf-cache", repo))
    return found


def scan_lmstudio(root: Path) -> list[FoundModel]:
    """`<root>/<publisher>/<repo>/*.gguf` (also one folder deeper, as some versions write),
    and MLX models: `<root>/<publisher>/<repo>/` holding config.json and safetensors (or
    a folder one deeper)."""
    found: list[FoundModel] = []
    if not root.is_dir():
        return found
    for repo_dir in sorted(p for p in root.glob("*/*") if p.is_dir()):
        origin = f"{repo_dir.parent.name}/{repo_dir.name}"
        for group in group_gguf_files(repo_dir.rglob("*.gguf")):
            found.append(read_model(group[0], "lmstudio", origin, group))
        if is_mlx_folder(repo_dir, origin):
            found.append(read_mlx_folder(repo_dir, "lmstudio", origin))
            continue
        for sub in sorted(p for p in repo_dir.iterdir() if p.is_dir()):
            if is_mlx_folder(sub, origin):
                found.append(read_mlx_folder(sub, "lmstudio", origin,
                                             mlx_display_name(sub.name)))  # fmt: skip
    return found


def scan_ollama(root: Path) -> list[FoundModel]:
    """`manifests/<host>/<namespace>/<model>/<tag>` JSON -> the model layer's GGUF blob."""
    found: list[FoundModel] = []
    manifests = root / "manifests"
    if not manifests.is_dir():
        return found
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        rel = manifest.relative_to(manifests).parts
        if len(rel) < 4:
            continue
        host, *middle, model_name, tag = rel
        blob = ollama_model_blob(root, manifest)
        if blob is None:
            continue
        prefix = "" if (host, middle) == ("registry.ollama.ai", ["library"]) else None
        if prefix is None:
            where = [] if host == "registry.ollama.ai" else [host]
            prefix = "/".join([*where, *middle]) + "/"
        name = f"{prefix}{model_name}:{tag}"
        quant = _ollama_config_quant(root, manifest)
        found_model = read_model(blob, "ollama", name, (blob,), name=name, quant_hint=quant)
        found.append(replace(found_model, manifest=manifest))
    return found


def _ollama_manifest(manifest: Path) -> dict:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.info("unreadable Ollama manifest %s", manifest)
        return {}
    return data if isinstance(data, dict) else {}


def _blob_for_digest(root: Path, digest: object) -> Path | None:
    if not isinstance(digest, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        return None
    blob = root / "blobs" / digest.replace(":", "-")
    return blob if blob.is_file() else None


def ollama_model_blob(root: Path, manifest: Path) -> Path | None:
    """The blob of a manifest's `application/vnd.ollama.image.model` layer, if present."""
    for layer in _ollama_manifest(manifest).get("layers") or []:
        if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_MEDIA:
            return _blob_for_digest(root, layer.get("digest"))
    return None


def _ollama_config_quant(root: Path, manifest: Path) -> str | None:
    config = _ollama_manifest(manifest).get("config") or {}
    blob = _blob_for_digest(root, config.get("digest") if isinstance(config, dict) else None)
    if blob is None or _size(blob) > 1 << 20:
        return None
    try:
        value = json.loads(blob.read_text(encoding="utf-8")).get("file_type")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value).upper() if value else None


# -- files the user added -----------------------------------------------------------------
def added_list_path() -> Path:
    return config_dir() / ADDED_FILE


def added_files(list_path: Path | None = None) -> list[Path]:
    try:
        data = json.loads((list_path or added_list_path()).read_text(encoding="utf-8"))
        return [Path(p) for p in data.get("files", []) if isinstance(p, str)]
    except (OSError, ValueError, AttributeError):
        return []


def _write_added(files: list[Path], list_path: Path) -> None:
    list_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = list_path.with_name(list_path.name + ".tmp")
    tmp.write_text(json.dumps({"files": [str(p) for p in files]}, indent=1), encoding="utf-8")
    os.replace(tmp, list_path)


def add_local_model(path: str | os.PathLike[str], list_path: Path | None = None) -> FoundModel:
    """Remember a GGUF file the user picked; raises GGUFError when it is not a usable model."""
    target = _split_siblings(Path(path).expanduser().resolve())[0]  # part 1 of a split
    check_gguf(target)  # refuse a broken file now, with its reason
    parts = _split_siblings(target)
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise GGUFError(f"{target.name} is one part of a split model; {missing[0]} is missing")
    list_path = list_path or added_list_path()
    files = added_files(list_path)
    if target not in files:
        _write_added([*files, target], list_path)
    from app.core.model_removal import unhide

    unhide(target)  # taken off the list once, wanted again now
    return read_model(target, "added", str(target.parent), parts)


def forget_added(path: str | os.PathLike[str], list_path: Path | None = None) -> bool:
    """Take a file off the added list (the file itself stays); False if it was not there."""
    list_path = list_path or added_list_path()
    files = added_files(list_path)
    target = Path(path).expanduser().resolve()
    kept = [p for p in files if p != target]
    if len(kept) == len(files):
        return False
    _write_added(kept, list_path)
    return True


def scan_added(list_path: Path | None = None) -> list[FoundModel]:
    """The files the user added that still exist (a split GGUF only with all its parts)."""
    found: list[FoundModel] = []
    seen: set[Path] = set()
    for path in added_files(list_path):
        parts = _split_siblings(path)
        if parts[0] in seen or not all(p.is_file() for p in parts):
            continue
        seen.add(parts[0])
        found.append(read_model(parts[0], "added", str(parts[0].parent), parts))
    return found


def _split_siblings(first: Path) -> tuple[Path, ...]:
    m = SPLIT_RE.search(first.name)
    if not m:
        return (first,)
    count = int(m.group(2))
    return tuple(
        first.with_name(SPLIT_RE.sub(f"-{i:05d}-of-{count:05d}.gguf", first.name))
        for i in range(1, count + 1)
    )


# -- everything ---------------------------------------------------------------------------
def discover_models(
    hf_cache: Path | None = None,
    lmstudio: Sequence[Path] | None = None,
    ollama: Sequence[Path] | None = None,
    added_list: Path | None = None,
    last_used: Mapping[str, float] | None = None,
) -> list[FoundModel]:
    """Every model found (GGUF files, MLX folders), each once (the first source wins), most
    recent first."""
    found: list[FoundModel] = []
    found += scan_hf_cache(hf_cache or hf_cache_dir())
    for root in lmstudio if lmstudio is not None else lmstudio_dirs():
        found += scan_lmstudio(root)
    for root in ollama if ollama is not None else ollama_dirs():
        found += scan_ollama(root)
    found += scan_added(added_list)
    if last_used is None:
        from app.core.model_stats import ModelStats

        last_used = ModelStats().last_used()
    unique: dict[str, FoundModel] = {}
    for model in found:
        unique.setdefault(model.key, replace(model, last_used=last_used.get(model.key)))
    from app.core.model_removal import without_hidden  # those taken off the list

    kept = without_hidden(list(unique.values()))
    return sorted(kept, key=lambda m: (-(m.last_used or 0), m.name.lower()))


# -- deleting -----------------------------------------------------------------------------
def _ollama_other_blobs(root: Path, manifest: Path) -> set[Path]:
    """The config and non-model layer blobs a manifest names."""
    data = _ollama_manifest(manifest)
    entries = [data.get("config")] + [
        layer
        for layer in data.get("layers") or []
        if isinstance(layer, dict) and layer.get("mediaType") != OLLAMA_MODEL_MEDIA
    ]
    blobs = (_blob_for_digest(root, e.get("digest")) for e in entries if isinstance(e, dict))
    return {b for b in blobs if b is not None}


def _ollama_referenced(root: Path) -> set[Path]:
    """Every blob some manifest still names."""
    out: set[Path] = set()
    for m in (root / "manifests").rglob("*"):
        if m.is_file():
            out |= _ollama_other_blobs(root, m)
            if (b := ollama_model_blob(root, m)) is not None:
                out.add(b)
    return out


def _prune_empty(folder: Path, stop: Path) -> None:
    """Remove empty folders from `folder` up to (not including) `stop`."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _snapshot_of(path: Path) -> Path:
    """The snapshot folder of a file in it, or of the snapshot folder itself (MLX)."""
    snap = path
    while snap.parent.name != "snapshots" and snap.parent != snap:
        snap = snap.parent
    return snap


def _still_used(model: FoundModel) -> set[str]:
    """Real paths of blobs that other snapshots or Ollama manifests still point to."""
    mine = {os.path.abspath(p) for p in model.parts}
    if model.source == "hf-cache":
        repo_snaps = _snapshot_of(model.path).parent
        links = (p for p in repo_snaps.rglob("*") if p.is_symlink())
        return {os.path.realpath(p) for p in links if os.path.abspath(p) not in mine}
    if model.source == "ollama" and model.manifest is not None:
        root = model.path.parent.parent
        others = (m for m in (root / "manifests").rglob("*") if m.is_file() and m != model.manifest)
        return {os.path.realpath(b) for m in others if (b := ollama_model_blob(root, m))}
    return set()


def freeable_bytes(model: FoundModel) -> int:
    """The disk space deleting `model` gives back (blobs others still use not counted)."""
    used = _still_used(model)
    return sum(_size(Path(p)) for p in {os.path.realpath(q) for q in model.parts} - used)


def delete_model(model: FoundModel, added_list: Path | None = None,
                 other_tool: bool = False) -> int:  # fmt: skip
    """Delete the model's files (never a blob another model uses); returns the bytes freed.

    Only a Hugging Face cache model (a Ponder download) is deleted; a file the user added is
    refused (NotOursToDelete), and so is another app's model unless `other_tool` is set."""
    from app.core.model_removal import NotOursToDelete

    if model.source == "added" or (model.source != "hf-cache" and not other_tool):
        raise NotOursToDelete(f"{model.name} is not a Ponder download: its file stays on disk")
    used = _still_used(model)
    freed = 0
    for part in model.parts:
        real = os.path.realpath(part)
        if real not in used and os.path.exists(real):
            freed += _size(Path(real))
            os.unlink(real)
        if os.path.islink(part):
            os.unlink(part)  # the snapshot's symlink (never a file another model shares)
    if model.source == "hf-cache":
        snap = _snapshot_of(model.path)
        repo = snap.parent.parent
        (repo / ".ponder" / f"{snap.name}.json").unlink(missing_ok=True)
        if not any(p.suffix in (".gguf", ".safetensors") for p in snap.rglob("*")):
            shutil.rmtree(snap, ignore_errors=True)
            if not any((repo / "snapshots").iterdir()):
                shutil.rmtree(repo, ignore_errors=True)
    elif model.source == "ollama" and model.manifest is not None:
        root = model.path.parent.parent
        small = _ollama_other_blobs(root, model.manifest)
        model.manifest.unlink(missing_ok=True)
        still = _ollama_referenced(root)
        for blob in small - still:  # the template, params and license layers of this tag
            freed += _size(blob)
            blob.unlink(missing_ok=True)
        _prune_empty(model.manifest.parent, root / "manifests")
    elif model.source == "added":
        forget_added(model.path, added_list)
    elif model.source == "lmstudio":
        if model.format == "mlx":  # the model's own folder: its empty subfolders too
            for sub in sorted((p for p in model.path.rglob("*") if p.is_dir()), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
        with contextlib.suppress(OSError):
            (model.path if model.format == "mlx" else model.path.parent).rmdir()
    return freed


# -- checking -----------------------------------------------------------------------------
def _sha256_of(path: Path, chunk: int = 8 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(chunk):
            h.update(data)
    return h.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    """The id git (and the Hub) gives a small file: sha1 of "blob <size>\\0" and its bytes."""
    import hashlib

    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def verify_model(model: FoundModel) -> tuple[bool, str]:
    """Check a model again: the header of its file (an MLX folder: its files, as discovery
    does), and (where the store names blobs by their hash: the Hugging Face cache and Ollama)
    every byte against that hash. Blocking."""
    if model.format == "mlx":
        again = read_mlx_folder(model.path, model.source, model.origin, model.name)
        if again.problem:  # the engine's words, which name the model
            return False, f"{again.problem}."
        parts = again.parts
    else:
        try:
            check_gguf(model.path)
        except (GGUFError, OSError) as exc:
            return False, f"{model.name}: {exc}."
        parts = model.parts
    hashed = 0
    for part in parts:
        real = Path(os.path.realpath(part))
        expected = real.name.removeprefix("sha256-")
        if re.fullmatch(r"[0-9a-f]{64}", expected):
            actual = _sha256_of(real)
        elif model.source == "hf-cache" and re.fullmatch(r"[0-9a-f]{40}", expected):
            actual = _git_blob_sha1(real)  # a small file the Hub keeps in git, not LFS
        else:
            continue
        if actual != expected:
            return False, (f"{part.name} is damaged: its contents no longer match their "
                           "checksum. Delete it and download it again.")  # fmt: skip
        hashed += 1
    if hashed:
        return True, f"{model.name} is intact: every byte matches its checksum."
    if model.format == "mlx":
        return True, (f"{model.name} has all its files and sound safetensors headers (this "
                      "store keeps no checksum to compare).")  # fmt: skip
    return True, f"{model.name} has a sound header (this store keeps no checksum to compare)."
