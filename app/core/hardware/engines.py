"""Which engine builds are usable here: llama-cpp-python (GPU offload or not) and MLX.

Importing llama_cpp loads its native libraries (~0.3 s) and a broken CUDA build can
abort the process, so the check runs in a short child interpreter with a timeout and its
answer is cached against the installed files (names, sizes, mtimes of the package's
lib folder), so it is paid once per install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from app.core.hardware._run import run_command

CHECK = r"""
import json, sys
out = {"llama_cpp": {"installed": False}, "mlx": {"installed": False}}
try:
    import llama_cpp
    out["llama_cpp"] = {"installed": True, "version": getattr(llama_cpp, "__version__", None),
                        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload())}
except Exception as exc:
    out["llama_cpp"]["error"] = f"{type(exc).__name__}: {exc}"
try:
    import mlx.core
    import importlib.metadata as md
    out["mlx"] = {"installed": True, "version": md.version("mlx")}
except Exception as exc:
    out["mlx"]["error"] = f"{type(exc).__name__}: {exc}"
sys.stdout.write(json.dumps(out))
"""
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


def check_engines(timeout: float = 5.0) -> tuple[dict[str, Any], str | None]:
    """Import the engines in a child interpreter: ({llama_cpp: …, mlx: …}, error or None)."""
    if getattr(sys, "frozen", False):
        return _check_in_process(), None
    res = run_command([sys.executable, "-c", CHECK], timeout)
    if not res.ok:
        return _quick_guess(), f"engine check: {res.error}"
    try:
        return json.loads(res.stdout), None
    except ValueError:
        return _quick_guess(), "engine check: unreadable answer from the child interpreter"


def _check_in_process() -> dict[str, Any]:  # pragma: no cover - frozen app only
    ns: dict[str, Any] = {}
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(CHECK, ns)  # noqa: S102 - our own constant code
    return json.loads(buf.getvalue())


def _quick_guess() -> dict[str, Any]:
    return {
        "llama_cpp": {"installed": importlib.util.find_spec("llama_cpp") is not None},
        "mlx": {"installed": importlib.util.find_spec("mlx") is not None},
    }
