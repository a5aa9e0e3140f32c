"""A small JSON cache of slow-to-measure, per-machine facts in the user cache dir.

Holds the measured CPU copy bandwidth, the Apple GPU core count, and what the installed
engine builds support (keyed by their files, so an upgrade is noticed). One file, keyed by
a machine fingerprint; `PONDER_CACHE_DIR` overrides the folder (tests use it).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

FILE_NAME = "hardware.json"


def cache_dir() -> Path:
    override = os.environ.get("PONDER_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("Ponder", appauthor=False))


def machine_key(cpu_model: str, logical_cores: int, ram_total_bytes: int) -> str:
    """A fingerprint of this machine: host, CPU, core count and RAM (rounded to GiB)."""
    raw = f"{platform.node()}|{platform.system()}|{cpu_model}|{logical_cores}|" \
          f"{round(ram_total_bytes / 2**30)}"  # fmt: skip
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def load(key: str) -> dict[str, Any]:
    """This machine's cached facts, or {} (missing, unreadable or corrupt file)."""
    try:
        data = json.loads((cache_dir() / FILE_NAME).read_text(encoding="utf-8"))
        entry = data.get(key) if isinstance(data, dict) else None
        return dict(entry) if isinstance(entry, dict) else {}
    except (OSError, ValueError):
        return {}


def save(key: str, entry: dict[str, Any]) -> None:
    """Write this machine's facts atomically; a read-only cache dir is not an error."""
    folder = cache_dir()
    path = folder / FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[key] = entry
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".hardware-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


def clear() -> None:
    """Forget every cached fact (the explicit refresh)."""
    try:
        (cache_dir() / FILE_NAME).unlink()
    except OSError:
        pass
