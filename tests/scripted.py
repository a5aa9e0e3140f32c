"""Build tiny GGUF models that follow a script, so tests run the real llama.cpp offline.

A transformer whose attention and MLP weights are zero passes the token embedding through
the residual stream; with one-hot embeddings and `W_out[next(t), t] = 50` the next token
depends only on the current one, with probability ~1 at any usual temperature
(../shared/TESTING.md). The script starts at the token that ends the generation prompt.
Used by the tests (session fixtures in conftest.py) and by the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"

# DeepSeek-R1-style templates: earlier turns' thinking is dropped (the text before </think>).
_TEMPLATE_BODY = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "{% set c = m['content'] %}"
    "{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}"
    "{{ c }}" + EOS + "{% endif %}{% endfor %}"
)
TEMPLATE_PREOPEN = (
    _TEMPLATE_BODY + "{% if add_generation_prompt %}" + ASSISTANT + "<think>\n{% endif %}"
)
TEMPLATE_PLAIN = _TEMPLATE_BODY + "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
# A chat template that tries to escape the Jinja sandbox.
TEMPLATE_MALICIOUS = (
    "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    "{{ cycler.__init__.__globals__.os.system('touch /tmp/ponder_pwned') }}"
)

# Qwen3's official chat template (tests/data/templates/README.md says where it comes from).
QWEN3_TEMPLATE = (Path(__file__).parent / "data" / "templates" / "Qwen3-0.6B.jinja").read_text(
    encoding="utf-8"
)

THINKING = ["▁Two", "▁plus", "▁two", "▁makes", "▁four."]
ANSWER = ["▁The", "▁answer", "▁is", "▁4."]
THINK_TEXT = "Two plus two makes four."
ANSWER_TEXT = "The answer is 4."
ANSWER5_TEXT = "The answer is 5."
ANSWER5_BYTES = ["<0x20>", "<0x35>", "<0x2E>"]  # " 5."
LOOP = ["▁Hmm,", "▁let", "▁me", "▁check", "▁again."]
# "€" is three byte tokens: one character that spans several tokens.
EURO = ["<0xE2>", "<0x82>", "<0xAC>"]
EURO_LOOP = ["▁Hmm,", *EURO, "▁let", "▁me", "▁check", "▁again."]

SPECIALS = ["<unk>", BOS, EOS, USER, ASSISTANT, "<think>", "</think>"]
WORDS = [*THINKING, *ANSWER, *LOOP, "\n\n"]


def vocabulary() -> list[str]:
    """The token strings: specials, 256 byte tokens, the script's words, padding to 320."""
    tokens = [*SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), *WORDS]
    tokens += [f"<unused{i}>" for i in range(320 - len(tokens))]
    return tokens


def script(kind: str) -> list[list[str]]:
    """The chains of tokens for a model kind; each token's successor is the next one.

    `answer`: think, close, answer, end. `never_closes`: thinks in a loop forever (hits
    max_tokens). Both start at the Assistant marker and at the newline after `<think>`, so
    the same weights serve a template that pre-opens the block and one that does not; after
    Answer now (the prompt gets "\\n</think>\\n\\n") the `\\n\\n` token leads to the answer.
    """
    head = [ASSISTANT, "<think>", "<0x0A>", *THINKING]
    tail = ["</think>", "\n\n", *ANSWER, EOS]
    if kind == "answer":
        return [head + tail]
    if kind == "qwen3":  # for Qwen3's real template: its prompt ends with "assistant\n" (think)
        # or, with enable_thinking=false, with "<think>\n\n</think>\n\n" (answer at once)
        return [["<0x0A>", "<think>", *THINKING, "</think>", "\n\n", *ANSWER, EOS]]
    if kind == "answer5":  # a "quant" that gets it wrong: "The answer is 5." (byte tokens)
        return [[*head, "</think>", "\n\n", *ANSWER[:3], *ANSWER5_BYTES, EOS]]
    if kind == "never_closes":
        return [[*head, *LOOP, LOOP[0]], tail]
    if kind == "euro_loop":  # thinks "Hmm,€ let me check again." forever, 8 tokens a lap
        return [[*head, *EURO_LOOP, EURO_LOOP[0]], tail]
    if kind == "no_think":  # a non-reasoning model (Gemma-like): answers, no think tags
        return [[ASSISTANT, *ANSWER, EOS]]
    if kind == "blank_think":  # an empty think block (whitespace only), then the answer
        return [[ASSISTANT, "<think>", "<0x0A>", "</think>", "\n\n", *ANSWER, EOS]]
    if kind == "blank_never":  # opens a think block and writes only newlines (max_tokens)
        return [[ASSISTANT, "<think>", "<0x0A>", "<0x0A>"]]
    raise ValueError(kind)


