"""Read a hardware profile written by `ponder-cli doctor --json` (to plan for another machine).

The file comes from anywhere, so every value is checked before the planner sees it (issue 20):
numbers must be finite numbers in a sane range (not "64GB", not 10**400, not NaN), text must
be text, lists must be lists, and the file small and shallow enough to parse. A bad file is
refused with one sentence naming the field, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import typing
from pathlib import Path
from typing import Any

from app.core.hardware.profile import HardwareProfile
from app.core.planner.plan import PlanError

MAX_FILE_BYTES = 1_000_000  # a real profile is a few KB
MAX_NUMBER = 10**18  # bytes, cores, GB/s: anything above is not a machine
MAX_TEXT = 1000
LISTS = ("cpu.flags", "gpus", "warnings", "unreadable", "engines.llama_cpp.backends")
HINT = "write one with `ponder-cli doctor --json`"


class HardwareFileError(PlanError):
    """A --hardware file that is missing, not JSON, or not a Ponder hardware profile."""


def read_hardware_file(path: str | os.PathLike[str]) -> HardwareProfile:
    p = Path(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            raise HardwareFileError(f"The hardware file {p} is not a regular file; {HINT}.")
        if info.st_size > MAX_FILE_BYTES:
            raise HardwareFileError(
                f"The hardware file {p} is too large to be a hardware profile; {HINT}."
            )
        data = json.loads(p.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except HardwareFileError:
        raise
    except OSError as exc:
        raise HardwareFileError(f"The hardware file {p} cannot be read: {exc.strerror}.") from exc
    except RecursionError as exc:
        raise HardwareFileError(
            f"The hardware file {p} is nested too deeply to be a hardware profile; {HINT}."
        ) from exc
    except ValueError as exc:  # not UTF-8, not JSON, NaN/Infinity, a 5,000-digit number
        raise HardwareFileError(f"The hardware file {p} is not JSON ({exc}); {HINT}.") from exc
    if not isinstance(data, dict):
        raise HardwareFileError(f"The hardware file {p} holds no JSON object; {HINT}.")
    problem = _list_problem(data)
    if problem is None:
        try:
            profile = HardwareProfile.from_dict(data)
        except (ValueError, RecursionError) as exc:
            raise HardwareFileError(
                f"The hardware file {p} is not a Ponder hardware profile ({exc}); {HINT}."
            ) from exc
        problem = _value_problem(profile, "")
    if problem is not None:
        raise HardwareFileError(
            f"The hardware file {p} is not a Ponder hardware profile: {problem}; {HINT}."
        )
    if profile.ram.total_bytes <= 0:
        raise HardwareFileError(f"The hardware file {p} gives no RAM size; {HINT}.")
    if profile.cpu.cores_logical < 1 or profile.cpu.cores_physical < 1:
        raise HardwareFileError(f"The hardware file {p} gives no CPU cores; {HINT}.")
    return profile


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _list_problem(data: dict[str, Any]) -> str | None:
    """Lists the profile turns into tuples must be lists (a string would become letters)."""
    for dotted in LISTS:
        value: Any = data
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, list):
            return f"{dotted} must be a list, not {_shown(value)}"
    return None


def _value_problem(value: Any, where: str) -> str | None:
    """The first field of the profile whose value does not have its declared type or a sane
    size, in words ("ram.total_bytes must be a number, not '64GB'"), or None."""
    if not dataclasses.is_dataclass(value):
        return None
    hints = typing.get_type_hints(type(value))
    for f in dataclasses.fields(value):
        name = f"{where}{f.name}"
        v = getattr(value, f.name)
        problem = _field_problem(name, v, hints.get(f.name))
        if problem is not None:
            return problem
        items = v if isinstance(v, tuple) else (v,)
        for i, item in enumerate(items):
            inner = f"{name}[{i}]." if isinstance(v, tuple) else f"{name}."
            if (problem := _value_problem(item, inner)) is not None:
                return problem
    return None


def _field_problem(name: str, v: Any, hint: Any) -> str | None:
    allowed = set(typing.get_args(hint)) if typing.get_origin(hint) is not None else {hint}
    if v is None:
        return None if type(None) in allowed else f"{name} is missing"
    if isinstance(v, tuple):
        for x in v:
            if dataclasses.is_dataclass(x):
                continue
            if not isinstance(x, str):
                return f"{name} must be a list of text, not one holding {_shown(x)}"
            if len(x) > MAX_TEXT:
                return f"{name} holds text too long to be real"
        return None
    if int in allowed or float in allowed:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"{name} must be a number, not {_shown(v)}"
        if float not in allowed and not isinstance(v, int):
            return f"{name} must be a whole number, not {_shown(v)}"
        if not 0 <= v <= MAX_NUMBER or not math.isfinite(v):  # ints compared exactly first
            return f"{name} must be a number between 0 and {MAX_NUMBER:.0e}, not {_shown(v)}"
        return None
    if str in allowed:
        if not isinstance(v, str):
            return f"{name} must be text, not {_shown(v)}"
        return None if len(v) <= MAX_TEXT else f"{name} is too long to be real"
    if bool in allowed and not isinstance(v, bool):
        return f"{name} must be true or false, not {_shown(v)}"
    return None


def _shown(v: Any) -> str:
    """A value as the person wrote it, cut short (a 400-digit number stays readable)."""
    text = json.dumps(v) if isinstance(v, str | bool) or v is None else repr(v)
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_NUMBER:
        return f"a number of {len(str(abs(v)))} digits"
    return text if len(text) <= 40 else text[:37] + "…"
