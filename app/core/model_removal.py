"""What "delete" may do to a model, and taking a model off Ponder's list without touching it.

Only what Ponder downloaded into the Hugging Face cache is Ponder's to delete from disk. A
file the user imported from their own folder, and a model in LM Studio's or Ollama's store,
belong to the user or to that app: Ponder only takes it off its own list (the file stays
where it is). Imported files leave the added list; other apps' models go on a small hidden
list (`hidden_models.json` in the user config folder) that discovery skips. No Qt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HIDDEN_FILE = "hidden_models.json"


class NotOursToDelete(ValueError):
    """Deleting this model from disk is refused: it is not a Ponder download."""


def deletable_from_disk(model: Any) -> bool:
    """True only for a model in the Hugging Face cache (what Ponder downloads)."""
    return getattr(model, "source", "") == "hf-cache"


def hidden_list_path() -> Path:
    from app.core.model_discovery import config_dir

    return config_dir() / HIDDEN_FILE


def hidden_keys(list_path: Path | None = None) -> set[str]:
    """Real paths of the models the user took off the list."""
    try:
        data = json.loads((list_path or hidden_list_path()).read_text(encoding="utf-8"))
        return {p for p in data.get("hidden", []) if isinstance(p, str)}
    except (OSError, ValueError, AttributeError):
        return set()


def _write_hidden(keys: set[str], list_path: Path) -> None:
    list_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = list_path.with_name(f"{list_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"hidden": sorted(keys)}, indent=1), encoding="utf-8")
    os.replace(tmp, list_path)


def unhide(path: str | os.PathLike[str], list_path: Path | None = None) -> None:
    """Show a model again (the user imported it by hand)."""
    list_path = list_path or hidden_list_path()
    keys = hidden_keys(list_path)
    key = os.path.realpath(path)
    if key in keys:
        _write_hidden(keys - {key}, list_path)


def remove_from_list(model: Any, added_list: Path | None = None,
                     hidden_list: Path | None = None) -> None:  # fmt: skip
    """Take `model` off Ponder's list; its files are not touched."""
    from app.core.model_discovery import forget_added

    if model.source == "added":
        forget_added(model.path, added_list)
        return
    list_path = hidden_list or hidden_list_path()
    _write_hidden(hidden_keys(list_path) | {model.key}, list_path)


def without_hidden(models: list[Any], hidden_list: Path | None = None) -> list[Any]:
    """`models` less those the user took off the list."""
    hidden = hidden_keys(hidden_list)
    return [m for m in models if m.key not in hidden] if hidden else models
