"""`ponder-cli plan`: which model fits this machine, how fast it will think, the recommendation.

    ponder-cli plan                          ranked table, the recommended row marked
    ponder-cli plan --json                   {"recommended": {...}, "options": [...]}
    ponder-cli plan --model ID --quant Q [--ctx N] [--kv-type f16|q8_0] --json
    ponder-cli plan --hardware FILE          plan for the machine in a `doctor --json` file
    ponder-cli plan --model ID --quant Q --commands [--host ADDR] [--json]
                                             the vLLM / SGLang / llama-server commands the
                                             wizard shows for that option (with a new API key)
    ponder-cli plan --list                   the model ids

Bad input (unknown model or quant, context too long, a malformed hardware file) prints one
sentence and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

GIB = 1024**3


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="what fits this machine and how fast it will think")
    p.add_argument("--model", metavar="ID", help="one model (see --list)")
    p.add_argument("--quant", metavar="Q", help="one quant of --model (e.g. Q4_K_M, 4bit)")
    p.add_argument("--ctx", type=int, metavar="N", help="context length in tokens")
    p.add_argument("--kv-type", choices=("f16", "q8_0"), default="f16", help="KV cache type")
    p.add_argument("--engine", choices=("llama_cpp", "mlx", "openai"), help="engine to plan for")
    p.add_argument("--hardware", metavar="FILE", help="a profile from `ponder-cli doctor --json`")
    p.add_argument("--online", action="store_true", help="ask the Hub for the real file sizes")
    p.add_argument("--all", action="store_true", help="show options that do not run here too")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--list", action="store_true", help="print the model ids and exit")
    p.add_argument("--commands", action="store_true",
                   help="with --model and --quant: commands that serve it on a server")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="with --commands: the address to listen on (127.0.0.1)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.core.catalog import CatalogError, load_catalog
    from app.core.planner import PlanError, plan_option, rank

    try:
        catalog = load_catalog()
        if args.list:
            for m in catalog.models:
                print(f"{m.id:34} {m.name} ({m.params_b:g}B, {m.license})")
            return 0
        if args.quant and not args.model:
            raise PlanError("--quant needs --model: which model's quant?")
        profile = _profile(args.hardware)
        if args.online:
            from app.core.hub_sizes import refresh_sizes

            ids = [catalog.get(args.model).id] if args.model else None
            catalog, notes = refresh_sizes(catalog, ids)
            for note in notes[:5]:
                print(f"ponder-cli: {note}", file=sys.stderr)
        if args.model and args.quant:
            plan = plan_option(profile, args.model, args.quant, args.ctx, args.kv_type,
                               args.engine, catalog)  # fmt: skip
            serve = _serve_plan(plan, args.host) if args.commands else None
            if args.json:
                data = plan.to_dict()
                if serve is not None:
                    data["server"] = serve_plan_dict(serve)
                print(json.dumps(data, indent=2))
            else:
                print(_one(plan) if serve is None else _one(plan) + "\n\n" + commands_text(serve))
            return 0
        if args.commands:
            raise PlanError("--commands applies to one option: give --model and --quant.")
        if args.ctx is not None or args.engine is not None:
            raise PlanError("--ctx and --engine apply to one option: give --model and --quant.")
        ranking = rank(profile, catalog, [args.model] if args.model else None)
    except (PlanError, CatalogError, ValueError) as exc:
        print(f"ponder-cli: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(ranking.to_dict(), indent=2))
    elif args.markdown:
        print(markdown_table(ranking, args.all))
    else:
        print(text_table(ranking, args.all))
    return 0


def _serve_plan(plan: Any, host: str) -> Any:
    """The wizard's serve plan for this option (model_choice.serve_plan, same sizing)."""
    from app.core.model_choice import Option, serve_plan

    return serve_plan(Option(plan), host=host)


def serve_plan_dict(serve: Any) -> dict[str, Any]:
    """The serve plan as JSON: the key, the address, and every command."""
    return {
        "intro": serve.intro, "api_key": serve.api_key, "host": serve.host,
        "served_model_name": serve.served_name, "warning": serve.warning,
        "notes": list(serve.notes),
        "commands": [{"engine": c.engine, "title": c.title, "command": c.command,
                      "fits": c.fits, "gpus": c.gpus, "note": c.note, "base_url": c.base_url}
                     for c in serve.commands],
    }  # fmt: skip


