"""Shared fixtures: scripted GGUF models built once per session, and an engine client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

# Fixtures shared by several modules: the local Hub server, a scratch HF cache, a keyring.
pytest_plugins = ["hub_fixtures"]

from scripted import (  # noqa: E402
    TEMPLATE_MALICIOUS,
    TEMPLATE_PLAIN,
    TEMPLATE_PREOPEN,
    write_corrupt_files,
    write_scripted_gguf,
)


class ScriptedModels:
    """Paths of the generated models: see tests/scripted.py for what each one says."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.preopen = write_scripted_gguf(folder / "r1-preopen.gguf", "answer", TEMPLATE_PREOPEN)
        self.plain = write_scripted_gguf(folder / "r1-plain.gguf", "answer", TEMPLATE_PLAIN)
        self.never_closes = write_scripted_gguf(
            folder / "r1-never-closes.gguf", "never_closes", TEMPLATE_PREOPEN
        )
        self.no_template = write_scripted_gguf(folder / "no-template.gguf", "answer", None)
        self.malicious = write_scripted_gguf(
            folder / "malicious-template.gguf", "answer", TEMPLATE_MALICIOUS
        )
        self.duplicate_token = write_scripted_gguf(
            folder / "duplicate-token.gguf", "answer", TEMPLATE_PREOPEN, duplicate_token=True
        )
        self.corrupt = write_corrupt_files(folder, self.preopen)


@pytest.fixture(scope="session")
def scripted_models(tmp_path_factory: pytest.TempPathFactory) -> ScriptedModels:
    return ScriptedModels(tmp_path_factory.mktemp("models"))


@pytest.fixture
def engine():
    from app.core.engine import EngineClient

    client = EngineClient(load_timeout_s=120)
    yield client
    client.close()


@pytest.fixture
def fake_engine_client():
    """A client of a real engine process that also knows the "fake" engine (fake_engine.py).

    Its watchdog is quick (1 s of silence, 1 s for the pong) so hang tests stay short.
    """
    from app.core.engine import EngineClient
    from fake_engine import host_command

    client = EngineClient(
        command=host_command(), load_timeout_s=30, watchdog_s=1.0, ping_timeout_s=1.0
    )
    yield client
    client.close(timeout_s=1.0)