def write_scripted_gguf(
    path: Path,
    kind: str = "answer",
    template: str | None = TEMPLATE_PREOPEN,
    duplicate_token: bool = False,
    n_ctx_train: int = 4096,
    add_bos: bool = False,
) -> Path:
    """Write a scripted llama-architecture GGUF (about 3 MB) and return its path."""
    import gguf

    tokens = vocabulary()
    if duplicate_token:
        tokens[-1] = tokens[-2]  # llama.cpp aborts the whole process on this
    n = len(tokens)
    index = {t: i for i, t in enumerate(tokens)}
    out = np.zeros((n, n), dtype=np.float32)  # rows: next token, columns: current token
    for chain in script(kind):
        for cur, nxt in zip(chain, chain[1:], strict=False):
            out[index[nxt], index[cur]] = 50.0
    hidden, ffn, heads = n, 32, 4

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"scripted-{kind}")
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_rope_dimension_count(hidden // heads)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(0)  # all f32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n)
    types = []
    for t in tokens:
        if t in ("<think>", "</think>"):
            types.append(gguf.TokenType.USER_DEFINED)  # as in the real R1 GGUFs: printed
        elif t in SPECIALS:
            types.append(gguf.TokenType.CONTROL)
        elif t.startswith("<0x"):
            types.append(gguf.TokenType.BYTE)
        elif t.startswith("<unused"):
            types.append(gguf.TokenType.UNUSED)
        else:
            types.append(gguf.TokenType.NORMAL)
    w.add_token_types(types)
    w.add_bos_token_id(index[BOS])
    w.add_eos_token_id(index[EOS])
    w.add_unk_token_id(0)
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    if template is not None:
        w.add_chat_template(template)

    w.add_tensor("token_embd.weight", np.eye(n, dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    w.add_tensor("output.weight", out)
    zeros = {
        "attn_q": (hidden, hidden),
        "attn_k": (hidden, hidden),
        "attn_v": (hidden, hidden),
        "attn_output": (hidden, hidden),
        "ffn_gate": (ffn, hidden),
        "ffn_up": (ffn, hidden),
        "ffn_down": (hidden, ffn),
    }
    w.add_tensor("blk.0.attn_norm.weight", np.ones(hidden, dtype=np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
    for name, shape in zeros.items():
        w.add_tensor(f"blk.0.{name}.weight", np.zeros(shape, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_corrupt_files(folder: Path, good: Path) -> dict[str, Path]:
    """Broken model files: truncated, wrong magic, absurd counts, plain text."""
    data = good.read_bytes()
    files = {
        "truncated": data[: len(data) // 3],
        "not_gguf": b"PK\x03\x04" + data[4:2048],
        "text": b"this is not a model\n" * 10,
        "huge_count": data[:8] + (2**60).to_bytes(8, "little") + data[16:4096],
        "empty": b"",
    }
    out = {}
    for name, blob in files.items():
        p = folder / f"{name}.gguf"
        p.write_bytes(blob)
        out[name] = p
    return out
