"""`ponder-cli download`: progress on stderr, the path on stdout, Ctrl-C pauses cleanly and
the same command resumes; catalog ids go through find_source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from hub_fixtures import payload

ROOT = Path(__file__).resolve().parents[1]
REPO = "bartowski/Tiny-R1-GGUF"
GGUF = "Tiny-R1-Q4_K_M.gguf"
MB = 1_000_000


def cli(hub, cache, *extra: str) -> list[str]:
    return ["download", *extra, "--endpoint", hub.url, "--cache-dir", str(cache)]


def test_download_prints_progress_then_the_path_and_a_rerun_does_nothing(hub, hf_cache, capsys):
    hub.add_repo(REPO, {GGUF: payload(2 * MB), "config.json": b"{}"})
    assert main(cli(hub, hf_cache, "--repo", REPO, "--file", GGUF)) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path.name == GGUF and path.read_bytes() == payload(2 * MB)
    assert "100.0%" in err and "Downloaded and verified" in err
    sent = hub.bytes_sent
    assert main(cli(hub, hf_cache, "--repo", REPO, "--file", GGUF)) == 0
    out, err = capsys.readouterr()
    assert "Already installed" in err and Path(out.strip()) == path and hub.bytes_sent == sent
    assert main(cli(hub, hf_cache, "--list")) == 0
    out, _ = capsys.readouterr()
    assert REPO in out and "verified" in out


def test_a_catalog_model_id_is_resolved_with_find_source(hub, hf_cache, capsys, monkeypatch):
    parts = [f"R1-IQ1_S-0000{i}-of-00002.gguf" for i in (1, 2)]
    hub.add_repo("unsloth/R1-GGUF", {p: payload(MB, seed=i) for i, p in enumerate(parts)})

    @dataclass(frozen=True)
    class WeightSource:
        repo: str
        files: tuple[str, ...]
        patterns: tuple[str, ...] = ()
        size_bytes: int = 0
        format: str = "gguf"

    def find_source(model_id: str, quant: str | None) -> WeightSource:
        if (model_id, quant) != ("deepseek-r1", "UD-IQ1_S"):
            raise KeyError(f"{model_id} {quant}")
        return WeightSource("unsloth/R1-GGUF", tuple(parts))

    fake = types.ModuleType("app.core.catalog")
    fake.find_source = find_source  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "app.core.catalog", fake)
    assert main(cli(hub, hf_cache, "deepseek-r1", "--quant", "UD-IQ1_S")) == 0
    out, _ = capsys.readouterr()
    assert Path(out.strip()).name == parts[0]
    assert (Path(out.strip()).parent / parts[1]).exists()
    assert main(cli(hub, hf_cache, "deepseek-r1", "--quant", "Q9")) == 2
    assert "no catalog entry" in capsys.readouterr().err


def test_usage_errors_and_hub_errors_are_explained(hub, hf_cache, capsys):
    hub.add_repo(REPO, {GGUF: b"x" * 10}, gated=True)
    assert main(cli(hub, hf_cache)) == 2
    assert "MODEL_ID" in capsys.readouterr().err
    assert main(cli(hub, hf_cache, "--repo", REPO)) == 2
    assert main(cli(hub, hf_cache, "--repo", REPO, "--file", GGUF)) == 1
    err = capsys.readouterr().err
    assert "gated" in err and "--save-token" in err and "Traceback" not in err


def test_ctrl_c_pauses_cleanly_and_the_same_command_resumes(hub, hf_cache, capsys):
    size = 8 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 4 * MB
    args = cli(hub, hf_cache, "--repo", REPO, "--file", GGUF)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HF_TOKEN", None)
    child = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    blobs = hf_cache / "models--bartowski--Tiny-R1-GGUF" / "blobs"
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            parts = list(blobs.glob("*.incomplete")) if blobs.exists() else []
            if parts and parts[0].stat().st_size > MB:
                break
            assert child.poll() is None
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "Paused" in err and "run the same command again" in err and "Traceback" not in err
    kept = parts[0].stat().st_size
    assert MB < kept < size

    hub.rate = None
    hub.wait_idle()
    hub.reset_counters()
    assert main(args) == 0
    _, err = capsys.readouterr()
    assert "resuming" in err
    assert hub.bytes_sent == size - kept


@pytest.mark.parametrize("flag", ["--list"])
def test_listing_an_empty_cache(flag, hub, hf_cache, capsys):
    assert main(cli(hub, hf_cache, flag)) == 0
    assert "No models installed" in capsys.readouterr().err
