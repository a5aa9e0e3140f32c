"""Small facts the app remembers between runs (not chat data): has the first-run wizard run.

One JSON file, `state.json`, in Ponder's user config folder (PONDER_CONFIG_DIR overrides
the folder, as for the added-models list). Written atomically; unreadable means empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "state.json"


def state_path() -> Path:
    from app.core.model_discovery import config_dir

    return config_dir() / FILE_NAME


def load_state(path: Path | None = None) -> dict[str, Any]:
    try:
        data = json.loads((path or state_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_state(path: Path | None = None, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into the state file and return the new state."""
    path = path or state_path()
    data = {**load_state(path), **changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return data


def wizard_done(path: Path | None = None) -> bool:
    """Whether the first-run model wizard has been shown on this computer."""
    return bool(load_state(path).get("wizard_shown"))


def mark_wizard_done(path: Path | None = None) -> None:
    update_state(path, wizard_shown=True)
