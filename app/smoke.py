"""`ponder --smoke-test MODEL`: start the real window, load a model, ask, print, quit.

Used by CI on the packaged app (and by hand): it proves the bundle starts offscreen, shows
its main window, starts its bundled engine process, and gets an answer with its thinking.
Prints one JSON object and exits 0 only if both thinking and answer arrived.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What is 2+2?"


def run_smoke(model: str, timeout_s: float = 120.0) -> int:
    t0 = time.perf_counter()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.__main__ import _process_age_s as process_age_s
    from app.core.chat_store import ChatStore
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    result: dict = {"model": model}
    with tempfile.TemporaryDirectory() as tmp:
        store = ChatStore(Path(tmp) / "smoke.sqlite3")
        window = MainWindow(store)
        window.show()
        app.processEvents()
        result["window_shown_s"] = round(time.perf_counter() - t0, 3)
        result["process_age_at_window_s"] = round(process_age_s(), 3)
        result["title"] = window.windowTitle()
        from app.core.catalog import load_catalog

        result["catalog_models"] = len(load_catalog().models)  # bundled resources/catalog.toml
        result["serve_ready"] = _serve_importable()  # Model > Serve needs these in the bundle
        controller = window.controller
        state = {"sent": False}

        def on_model(info: object) -> None:
            if info and not state["sent"]:
                state["sent"] = True
                result["engine"] = dict(info).get("engine")  # type: ignore[call-overload]
                window.send(QUESTION)

        def on_busy(busy: bool) -> None:
            if not busy and state["sent"]:
                QTimer.singleShot(0, app.quit)

        controller.sig_model.connect(on_model)
        controller.sig_busy.connect(on_busy)
        controller.load_model(model)
        QTimer.singleShot(int(timeout_s * 1000), app.quit)
        app.exec()
        cid = controller.conversation_id
        messages = store.messages(cid) if cid is not None else []
        reply = next((m for m in reversed(messages) if m.role == "assistant"), None)
        result["thinking"] = reply.thinking if reply else ""
        result["answer"] = reply.content if reply else ""
        result["status"] = reply.status if reply else "no answer"
        window.close()
        store.close()
    result["total_s"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    ok = result["thinking"] and result["answer"] and result["catalog_models"] > 0
    return 0 if ok and result["serve_ready"] else 1


def _serve_importable() -> bool:
    """The local server's HTTP stack (starlette, uvicorn and the protocol modules uvicorn
    loads by name) is importable: the bundle collected it."""
    try:
        import uvicorn.lifespan.on  # noqa: F401
        import uvicorn.loops.auto  # noqa: F401
        import uvicorn.protocols.http.h11_impl  # noqa: F401

        import app.serve.http  # noqa: F401
    except ImportError:
        return False
    return True
