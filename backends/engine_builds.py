"""Which engine builds import here: llama-cpp-python (with GPU offload or not) and MLX.

Run as a short child process (`python -m backends.engine_builds`, or the frozen app with
`--engine-check`): importing llama_cpp loads native libraries (~0.3 s) and a broken CUDA
build can abort the process, so the GUI never does it itself. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def check() -> dict[str, Any]:
    """{llama_cpp: {installed, version, gpu_offload} | {installed, error}, mlx: {…}}."""
    out: dict[str, Any] = {"llama_cpp": {"installed": False}, "mlx": {"installed": False}}
    try:
        import llama_cpp

        out["llama_cpp"] = {
            "installed": True,
            "version": getattr(llama_cpp, "__version__", None),
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        }
    except Exception as exc:  # noqa: BLE001 - any import failure is the answer
        out["llama_cpp"]["error"] = f"{type(exc).__name__}: {exc}"
    try:
        import importlib.metadata as md

        import mlx.core  # noqa: F401 - importing is the check

        out["mlx"] = {"installed": True, "version": md.version("mlx")}
    except Exception as exc:  # noqa: BLE001
        out["mlx"]["error"] = f"{type(exc).__name__}: {exc}"
    return out


def main() -> int:
    sys.stdout.write(json.dumps(check()))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
