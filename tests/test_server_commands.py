"""Copyable commands to serve the full DeepSeek-R1, sized to the server's GPUs."""

from __future__ import annotations

import pytest

from app.core.server_commands import server_commands


def by_engine(cmds):
    return {c.engine: c for c in cmds}


def test_eight_h200_fit_fp8_with_tensor_parallel_and_the_r1_parser():
    cmds = by_engine(server_commands(gpus=8, gpu_memory_gb=141, ram_gb=1024))
    vllm, sglang = cmds["vllm"], cmds["sglang"]
    assert vllm.fits and sglang.fits
    assert vllm.command.startswith("vllm serve deepseek-ai/DeepSeek-R1 \\\n")
    flags = [
        "--tensor-parallel-size 8",
        "--reasoning-parser deepseek_r1",
        "--enable-expert-parallel",
        "--max-model-len 32768",
        '--api-key "$PONDER_API_KEY"',
    ]
    for flag in flags:
        assert flag in vllm.command
    assert sglang.command.startswith("python3 -m sglang.launch_server")
    for flag in ("--model-path deepseek-ai/DeepSeek-R1", "--tp 8",
                 "--reasoning-parser deepseek-r1", "--trust-remote-code"):  # fmt: skip
        assert flag in sglang.command
    assert vllm.base_url == "http://SERVER:8000/v1" and sglang.base_url.endswith(":30000/v1")


def test_eight_h100_are_too_small_for_fp8_and_say_so():
    cmds = server_commands(gpus=8, gpu_memory_gb=80, ram_gb=512)
    assert cmds[0].engine == "llama.cpp" and cmds[0].fits  # the fitting one comes first
    vllm = by_engine(cmds)["vllm"]
    assert not vllm.fits and "671 GB" in vllm.note and "llama.cpp" in vllm.note


def test_small_gpus_put_the_experts_in_ram_with_a_dynamic_quant():
    cmd = by_engine(server_commands(gpus=1, gpu_memory_gb=24, ram_gb=192))["llama.cpp"]
    assert cmd.fits and "UD-IQ1_S" in cmd.title
    assert "DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf" in cmd.command
    assert '-ot ".ffn_.*_exps.=CPU"' in cmd.command and "--n-gpu-layers 99" in cmd.command
    assert "--ctx-size 32768" in cmd.command and "--reasoning-format deepseek" in cmd.command
    assert cmd.command.startswith(
        'hf download unsloth/DeepSeek-R1-GGUF --include "DeepSeek-R1-UD-IQ1_S/*"'
    )


def test_enough_vram_keeps_the_whole_quant_on_the_gpus():
    cmd = by_engine(server_commands(gpus=4, gpu_memory_gb=80, ram_gb=64))["llama.cpp"]
    assert "UD-Q2_K_XL" in cmd.title and "-00001-of-00005.gguf" in cmd.command
    assert "-ot" not in cmd.command and "entirely in GPU memory" in cmd.note


def test_too_little_memory_anywhere_is_said_plainly():
    cmd = by_engine(server_commands(gpus=1, gpu_memory_gb=8, ram_gb=32))["llama.cpp"]
    assert not cmd.fits and "does not fit" in cmd.note


def test_many_gpus_go_multi_node_and_odd_counts_round_down():
    cmds = by_engine(server_commands(gpus=16, gpu_memory_gb=80, ram_gb=1024))
    assert "--pipeline-parallel-size 2" in cmds["vllm"].command and cmds["vllm"].fits
    assert "--tp 16" in cmds["sglang"].command and "--nnodes 2" in cmds["sglang"].command
    six = by_engine(server_commands(gpus=6, gpu_memory_gb=141, ram_gb=512))
    assert "--tensor-parallel-size 4" in six["vllm"].command


def test_nonsense_input_is_refused():
    with pytest.raises(ValueError):
        server_commands(gpus=0, gpu_memory_gb=80)
