"""The models the server offers, under ids a user can type, and nothing else.

The list is the model manager's (app.core.model_discovery: Ponder's downloads and the HF
cache, LM Studio, Ollama, files added by hand) plus the files and MLX folders given with
`--model`. A request names a model by its id; a name that looks like a file path is refused
before it is looked up, so no request can make Ponder open a file outside this list.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.serve.errors import ServeError

RESCAN_S = 10.0  # the installed list is read again at most this often
SHOWN_IN_ERRORS = 20


@dataclass(frozen=True)
class ServedModel:
    """One model a request may name."""

    id: str
    path: str
    name: str
    source: str  # a model_discovery source key, or "command line"
    engine: str = "llama_cpp"  # or "mlx" (a folder)
    size_bytes: int = 0
    created: int = 0
    origin: str = ""  # the HF repo, LM Studio publisher/repo (tells apart equal stems)

    def to_openai(self) -> dict[str, Any]:
        """The entry of GET /v1/models."""
        return {"id": self.id, "object": "model", "created": self.created,
                "owned_by": "ponder", "ponder": {"name": self.name, "source": self.source,
                                                 "engine": self.engine,
                                                 "size_bytes": self.size_bytes}}  # fmt: skip


def looks_like_path(name: str) -> bool:
    """A model name that names a file rather than a listed model: refused, never opened."""
    if not name:
        return False
    if os.path.isabs(name) or name.startswith(("~", "./", "../", ".\\", "file:")):
        return True
    if "\\" in name or "\0" in name or re.match(r"^[A-Za-z]:", name):
        return True
    parts = name.split("/")
    return ".." in parts or "." in parts or name.lower().endswith((".gguf", ".safetensors"))


def _stem(file_name: str) -> str:
    from app.core.model_discovery import SPLIT_RE

    stem = SPLIT_RE.sub("", file_name)
    return stem[:-5] if stem.lower().endswith(".gguf") else stem


def _mtime(path: Path) -> int:
    try:
        return int(path.stat().st_mtime)
    except OSError:
        return 0


def from_found(found: Any) -> ServedModel:
    """A model_discovery.FoundModel as served: Ollama's name:tag, an MLX folder's repo name
    (its snapshot folder is named by a commit), else the file's stem."""
    path = Path(found.path)
    mlx = getattr(found, "format", "gguf") == "mlx"
    if found.source == "ollama":
        model_id = found.origin
    elif mlx:
        model_id = (found.origin or "").rsplit("/", 1)[-1] or path.name
    else:
        model_id = _stem(path.name)
    origin = "" if found.source in ("ollama", "added") else found.origin
    return ServedModel(model_id, str(path), found.name, found.source,
                       "mlx" if mlx else "llama_cpp", found.size_bytes, _mtime(path),
                       origin)  # fmt: skip


def from_path(path: str | os.PathLike[str]) -> ServedModel:
    """A `--model` argument: a .gguf file (part 1 of a split one) or an MLX folder."""
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ValueError(f"{p} is a folder without config.json: not an MLX model folder.")
        size = sum(f.stat().st_size for f in p.glob("*.safetensors"))
        return ServedModel(p.name, str(p), p.name, "command line", "mlx", size, _mtime(p))
    if not p.is_file():
        raise ValueError(f"There is no model file at {p}.")
    return ServedModel(_stem(p.name), str(p), _stem(p.name), "command line", "llama_cpp",
                       p.stat().st_size, _mtime(p))  # fmt: skip


def installed_models() -> list[ServedModel]:
    """The model manager's list (models whose header check failed are left out)."""
    from app.core.model_discovery import discover_models

    return [from_found(m) for m in discover_models() if not m.problem]


def unique_ids(models: Sequence[ServedModel]) -> list[ServedModel]:
    """Give each model an id of its own: a repeated stem gets its repo in front (or a number)."""
    from dataclasses import replace

    seen: set[str] = set()
    out: list[ServedModel] = []
    for m in models:
        model_id = m.id
        if model_id.lower() in seen and m.origin:
            model_id = f"{m.origin}/{m.id}"
        base, n = model_id, 2
        while model_id.lower() in seen:
            model_id, n = f"{base}-{n}", n + 1
        seen.add(model_id.lower())
        out.append(replace(m, id=model_id))
    return out


class ModelCatalog:
    """The served list: `--model` paths first, then the installed models (re-read lazily)."""

    def __init__(
        self,
        extra: Sequence[str | os.PathLike[str]] = (),
        discover: Callable[[], list[ServedModel]] | None = installed_models,
    ) -> None:
        self._extra = [from_path(p) for p in extra]
        self._discover = discover
        self._lock = threading.Lock()
        self._models: list[ServedModel] = []
        self._read_at = -RESCAN_S
        self.refresh()

    def refresh(self, force: bool = True) -> list[ServedModel]:
        """Read the installed models again (at most every RESCAN_S unless `force`)."""
        with self._lock:
            if force or time.monotonic() - self._read_at >= RESCAN_S:
                found = self._discover() if self._discover else []
                extra_paths = {os.path.realpath(m.path) for m in self._extra}
                others = [m for m in found if os.path.realpath(m.path) not in extra_paths]
                self._models = unique_ids([*self._extra, *others])
                self._read_at = time.monotonic()
            return list(self._models)

    def models(self) -> list[ServedModel]:
        return self.refresh(force=False)

    def find(self, name: str) -> ServedModel:
        """The model a request names (its id, any case); ServeError 400/404 in words."""
        if not isinstance(name, str) or not name.strip():
            raise ServeError(400, "Say which model should answer: the request has no `model`.",
                             param="model", code="model_required")  # fmt: skip
        if looks_like_path(name):
            raise ServeError(400, "Ponder serves only the models in its list, by id; a file "
                             "path is refused. GET /v1/models lists the ids.",
                             param="model", code="model_path_refused")  # fmt: skip
        for fresh in (False, True):
            models = self.refresh(force=fresh)
            match = _match(name.strip(), models)
            if match is not None:
                return match
        raise ServeError(404, unknown_model_message(name, models), param="model",
                         code="model_not_found", type="invalid_request_error")  # fmt: skip


def _match(name: str, models: Sequence[ServedModel]) -> ServedModel | None:
    lower = name.lower()
    for m in models:
        if m.id == name:
            return m
    hits = [m for m in models if m.id.lower() == lower]
    if len(hits) == 1:
        return hits[0]
    hits = [m for m in models if m.name.lower() == lower]  # the name the manager shows
    return hits[0] if len(hits) == 1 else None


def unknown_model_message(name: str, models: Sequence[ServedModel]) -> str:
    """The app's words for a model that is not installed, with the installed ones."""
    shown = ", ".join(m.id for m in models[:SHOWN_IN_ERRORS])
    more = f" and {len(models) - SHOWN_IN_ERRORS} more" if len(models) > SHOWN_IN_ERRORS else ""
    if not models:
        return (
            f"There is no model called {name!r} on this computer, and no model is "
            "installed: download one in Ponder first."
        )
    return f"There is no model called {name!r} on this computer. Installed: {shown}{more}."
