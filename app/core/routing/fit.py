"""Fit the routing classifier on the fit split and write resources/routing/classifier.json.

python -m app.core.routing.fit            # writes the file, prints fit and check scores
python -m app.core.routing.fit --dry-run  # prints only
"""

from __future__ import annotations

import argparse
import json

from app.core.routing.classifier import CLASSIFIER_PATH, evaluate, fit, load_prompts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    rows = load_prompts()
    model = fit(r for r in rows if r.split == "fit")
    for split in ("fit", "check"):
        s = evaluate(model, [r for r in rows if r.split == split])
        print(f"{split:5} n={s.n:3} precision={s.precision:.3f} recall={s.recall:.3f} "
              f"accuracy={s.accuracy:.3f}")  # fmt: skip
    if not args.dry_run:
        CLASSIFIER_PATH.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {CLASSIFIER_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
