"""The GUI entry point: `python -m app` (or the `ponder` command) opens Ponder's window.

Start-up stays light: no engine library or huggingface_hub is imported before it is needed;
the engine process starts when a model is loaded. `--model PATH` loads a GGUF at start;
`--db PATH` uses another chat database. The very first launch opens the model wizard.
With PONDER_STARTUP_PROBE=1 the app prints the seconds from process start to the window
being shown, then quits (bench/ui_stream.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _process_age_s() -> float:
    """Seconds since this process started (Linux /proc; else since this module loaded)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _T0


_T0 = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if "--engine-host" in argv:  # the frozen app runs itself as the engine process
        from backends.host import main as host_main

        return int(host_main() or 0)
    if "--engine-check" in argv:  # the frozen app checks its engine builds in a child
        from backends.engine_builds import main as check_main

        return check_main()
    if "--smoke-test" in argv:  # CI's check of the packaged app: window, engine, answer
        from app.smoke import run_smoke

        return run_smoke(argv[argv.index("--smoke-test") + 1])
    parser = argparse.ArgumentParser(prog="ponder", description="Ponder: reasoning models, here.")
    parser.add_argument("--model", help="a .gguf model to load at start")
    parser.add_argument("--db", help="the chat database (default: the user data folder)")
    parser.add_argument("--ctx", type=int, default=16384,
                        help="context for a model loaded without a plan (16384)")  # fmt: skip
    parser.add_argument("--theme", choices=("light", "dark", "system"), default="system")
    args, qt_args = parser.parse_known_args(argv)
    from app.core.logs import install_crash_handler, setup_logging

    setup_logging()
    install_crash_handler()

    import PySide6
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    if PySide6.__version__ == "6.12.0" and sys.version_info < (3, 12):
        print(
            "ponder: PySide6 6.12.0 on Python 3.11 has a reference-counting bug that "
            "crashes Qt apps; install pyside6-essentials 6.11.3.",
            file=sys.stderr,
        )

    from app.core.chat_store import ChatStore, StoreError
    from app.ui.main_window import MainWindow
    from app.ui.theme import apply_theme

    app = QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Ponder")
    app.setOrganizationName("Ponder")
    app.setDesktopFileName("ponder")  # matches packaging/linux/ponder.desktop
    from PySide6.QtGui import QIcon

    from app.core.paths import resources_dir

    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "ponder.png")))
    apply_theme(app, None if args.theme == "system" else args.theme == "dark")
    try:
        store = ChatStore(args.db)
    except StoreError as exc:
        print(f"ponder: {exc.message}", file=sys.stderr)
        return 1
    window = MainWindow(store, n_ctx=args.ctx)
    window.show()
    if os.environ.get("PONDER_STARTUP_PROBE"):
        app.processEvents()
        print(f"window shown after {_process_age_s():.3f} s", flush=True)
        # Engines, the Hub client and the planner are loaded when first needed, not before
        # the window shows.
        late = ("app.core.planner", "app.core.catalog", "app.core.hardware.probe")
        heavy = sorted(
            m
            for m in sys.modules
            if m.split(".")[0] in ("llama_cpp", "mlx", "mlx_lm", "huggingface_hub") or m in late
        )
        print(f"heavy modules: {','.join(heavy) or 'none'}", flush=True)
        QTimer.singleShot(0, window.close)
    elif args.model:
        window.controller.load_model(args.model)
    else:
        QTimer.singleShot(0, window.restore_session)  # the last chat and model come back
        QTimer.singleShot(0, window.maybe_first_run)  # the model wizard, on the first launch
    code = app.exec()
    store.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
