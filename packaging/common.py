"""Shared PyInstaller settings, exec'd by the per-OS spec files (ponder-*.spec).

One-folder bundle (fast start, no unpacking): the app, llama.cpp's shared libraries (they
must stay in llama_cpp/lib, where llama-cpp-python looks for them), Qt's plugins (PySide6's
own hook collects platforms, image formats and styles), the catalog, icons and styles, and
the package metadata the About box reads. The engines behind `backends.host` are loaded by
name at run time, so they are listed as hidden imports.
"""

import os
import sys

from PyInstaller.utils.hooks import (
    collect_data_files,
    collect_dynamic_libs,
    collect_submodules,
    copy_metadata,
)

ROOT = os.path.abspath(os.path.join(SPECPATH, ".."))  # noqa: F821 - SPECPATH is set by PyInstaller
APP_NAME = "Ponder"
ON_MAC = sys.platform == "darwin"


def _metadata(*dists):
    out = []
    for dist in dists:
        try:
            out += copy_metadata(dist)
        except Exception:  # noqa: BLE001 - an optional engine that is not installed
            pass
    return out


# uvicorn picks its protocol, loop and lifespan modules by name at run time (Serve).
hiddenimports = (
    collect_submodules("app") + collect_submodules("backends") + collect_submodules("uvicorn")
)
excludes = [
    "tkinter",
    "llama_cpp.server",
    "fastapi",
    "torch",
    "tensorflow",
    "jax",
    "pytest",
    "hypothesis",
    "sentencepiece",  # gguf imports it only to convert vocabularies, optionally
    "pydantic",
    "pydantic_core",
]
if not ON_MAC:
    # MLX is an Apple Silicon engine: leave it (and the transformers it pulls in) out.
    excludes += ["mlx", "mlx_lm", "transformers"]
    hiddenimports = [m for m in hiddenimports if m != "backends.mlx"]

datas = [(os.path.join(ROOT, "resources"), "resources")]
datas += _metadata("ponder", "llama-cpp-python", "pyside6-essentials", "mlx-lm", "huggingface_hub")
# Math in answers (app/ui/math_render.py): ziamath's STIX Two Math font, ziafont's DejaVu
# Sans and latex2mathml's symbol table are read from the packages' folders at run time.
for _package in ("ziamath", "ziafont", "latex2mathml"):
    datas += collect_data_files(_package)
binaries = collect_dynamic_libs("llama_cpp")

a = Analysis(  # noqa: F821 - provided by PyInstaller
    [os.path.join(ROOT, "packaging", "entry.py")],
    pathex=[ROOT],
    binaries=binaries,
    datas=datas,
    hiddenimports=hiddenimports,
    excludes=excludes,
    noarchive=False,
)
pyz = PYZ(a.pure)  # noqa: F821
