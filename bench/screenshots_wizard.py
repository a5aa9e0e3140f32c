"""Render every model-wizard page to PNG for this machine and two example machines.

    .venv/bin/python bench/screenshots_wizard.py [--out docs/screenshots] [--dark]

Pages: 1 Your machine, 2 Pick a model (the recommendation preselected), 2b the full
DeepSeek-R1 chosen (the server route), 3 Download mid-way (paused), 3b an error (gated
repo asking for a token), 4 Ready. Machines: this one (detected), the RTX 4090 desktop and
the 16 GB MacBook Air M2 from resources/hardware_profiles. Runs offscreen; no network: the
download page is fed recorded-style events instead of a real transfer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MACHINES = (
    ("this-machine", None, "This computer"),
    ("rtx4090", "desktop-rtx4090-64gb", "Example: RTX 4090 desktop, 64 GB"),
    ("macbook-air", "macbook-air-m2-16gb", "Example: MacBook Air M2, 16 GB"),
)


def _settle(app, widget) -> None:
    for _ in range(5):
        app.processEvents()
    widget.repaint()
    app.processEvents()


def render(out: Path, dark: bool = False) -> list[Path]:
    from PySide6.QtWidgets import QApplication

    from app.core import model_choice
    from app.core.downloads import (
        DownloadPlan,
        PlannedFile,
        Progress,
        TokenRequiredError,
        human_size,
    )
    from app.ui.theme import apply_theme
    from app.ui.wizard import ModelWizard

    app = QApplication.instance() or QApplication([])
    apply_theme(app, dark)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    profiles = model_choice.example_profiles()
    for slug, profile_name, label in MACHINES:
        profile = model_choice.read_profile_file(profiles[profile_name]) if profile_name else None
        env = model_choice.ChoiceEnv(profile=profile, machine_label=label,
                                     download=model_choice.DownloadSettings(
                                         cache_dir=Path("~/.cache/huggingface/hub")))  # fmt: skip
        w = ModelWizard(env)
        w.show()
        w.start()
        w.task.wait(30_000)
        _settle(app, w)

        def shot(name: str, w=w, slug=slug) -> None:
            _settle(app, w)
            path = out / f"wizard-{slug}-{name}.png"
            w.grab().save(str(path))
            written.append(path)

        shot("1-machine")
        w.stack.setCurrentIndex(1)
        w._update_nav()
        rec = w.pick.selected
        shot("2-pick")
        full = next((o for o in w.recommendation.options if o.mode == "server"), None)
        if full is not None:
            w.pick.select(full)
            w._update_nav()
            shot("2b-server")
            w.pick.select(rec)
        # Download: fed events (no network): a third done, paused.
        page = w.download
        page.option = rec
        page.title_label.setText(f"Download {rec.name}")
        page.what.setText(
            f"{rec.name} at {rec.quant_label} — {human_size(rec.download_bytes)} "
            f"from Hugging Face ({rec.repo}). It goes into the shared Hugging Face cache, so "
            "other apps can use it too."
        )
        files = rec.files or ("model.safetensors", "config.json", "tokenizer.json")
        size = rec.download_bytes // len(files)
        plan = DownloadPlan(rec.repo, "0" * 40,
                            tuple(PlannedFile(f, size, "a" * 64) for f in files))  # fmt: skip
        w.stack.setCurrentIndex(2)
        page._on_planned(plan, 412 * 10**9, plan.total_bytes)
        page._set_state("running")
        done = plan.total_bytes // 3
        page._on_event(Progress(files[0], done, size, done, plan.total_bytes, 48e6,
                                (plan.total_bytes - done) / 48e6))  # fmt: skip
        w._update_nav()
        shot("3-download")
        page._on_failed(TokenRequiredError(
            f"{rec.repo} is gated: accept its terms on huggingface.co and add a Hugging Face "
            "token (or set HF_TOKEN).", gated=True, had_token=False))  # fmt: skip
        shot("3b-token")
        page._set_state("done")
        w.load_option, w.load_path = rec, "/models/x.gguf"
        w.stack.setCurrentIndex(3)
        w.ready.loading(rec.name, rec.load_settings())
        w.ready.done(True, rec.name)
        w._update_nav()
        shot("4-ready")
        w.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--dark", action="store_true")
    args = parser.parse_args()
    for path in render(Path(args.out), args.dark):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
