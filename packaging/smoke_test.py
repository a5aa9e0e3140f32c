"""Smoke-test the built bundle, not the source tree: start it offscreen with a clean
environment, let it show its window, start its bundled engine process on a scripted model,
and check the answer and its thinking. Prints the bundle size and the launch times.

Run: `.venv/bin/python packaging/smoke_test.py dist/Ponder` (`make package-smoke` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> int:
    bundle = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist" / "Ponder").resolve()
    exe = bundle / ("Ponder.exe" if os.name == "nt" else "Ponder")
    if not exe.exists():
        print(f"smoke test: no built app at {exe}: run `make package` first", file=sys.stderr)
        return 2
    from scripted import write_scripted_gguf

    with tempfile.TemporaryDirectory() as tmp:
        model = write_scripted_gguf(Path(tmp) / "scripted.gguf")
        env = {  # nothing from the developer's environment: no venv, no PYTHONPATH
            "HOME": tmp,
            "PATH": "/usr/bin:/bin",
            "QT_QPA_PLATFORM": "offscreen",
            "LANG": "C.UTF-8",
            "PONDER_LOG_DIR": str(Path(tmp) / "logs"),
        }
        t0 = time.perf_counter()
        out = subprocess.run(
            [str(exe), "--smoke-test", str(model)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp,
            env=env,
        )
        wall = time.perf_counter() - t0
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"smoke test FAILED (exit {out.returncode})\n{out.stdout}\n{out.stderr[-3000:]}")
        return 1
    result = json.loads(lines[-1])
    assert result["thinking"] == "Two plus two makes four.", result
    assert result["answer"] == "The answer is 4.", result
    assert result["engine"] == "llama_cpp" and result["title"].startswith("Ponder "), result
    assert result["catalog_models"] >= 9, result  # the catalog travels inside the bundle
    print(f"bundle: {bundle} ({folder_size(bundle) / 1e6:.0f} MB)")
    print(f"launch to window shown: {result['process_age_at_window_s']:.2f} s")
    print(f"launch to answer (engine start, load, answer, quit): {wall:.2f} s")
    print(f"thinking: {result['thinking']!r}  answer: {result['answer']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
