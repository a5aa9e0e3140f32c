"""`ponder-cli download`: progress on stderr, the path on stdout, Ctrl-C pauses cleanly and
the same command resumes; catalog ids go through find_source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def test_a_catalog_model_id_downloads_the_catalog_files(hub, hf_cache, capsys):
    from app.core.catalog import find_source

    source = find_source("deepseek-r1-distill-qwen-1.5b", "Q4_K_M")
    assert source.format == "gguf" and len(source.files) == 1
    hub.add_repo(source.repo, {source.files[0]: payload(MB), "README.md": b"card"})
    assert main(cli(hub, hf_cache, "deepseek-r1-distill-qwen-1.5b", "--quant", "q4_k_m")) == 0
    out, _ = capsys.readouterr()
    assert Path(out.strip()).name == source.files[0]
    assert Path(out.strip()).read_bytes() == payload(MB)
    assert main(cli(hub, hf_cache, "deepseek-r1-distill-qwen-1.5b", "--quant", "Q9")) == 2
    assert "has no quant 'Q9'" in capsys.readouterr().err
    assert main(cli(hub, hf_cache, "deepseek-r1-distil-qwen-1.5b", "--quant", "Q4_K_M")) == 2
    assert "Did you mean deepseek-r1-distill-qwen-1.5b" in capsys.readouterr().err


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


def test_list_shows_what_the_model_manager_lists(hub, hf_cache, capsys, tmp_path, monkeypatch,
                                                 scripted_models):  # fmt: skip
    """The GUI listed three models where `--list` said "No models installed": now the CLI
    lists the manager's models (here a file added in the window and an LM Studio one)."""
    import shutil

    from app.core import model_discovery as md

    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    lm = tmp_path / "home" / ".lmstudio" / "models" / "pub" / "Repo-GGUF"
    lm.mkdir(parents=True)
    shutil.copy(scripted_models.plain, lm / "Studio-Q8_0.gguf")
    md.add_local_model(scripted_models.preopen)
    manager = md.discover_models(hf_cache=hf_cache)
    assert len(manager) == 2
    assert main(cli(hub, hf_cache, "--list")) == 0
    out, err = capsys.readouterr()
    assert "No models installed" not in err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(" GB" in x or " MB" in x or " kB" in x for x in lines)
    assert any("LM Studio" in x and "Studio" in x for x in lines)
    assert any("added by you" in x for x in lines)


def test_a_catalog_model_without_quant_gets_the_recommended_one(hub, hf_cache, capsys,
                                                                monkeypatch):  # fmt: skip
    from app.commands import download
    from app.core import model_choice
    from app.core.catalog import find_source

    laptop = Path(__file__).resolve().parents[1] / "resources" / "hardware_profiles"
    profile = model_choice.read_profile_file(laptop / "laptop-8gb-no-gpu.json")
    monkeypatch.setattr(model_choice, "detect", lambda: profile)
    ranked = model_choice.recommend(profile).options
    model_id = "deepseek-r1-distill-qwen-1.5b"
    best = next(o.quant for o in ranked if o.model_id == model_id)
    assert download._recommended_quant(model_id) == best
    source = find_source(model_id, best)
    hub.add_repo(source.repo, {source.files[0]: payload(MB)})
    assert main(cli(hub, hf_cache, model_id)) == 0  # no --quant: it asked before
    out, err = capsys.readouterr()
    assert f"Using {best}" in err and Path(out.strip()).name == source.files[0]
