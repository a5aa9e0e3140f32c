"""Small helpers the engine process needs: its own memory use, signal names."""

from __future__ import annotations

import signal


def process_rss() -> int:
    """Resident memory of this process in bytes (0 if it cannot be read)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - memory figures are informative only
        return 0


def describe_exit(code: int | None) -> str:
    """An exit status in words: -6 is an abort, -9 a kill (often out of memory)."""
    if code is None:
        return "is still running"
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    why = {
        "SIGABRT": "llama.cpp stopped on an internal check, often a damaged or unsupported "
        "model file",
        "SIGKILL": "it was killed, often by the system when memory ran out",
        "SIGSEGV": "it crashed on a memory error, often a damaged model file",
        "SIGBUS": "it crashed reading the model file, which may have changed or be damaged",
    }.get(name, "it was stopped by a signal")
    return f"was stopped by {name}: {why}"
