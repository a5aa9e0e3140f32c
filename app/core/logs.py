"""Logging to the platform's log folder, with rotation, and crash reports a person can read.

`setup_logging()` is called once at start-up by the GUI and the CLI. An uncaught exception
in the GUI process writes `crash-<time>.txt` next to the logs (what happened, the
traceback, versions) before the default handler runs.
"""

from __future__ import annotations

import datetime
import logging
import logging.handlers
import os
import platform
import sys
import traceback
from pathlib import Path
from types import TracebackType

LOG_NAME = "ponder.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 5


def log_dir() -> Path:
    """The platform's log folder for Ponder (PONDER_LOG_DIR overrides it)."""
    override = os.environ.get("PONDER_LOG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir("Ponder", appauthor=False))


def versions() -> dict[str, str]:
    """Ponder's version and the engines' versions, without importing the engines."""
    from importlib import metadata

    out = {"python": platform.python_version(), "os": platform.platform()}
    for dist in ("ponder", "llama-cpp-python", "mlx-lm", "pyside6-essentials"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def setup_logging(level: int = logging.INFO, folder: Path | None = None) -> Path:
    """Log to a rotating file in the log folder (and warnings to stderr); returns the file."""
    folder = folder or log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    root = logging.getLogger()
    if not any(getattr(h, "_ponder", False) for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._ponder = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(level)
    return path


def write_crash_report(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
    folder: Path | None = None,
) -> Path:
    """Write a readable crash report and return its path."""
    folder = folder or log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"crash-{stamp}.txt"
    lines = [
        "Ponder stopped because of an error it did not expect.",
        "Your conversations are saved. Please send this file with a bug report.",
        "",
        f"What happened: {exc_type.__name__}: {exc}",
        "",
        *(f"{k}: {v}" for k, v in versions().items()),
        "",
        "".join(traceback.format_exception(exc_type, exc, tb)),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def install_crash_handler(folder: Path | None = None) -> None:
    """Route uncaught exceptions to a crash report, then to the previous hook."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(exc_type, KeyboardInterrupt):
            try:
                report = write_crash_report(exc_type, exc, tb, folder)
                logging.getLogger("ponder").critical("crash report written to %s", report)
            except OSError:
                pass
        previous(exc_type, exc, tb)

    sys.excepthook = hook
