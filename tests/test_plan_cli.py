"""`ponder-cli plan`: the table, the JSON shapes, one option, and bad input exiting 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.core.catalog import load_catalog

PROFILES = Path(__file__).resolve().parents[1] / "resources" / "hardware_profiles"
RTX = str(PROFILES / "desktop-rtx4090-64gb.json")


def run(capsys, *argv):
    code = main(["plan", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_prints_the_model_ids(capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == load_catalog().ids


def test_table_marks_the_recommended_row(capsys):
    code, out, _ = run(capsys, "--hardware", RTX)
    assert code == 0
    marked = [line for line in out.splitlines() if line.startswith("→")]
    assert len(marked) == 1 and "deepseek-r1-0528-qwen3-8b" in marked[0]
    assert "Q4_K_M" in marked[0] and "do not run here" in out


def test_json_ranking_has_recommended_and_options(capsys):
    code, out, _ = run(capsys, "--hardware", RTX, "--json")
    data = json.loads(out)
    assert code == 0 and set(data) >= {"recommended", "options"}
    assert data["recommended"]["model"] == data["options"][0]["model"]
    assert data["options"][0]["recommended"] is True
    assert sum(o["recommended"] for o in data["options"]) == 1


def test_one_option_as_json(capsys):
    code, out, _ = run(
        capsys,
        "--hardware",
        RTX,
        "--model",
        "deepseek-r1-distill-qwen-7b",
        "--quant",
        "Q4_K_M",
        "--ctx",
        "16384",
        "--kv-type",
        "q8_0",
        "--json",
    )
    d = json.loads(out)
    assert code == 0
    for key in ("model", "quant", "format", "engine", "ctx", "weights_bytes", "kv_cache_bytes",
                "compute_bytes", "overhead_bytes", "total_bytes", "gpu_layers", "vram_bytes",
                "ram_bytes", "mode", "decode_tps", "answer_seconds", "reason"):  # fmt: skip
        assert key in d
    assert d["ctx"] == 16384 and d["kv_type"] == "q8_0" and d["mode"] == "gpu"


def test_one_option_as_text(capsys):
    code, out, _ = run(capsys, "--hardware", RTX, "--model", "deepseek-r1-distill-qwen-7b",
                       "--quant", "Q4_K_M")  # fmt: skip
    assert code == 0 and "verdict   gpu" in out and "typical answer" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "deepseek-r1-distil-qwen-7b", "--quant", "Q4_K_M"],
         "Did you mean deepseek-r1-distill-qwen-7b"),
        (["--model", "deepseek-r1-distill-qwen-7b", "--quant", "Q9"], "has no quant 'Q9'"),
        (["--model", "deepseek-r1-distill-qwen-7b", "--quant", "Q4_K_M", "--ctx", "200000"],
         "at most 131,072"),
        (["--quant", "Q4_K_M"], "needs --model"),
    ],
)  # fmt: skip
def test_bad_input_is_one_sentence_and_status_2(capsys, argv, message):
    code, out, err = run(capsys, "--hardware", RTX, *argv)
    assert code == 2 and out == ""
    assert message in err and err.startswith("ponder-cli: ") and len(err.splitlines()) == 1


def test_malformed_hardware_file_exits_2(capsys, tmp_path):
    bad = tmp_path / "hw.json"
    bad.write_text('{"os": "linux"}')
    code, _, err = run(capsys, "--hardware", str(bad))
    assert code == 2 and "not a Ponder hardware profile" in err and "doctor --json" in err


def test_markdown_table(capsys):
    code, out, _ = run(capsys, "--hardware", RTX, "--markdown")
    assert code == 0 and out.startswith("| ") and "| → |" in out


def test_plan_for_this_machine_works_without_a_file(capsys):
    code, out, _ = run(capsys, "--json")
    assert code == 0 and "options" in json.loads(out)


def test_hub_sizes_replace_the_stored_ones(hub, monkeypatch):
    from app.core.hub_sizes import refresh_sizes

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    cat = load_catalog()
    model = cat.get("deepseek-r1-distill-qwen-1.5b")
    gguf_source, q4 = model.find_quant("Q4_K_M")
    files = {q.files[0]: b"x" * (1000 + i) for i, q in enumerate(gguf_source.quants)}
    hub.add_repo(gguf_source.repo, files)
    mlx_source, _ = model.find_quant("4bit")
    hub.add_repo(
        mlx_source.repo_for("4bit"),
        {"model.safetensors": b"y" * 5000, "config.json": b"{}", "README.md": b"hi"},
    )
    new, notes = refresh_sizes(cat, [model.id], endpoint=hub.url)
    m = new.get(model.id)
    _, q = m.find_quant("Q4_K_M")
    assert q.size_bytes == len(files[q4.files[0]]) and q.size_source == "hub"
    _, q = m.find_quant("4bit")
    assert q.size_bytes == 5002 and q.size_source == "hub"  # safetensors + config, no README
    _, q = m.find_quant("8bit")  # its repo is not on this Hub: the stored size serves
    assert q.size_source == "estimated" and any("8bit" in n for n in notes)
    assert new.get("deepseek-r1").find_quant("Q4_K_M")[1].size_source == "catalog"


def test_offline_keeps_the_stored_sizes(monkeypatch):
    from app.core.hub_sizes import refresh_sizes

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cat = load_catalog()
    new, notes = refresh_sizes(cat)
    assert new is cat and "Offline" in notes[0]


LAPTOP = str(PROFILES / "laptop-8gb-no-gpu.json")


def _fixed_key(monkeypatch):
    import app.core.server_commands as sc

    monkeypatch.setattr(sc, "new_api_key", lambda: "pk-fixed")


@pytest.mark.parametrize(
    ("model", "quant"),
    [("deepseek-r1-distill-qwen-32b", "Q4_K_M"), ("deepseek-r1-0528", "Q4_K_M"),
     ("qwq-32b", "4bit")],
)  # fmt: skip
def test_commands_are_the_ones_the_wizard_shows(capsys, monkeypatch, model, quant):
    from app.commands.plan import commands_text
    from app.core.model_choice import read_profile_file, recommend, serve_plan

    _fixed_key(monkeypatch)
    code, out, _ = run(capsys, "--hardware", LAPTOP, "--model", model, "--quant", quant,
                       "--commands")  # fmt: skip
    wizard = serve_plan(recommend(read_profile_file(LAPTOP)).find(model, quant))
    assert code == 0 and out.rstrip("\n").endswith(commands_text(wizard))
    for c in wizard.commands:
        assert c.command in out
    assert "--api-key pk-fixed" in out and "--host 127.0.0.1 " in out


def test_commands_as_json_with_the_chosen_address(capsys, monkeypatch):
    _fixed_key(monkeypatch)
    argv = ["--model", "deepseek-r1-distill-llama-70b", "--quant", "Q4_K_M", "--commands",
            "--host", "0.0.0.0", "--json"]  # fmt: skip
    code, out, _ = run(capsys, "--hardware", LAPTOP, *argv)
    d = json.loads(out)
    assert code == 0 and d["mode"] == "server"
    s = d["server"]
    assert s["api_key"] == "pk-fixed" and s["host"] == "0.0.0.0" and "0.0.0.0" in s["warning"]
    assert {c["engine"] for c in s["commands"]} == {"vllm", "sglang", "llama.cpp"}
    for c in s["commands"]:
        assert "--api-key pk-fixed" in c["command"] and "--host 0.0.0.0 " in c["command"]
        assert c["base_url"].startswith("http://SERVER:")
    assert "deepseek-ai/DeepSeek-R1-Distill-Llama-70B" in s["commands"][0]["command"] or any(
        "DeepSeek-R1-Distill-Llama-70B-Q4_K_M.gguf" in c["command"] for c in s["commands"]
    )


def test_commands_need_one_option_and_a_sane_address(capsys):
    code, out, err = run(capsys, "--hardware", LAPTOP, "--commands")
    assert code == 2 and "--commands applies to one option" in err
    code, out, err = run(capsys, "--hardware", LAPTOP, "--model", "qwq-32b", "--quant",
                         "Q4_K_M", "--commands", "--host", "a b")  # fmt: skip
    assert code == 2 and "not an address" in err and len(err.splitlines()) == 1
