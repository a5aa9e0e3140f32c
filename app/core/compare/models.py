"""The models of a comparison: a local file (GGUF or MLX folder) or a saved server model.

A `ModelSpec` is what is saved with a run (never an API key: a server's key is read from
the keyring when the model is loaded) and how the engine loads it. `planned_load` asks the
planner for a local file's settings on this machine, as the window does when the model
manager loads a file. No Qt.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)
MAX_MODELS = 4
MIN_MODELS = 2


@dataclass(frozen=True)
class ModelSpec:
    """One model to compare: `label` as the person named it, `path` a file or a base URL."""

    label: str
    path: str
    remote: dict[str, Any] = field(default_factory=dict)  # RemoteModel fields for a server
    options: dict[str, Any] = field(default_factory=dict)  # load settings (n_ctx, engine…)

    @property
    def is_remote(self) -> bool:
        return bool(self.remote)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(str(data["label"]), str(data["path"]), dict(data.get("remote") or {}),
                   dict(data.get("options") or {}))  # fmt: skip


def local_spec(path: str | os.PathLike[str], label: str | None = None,
               **options: Any) -> ModelSpec:  # fmt: skip
    """A model file (or MLX folder) on this computer."""
    p = os.fspath(path)
    name = label or os.path.basename(p.rstrip("/\\")) or p
    if os.path.isdir(p):
        options.setdefault("engine", "mlx")
    return ModelSpec(name, p, {}, options)


def remote_spec(entry: Any, label: str | None = None) -> ModelSpec:
    """A saved server model (app.core.remote.RemoteModel), saved without its key."""
    data = asdict(entry)
    return ModelSpec(label or entry.display_name, entry.base_url, data, {})


def load_arguments(spec: ModelSpec) -> tuple[str, dict[str, Any]]:
    """(path, keyword arguments) for EngineClient.load; a server's key from the keyring."""
    if spec.is_remote:
        from app.core.remote import RemoteModel, api_key_for

        entry = RemoteModel(**spec.remote)
        return entry.base_url, entry.load_options(api_key_for(entry))
    return spec.path, dict(spec.options)


def planned_load(spec: ModelSpec,
                 n_ctx: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """(load settings, measurement meta) planned for this machine, as the window loads a file
    from the model manager; plain settings when the planner cannot plan it (the engine then
    says what is wrong with the file)."""
    meta: dict[str, Any] = {"name": spec.label}
    if spec.is_remote:
        return {}, meta
    settings: dict[str, Any] = {"n_ctx": n_ctx} if n_ctx else {}
    if spec.options.get("engine") == "mlx" or os.path.isdir(spec.path):
        return {**settings, **spec.options}, meta
    try:
        from app.core import model_choice

        info = model_choice.describe_gguf(spec.path, model_choice.detect())
        planned = info.load_settings()
        if info.plan is not None:
            meta["predicted_tps"] = info.plan.decode_tps
        match = model_choice.catalog_match(spec.path)
        if match:
            meta["model_id"], meta["quant"] = match
        elif info.quant:
            meta["quant"] = info.quant
    except Exception as exc:  # noqa: BLE001 - the load reports a broken file in words
        log.info("no plan for %s: %s", spec.path, exc)
        planned = {}
    if n_ctx:
        planned["n_ctx"] = n_ctx
    return {**planned, **spec.options}, meta


def available_models(discover: Any = None, remotes: Any = None) -> list[ModelSpec]:
    """What the model manager lists: installed model files, then saved server models.

    `discover` and `remotes` (callables) replace the disk scan and the saved list in tests."""
    from app.core.model_discovery import discover_models
    from app.core.remote import saved_remotes

    specs = []
    for found in (discover or discover_models)():
        if getattr(found, "problem", None):
            continue
        label = found.name + (f" ({found.quant})" if found.quant and found.quant not in found.name
                              else "")  # fmt: skip
        specs.append(local_spec(found.path, label))
    for entry in (remotes or saved_remotes)():
        specs.append(remote_spec(entry))
    return specs
