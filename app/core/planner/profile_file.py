"""Read a hardware profile written by `ponder-cli doctor --json` (to plan for another machine)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.core.hardware.profile import HardwareProfile
from app.core.planner.plan import PlanError


class HardwareFileError(PlanError):
    """A --hardware file that is missing, not JSON, or not a Ponder hardware profile."""


def read_hardware_file(path: str | os.PathLike[str]) -> HardwareProfile:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HardwareFileError(f"The hardware file {p} cannot be read: {exc.strerror}.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HardwareFileError(
            f"The hardware file {p} is not JSON ({exc}); write one with `ponder-cli doctor --json`."
        ) from exc
    if not isinstance(data, dict):
        raise HardwareFileError(f"The hardware file {p} holds no JSON object.")
    try:
        profile = HardwareProfile.from_dict(data)
    except ValueError as exc:
        raise HardwareFileError(
            f"The hardware file {p} is not a Ponder hardware profile ({exc}); write one with "
            "`ponder-cli doctor --json`."
        ) from exc
    if profile.ram.total_bytes <= 0:
        raise HardwareFileError(f"The hardware file {p} gives no RAM size.")
    return profile
