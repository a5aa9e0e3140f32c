"""Checks an MLX model folder in Python before mlx-lm reads it, and the memory it may use.

Refused in words: a missing folder or config, custom code (`model_file`, `auto_map` in
config.json or tokenizer_config.json), an architecture this mlx-lm cannot run, any pickle
file in the folder (`.bin`, `.pt`, `.pth`, `.pkl`, `.ckpt`: opening one can run code), a
safetensors header that does not match its file, no tokenizer file. `memory_budget` is the
GPU wired limit on Metal, else the free RAM.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from backends.base import EngineFailure

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tiktoken.model")
UNSAFE_WEIGHTS = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
CUSTOM_CODE_KEYS = ("model_file", "auto_map")
MLX_INDEX = "model.safetensors.index.json"
# Room left beside the weights for the KV cache, activations and the runtime.
MEMORY_MARGIN = 1.1
_SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U32": 4,
                       "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1,
                       "F8_E5M2": 1}  # fmt: skip


def gb_words(n: float) -> str:
    """Bytes in decimal gigabytes, one decimal."""
    return f"{n / 1e9:.1f} GB"


def check_safetensors(path: Path) -> int:
    """Check a safetensors file's header against its size; return the tensor bytes."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is empty or cut short")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > min(size - 8, 100_000_000):
            raise ValueError(f"{path.name} is not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"{path.name} has a damaged header") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has a damaged header")
    data = size - 8 - n
    total = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = (int(x) for x in t["data_offsets"])
            count = 1
            for d in t["shape"]:
                count *= int(d)
            width = _SAFETENSORS_DTYPES.get(t["dtype"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path.name} has a damaged entry for {name}") from None
        if not 0 <= start <= end <= data:
            raise ValueError(f"{path.name} is cut short or damaged ({name} lies past its end)")
        if width is not None and end - start != count * width:
            raise ValueError(f"{path.name} is damaged ({name} has the wrong size)")
        total += end - start
    return total


def check_model_folder(
    path: str, label: str | None = None, architecture: bool = True
) -> tuple[Path, dict[str, Any], int]:
    """Refuse, in words, a folder mlx-lm cannot or must not load; return (folder, config,
    weight bytes). Raises EngineFailure("bad_model"). `label` names the folder in the words
    (default: its name; a Hub snapshot's is a commit); `architecture=False` leaves out the
    one check that imports mlx-lm (model discovery lists folders without MLX)."""
    folder = Path(path)
    label = label or _folder_label(folder)
    if not folder.exists():
        raise EngineFailure("bad_model", f"There is no file or folder at {path}.")
    if not folder.is_dir():
        raise EngineFailure(
            "bad_model",
            f"MLX models are folders (config.json, *.safetensors, tokenizer), but {folder.name} "
            "is a single file: choose the model's folder, or use llama.cpp for a GGUF file.",
        )
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise EngineFailure("bad_model", f"The model folder {label} has no config.json.")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("not an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EngineFailure("bad_model", f"The model's config.json is damaged: {exc}.") from exc
    custom = [k for k in CUSTOM_CODE_KEYS if k in config]
    custom += [f"{k} in tokenizer_config.json" for k in _tokenizer_custom_code(folder)]
    if custom:
        raise EngineFailure(
            "bad_model",
            "This model needs its own Python code to run (trust_remote_code, "
            f"{', '.join(custom)} in config.json). Ponder never runs code that comes with a "
            "model: choose a model that mlx-lm supports directly.",
        )
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise EngineFailure("bad_model", "The model's config.json does not name its model_type.")
    if architecture and not _architecture_supported(config):
        import mlx_lm

        raise EngineFailure(
            "bad_model",
            f"This model's architecture ({model_type}) is not supported by mlx-lm "
            f"{mlx_lm.__version__}: update mlx-lm, or use the GGUF version with llama.cpp.",
        )
    weights = sorted(folder.glob("model*.safetensors"))
    unsafe = _pickles(folder)
    if unsafe and not weights:
        raise EngineFailure(
            "bad_model",
            f"The model folder {label} has only {unsafe[0]}, a PyTorch pickle that Ponder "
            "does not open (it can run code): download the safetensors or GGUF version.",
        )
    if unsafe:
        raise EngineFailure(
            "bad_model",
            f"The model folder {label} holds {', '.join(unsafe[:3])}: a Python pickle, "
            "which can run code when opened, and Ponder never loads a folder with one. Use a "
            "folder with only safetensors weights (remove the pickle, or download the model "
            "with Ponder, which never fetches pickles).",
        )
    present = [w for w in weights if w.is_file()]  # a broken link is a missing blob
    if not present:
        raise EngineFailure(
            "bad_model",
            f"The model folder {label} has no model*.safetensors weights: the download is "
            "incomplete, download the model again.",
        )
    missing = _missing_shards(folder, weights, present)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise EngineFailure("bad_model", f"{missing[0]}{more} is missing from {label}: the "
                            "download is incomplete, download the model again.")  # fmt: skip
    total = 0
    for w in present:
        try:
            total += check_safetensors(w)
        except (OSError, ValueError) as exc:
            raise EngineFailure(
                "bad_model", f"Cannot load this model: {exc}. Download it again."
            ) from exc
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise EngineFailure(
            "bad_model",
            f"The model folder {label} has no tokenizer file (tokenizer.json or "
            "tokenizer.model): the download is incomplete, download the model again.",
        )
    return folder, config, total


def _folder_label(folder: Path) -> str:
    """The folder's name, or a Hub cache snapshot's repo (`…/models--org--name/snapshots/<commit>`
    -> `org/name`): a commit says nothing to a person."""
    repo = folder.parent.parent.name
    if folder.parent.name == "snapshots" and repo.startswith("models--"):
        return repo.removeprefix("models--").replace("--", "/")
    return folder.name


def _missing_shards(folder: Path, weights: list[Path], present: list[Path]) -> list[str]:
    """Weight shards that should be there and are not: those the shard index lists (a
    damaged index refuses the folder), else the broken links among `weights`."""
    index = folder / MLX_INDEX
    if index.is_file():
        try:
            listed = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
            raise EngineFailure("bad_model", f"The model's {MLX_INDEX} is damaged: {exc}.") from exc
        if isinstance(listed, dict):
            names = {p.name for p in present}
            return [f"{n} (listed in {MLX_INDEX})" for n in sorted({str(v) for v in
                    listed.values()} - names)]  # fmt: skip
    return [w.name for w in weights if not w.is_file()]


def _pickles(folder: Path, limit: int = 2000) -> list[str]:
    """Pickle files in the folder or its subfolders (relative names; at most `limit` entries
    looked at, links not followed)."""
    found: list[str] = []
    for i, path in enumerate(folder.rglob("*")):
        if i >= limit:
            break
        if path.suffix.lower() in UNSAFE_WEIGHTS and not path.is_dir():
            found.append(path.relative_to(folder).as_posix())
    return sorted(found)


def _tokenizer_custom_code(folder: Path) -> list[str]:
    """Keys of tokenizer_config.json that would make transformers import the model's code."""
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    return [k for k in CUSTOM_CODE_KEYS if isinstance(data, dict) and k in data]


def _architecture_supported(config: dict[str, Any]) -> bool:
    from mlx_lm.utils import _get_classes

    try:
        _get_classes(config)
    except (ValueError, KeyError, ImportError):
        return False
    return True


def memory_budget() -> tuple[int, str]:
    """How many bytes the model may use, and in words what limits it."""
    import mlx.core as mx

    info = mx.device_info()
    wired = info.get("max_recommended_working_set_size")
    if wired:
        return int(wired), "the GPU's wired memory limit (raise it with sudo sysctl " \
            "iogpu.wired_limit_mb=…)"  # fmt: skip
    try:
        import psutil

        return int(psutil.virtual_memory().available), "the free RAM"
    except Exception:  # noqa: BLE001 - no figure: no check
        return 1 << 62, "memory"
