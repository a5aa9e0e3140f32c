"""Build tiny MLX model folders that follow a script, so tests run the real mlx-lm offline.

The same trick and the same script as tests/scripted.py (GGUF): a llama whose attention and
MLP weights are zero passes the one-hot token embedding through, and `lm_head[next, cur]`
makes each token predict its successor with probability ~1. The folder is what mlx-lm reads:
config.json, model.safetensors, tokenizer.json (a byte-fallback BPE with no merges, so
"\\n" becomes `<0x0A>` as in llama.cpp) and tokenizer_config.json with the chat template.
A wider, deeper variant (`hidden`, `layers`, `ffn`) does the same arithmetic as a bigger
model for benchmarks. Used by the MLX tests and by bench/engine_overhead.py.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from scripted import BOS, EOS, SPECIALS, TEMPLATE_PREOPEN, script, vocabulary

# Added (non-special) tokens matched before the BPE model: "\n\n" must stay one token so
# that after Answer now ("\n</think>\n\n") the model goes on to the answer.
_ADDED_NORMAL = ("<think>", "</think>", "\n\n")


def _tokenizer_json(tokens: list[str]) -> dict:
    vocab = {t: i for i, t in enumerate(tokens)}
    added = []
    for t in [*SPECIALS, *_ADDED_NORMAL]:
        added.append(
            {
                "id": vocab[t],
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": t in SPECIALS and t not in _ADDED_NORMAL,
            }
        )
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }


def _weights(kind: str, tokens: list[str], hidden: int, layers: int, ffn: int) -> dict:
    n = len(tokens)
    index = {t: i for i, t in enumerate(tokens)}
    out = np.zeros((n, hidden), dtype=np.float32)  # rows: next token, columns: current token
    for chain in script(kind):
        for cur, nxt in zip(chain, chain[1:], strict=False):
            out[index[nxt], index[cur]] = 50.0
    embed = np.zeros((n, hidden), dtype=np.float32)
    embed[np.arange(n), np.arange(n)] = 1.0
    w = {
        "model.embed_tokens.weight": embed,
        "model.norm.weight": np.ones(hidden, dtype=np.float32),
        "lm_head.weight": out,
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = np.ones(hidden, dtype=np.float32)
        w[p + "post_attention_layernorm.weight"] = np.ones(hidden, dtype=np.float32)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            w[p + f"self_attn.{name}.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
        w[p + "mlp.gate_proj.weight"] = np.zeros((ffn, hidden), dtype=np.float32)
        w[p + "mlp.up_proj.weight"] = np.zeros((ffn, hidden), dtype=np.float32)
        w[p + "mlp.down_proj.weight"] = np.zeros((hidden, ffn), dtype=np.float32)
    return w


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write float32 tensors in the safetensors format (8-byte header length, JSON, data)."""
    header: dict = {"__metadata__": {"format": "mlx"}}
    offset = 0
    for name, array in tensors.items():
        size = array.nbytes
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + size]}  # fmt: skip
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array, dtype="<f4").tobytes())


def write_scripted_mlx(
    folder: Path,
    kind: str = "answer",
    template: str | None = TEMPLATE_PREOPEN,
    hidden: int | None = None,
    layers: int = 1,
    ffn: int = 32,
    n_ctx_train: int = 4096,
    config_extra: dict | None = None,
) -> Path:
    """Write a scripted llama-architecture MLX model folder and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = vocabulary()
    n = len(tokens)
    hidden = hidden or n
    heads = 4
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": hidden // heads,
        "rms_norm_eps": 1e-6,
        "vocab_size": n,
        "max_position_embeddings": n_ctx_train,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": tokens.index(BOS),
        "eos_token_id": tokens.index(EOS),
        **(config_extra or {}),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    write_safetensors(folder / "model.safetensors", _weights(kind, tokens, hidden, layers, ffn))
    (folder / "tokenizer.json").write_text(json.dumps(_tokenizer_json(tokens), ensure_ascii=False))
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": "<unk>",
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": n_ctx_train,
    }
    if template is not None:
        tok_config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, ensure_ascii=False))
    return folder


def write_corrupt_mlx(folder: Path, good: Path) -> dict[str, Path]:
    """Broken copies of a good model folder, one fault each; returns name -> folder."""
    import shutil

    data = (good / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["lm_head.weight"]["data_offsets"][1] -= 4  # wrong size for its shape
    bad_entry = json.dumps(header).encode()
    bad_entry += b" " * (-len(bad_entry) % 8)
    renamed = data.replace(b'"lm_head.weight"', b'"lm_hexx.weight"', 1)
    weights = {
        "truncated": data[: len(data) // 2],
        "garbage": b"this is not a model\n" * 10,
        "empty": b"",
        "huge_header": (2**60).to_bytes(8, "little") + data[8:],
        "wrong_size": struct.pack("<Q", len(bad_entry)) + bad_entry + data[8 + n :],
        "missing_tensor": renamed,
    }
    out: dict[str, Path] = {}

    def copy(name: str) -> Path:
        target = folder / name
        shutil.copytree(good, target)
        out[name] = target
        return target

    for name, blob in weights.items():
        (copy(name) / "model.safetensors").write_bytes(blob)
    (copy("no_tokenizer") / "tokenizer.json").unlink()
    (copy("broken_tokenizer") / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    for name, extra in {
        "remote_code": {"model_file": "evil.py"},
        "auto_map": {"auto_map": {"AutoModelForCausalLM": "evil.Model"}},
        "unsupported": {"model_type": "nosuch_arch_xyz", "architectures": ["NoSuch"]},
    }.items():
        target = copy(name)
        config = json.loads((target / "config.json").read_text())
        (target / "config.json").write_text(json.dumps(config | extra))
        (target / "evil.py").write_text(
            "import pathlib\npathlib.Path(__file__).with_name('PWNED').touch()\n"
        )
    target = copy("bin_only")
    (target / "model.safetensors").rename(target / "pytorch_model.bin")
    return out


class ScriptedMlxModels:
    """The generated MLX model folders: the same scripts as the GGUF ones in scripted.py."""

    def __init__(self, folder: Path) -> None:
        from scripted import TEMPLATE_MALICIOUS, TEMPLATE_PLAIN

        self.folder = folder
        self.preopen = write_scripted_mlx(folder / "r1-preopen", "answer", TEMPLATE_PREOPEN)
        self.plain = write_scripted_mlx(folder / "r1-plain", "answer", TEMPLATE_PLAIN)
        self.never_closes = write_scripted_mlx(folder / "r1-never-closes", "never_closes")
        self.no_template = write_scripted_mlx(folder / "no-template", "answer", None)
        self.malicious = write_scripted_mlx(folder / "malicious", "answer", TEMPLATE_MALICIOUS)
        self.corrupt = write_corrupt_mlx(folder / "corrupt", self.preopen)