def commands_text(serve: Any) -> str:
    """The commands as the wizard's dialog shows them, one block per engine."""
    lines = [serve.intro, f"API key (in every command below): {serve.api_key}"]
    lines += [f"Warning: {serve.warning}"] if serve.warning else []
    lines += [f"Note: {n}" for n in serve.notes]
    for c in serve.commands:
        lines += ["", f"## {c.title}" + ("" if c.fits else " (does not fit)"), c.note, "",
                  c.command, "", f"Then connect to {c.base_url}"]  # fmt: skip
    return "\n".join(lines)


def _profile(path: str | None) -> Any:
    from app.core.planner.profile_file import read_hardware_file

    if path:
        return read_hardware_file(path)
    try:
        from app.core.hardware import get_profile
    except ImportError:
        return _minimal_profile()
    return get_profile()


def _minimal_profile() -> Any:
    """RAM and CPU only, from psutil/os: used if the hardware probe is unavailable."""
    import os

    import psutil

    from app.core.hardware.profile import CpuInfo, HardwareProfile, RamInfo

    vm = psutil.virtual_memory()
    n = os.cpu_count() or 1
    return HardwareProfile(
        os=sys.platform,
        cpu=CpuInfo("unknown", psutil.cpu_count(logical=False) or n, n),
        ram=RamInfo(int(vm.total), int(vm.available)),
    )


COLUMNS = ("", "model", "quant", "format", "context", "runs", "memory", "speed", "answer")


def _row(p: Any, marked: bool) -> list[str]:
    from app.core.planner.words import ctx_words, gb_words

    speed = f"{p.decode_tps:.1f} tok/s" if p.decode_tps else "-"
    runs = p.mode + (" (experts in RAM)" if p.experts_in_ram else "")
    kv = "" if p.kv_type == "f16" else f" ({p.kv_type} KV)"
    return ["→" if marked else "", p.model, p.quant, p.format.upper(), ctx_words(p.ctx) + kv,
            runs, gb_words(p.total_bytes), speed,
            p.answer_words if p.runs_here else "-"]  # fmt: skip


def _rows(ranking: Any, show_all: bool) -> list[list[str]]:
    shown = [p for p in ranking.options if show_all or p.runs_here]
    return [_row(p, p is ranking.recommended) for p in shown]


def text_table(ranking: Any, show_all: bool = False) -> str:
    rows = [list(COLUMNS), *_rows(ranking, show_all)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    hidden = sum(1 for p in ranking.options if not p.runs_here)
    if hidden and not show_all:
        lines.append(f"(and {hidden} options that do not run here: --all shows them)")
    lines += ["", ranking.reason]
    if ranking.recommended:
        lines.append(ranking.recommended.reason)
    return "\n".join(lines)


def markdown_table(ranking: Any, show_all: bool = False) -> str:
    head = ["**" + c + "**" if c else " " for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(COLUMNS)]
    for r in _rows(ranking, show_all):
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join([*lines, "", ranking.reason])


def _one(p: Any) -> str:
    from app.core.planner.words import ctx_words, gb_words

    lines = [
        f"{p.model_name} {p.quant} ({p.format.upper()}, {p.engine}), {ctx_words(p.ctx)} context, "
        f"{p.kv_type} KV cache",
        f"  verdict   {p.mode}",
        f"  memory    {gb_words(p.total_bytes)} = weights {gb_words(p.weights_bytes)} + KV "
        f"{gb_words(p.kv_cache_bytes)} + compute {gb_words(p.compute_bytes)} + overhead "
        f"{gb_words(p.overhead_bytes)}",
        f"  placement VRAM {gb_words(p.vram_bytes)}, RAM {gb_words(p.ram_bytes)}, "
        f"{p.gpu_layers}/{p.layers} layers on the GPU",
        f"  speed     {p.decode_tps:.1f} tokens/s; a typical answer takes {p.answer_words}"
        if p.decode_tps
        else "  speed     unknown here",
        f"  download  {p.repo} ({len(p.files) or 'all'} files, {gb_words(p.download_bytes)})",
        "",
        p.reason,
    ]
    return "\n".join(lines)
