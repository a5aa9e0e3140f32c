"""Which engine builds are usable here: llama-cpp-python (GPU offload or not) and MLX.

Importing llama_cpp loads its native libraries (~0.3 s) and a broken CUDA build can
abort the process, so the check runs in a short child process (backends/engine_builds.py)
with a timeout, and its answer is cached against the installed files (names, sizes, mtimes
of the package's lib folder), so it is paid once per install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from app.core.hardware._run import run_command

BACKEND_NAMES = ("cuda", "metal", "vulkan", "hip", "sycl", "opencl", "musa", "cann")


def _lib_dir() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def llama_cpp_backends() -> tuple[str, ...]:
    """GPU backends whose ggml library ships with the installed llama-cpp-python."""
    lib = _lib_dir()
    if lib is None or not lib.is_dir():
        return ()
    names = " ".join(p.name.lower() for p in lib.iterdir())
    return tuple(b for b in BACKEND_NAMES if f"ggml-{b}" in names)


def install_fingerprint() -> str:
    """Changes whenever llama-cpp-python or mlx is installed, removed or rebuilt."""
    parts: list[str] = [sys.executable]
    for name in ("llama_cpp", "mlx"):
        spec = importlib.util.find_spec(name)
        parts.append(f"{name}:{spec.origin if spec else None}")
    lib = _lib_dir()
    if lib is not None and lib.is_dir():
        for p in sorted(lib.iterdir()):
            try:
                st = p.stat()
                parts.append(f"{p.name}:{st.st_size}:{int(st.st_mtime)}")
            except OSError:
                continue
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def check_command() -> list[str]:
    """The child that imports the engines (backends/engine_builds.py); the frozen app runs
    itself with `--engine-check`."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-check"]
    return [sys.executable, "-m", "backends.engine_builds"]


def check_engines(timeout: float = 5.0) -> tuple[dict[str, Any], str | None]:
    """Import the engines in a child process: ({llama_cpp: …, mlx: …}, error or None)."""
    res = run_command(check_command(), timeout)
    if not res.ok:
        return _quick_guess(), f"engine check: {res.error}"
    try:
        return json.loads(res.stdout), None
    except ValueError:
        return _quick_guess(), "engine check: unreadable answer from the child interpreter"


def _quick_guess() -> dict[str, Any]:
    return {
        "llama_cpp": {"installed": importlib.util.find_spec("llama_cpp") is not None},
        "mlx": {"installed": importlib.util.find_spec("mlx") is not None},
    }
