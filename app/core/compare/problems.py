"""Problem sets for comparisons: a JSONL file, the composer's text, or the built-in set.

A problem file has one JSON object per line: `prompt` (also read: `question`, `problem`),
an optional `expected` short answer (also: `answer`), and optional `id`, `level` and `topic`.
Blank lines and lines starting with `#` are skipped. The built-in set
(resources/problems/builtin.jsonl) holds about 40 problems with known short answers,
graded from level 1 (easy) to 5 (hard). No Qt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.core.paths import resources_dir

BUILTIN = "builtin"
MAX_PROBLEMS = 1000
MAX_PROMPT_CHARS = 20_000


class ProblemSetError(Exception):
    """A problem set that cannot be used; the message says why in words."""


@dataclass(frozen=True)
class Problem:
    """One problem: what is asked and, when known, the short answer expected."""

    prompt: str
    expected: str | None = None
    id: str = ""
    level: int | None = None
    topic: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(
            prompt=str(data["prompt"]),
            expected=None if data.get("expected") is None else str(data["expected"]),
            id=str(data.get("id") or ""),
            level=int(data["level"]) if data.get("level") is not None else None,
            topic=str(data.get("topic") or ""),
        )


def builtin_path() -> Path:
    return resources_dir() / "problems" / "builtin.jsonl"


def builtin_problems(max_level: int | None = None) -> list[Problem]:
    """The built-in set, easiest first (at most `max_level` when given)."""
    problems = parse_jsonl(builtin_path().read_text(encoding="utf-8"), "the built-in set")
    if max_level is not None:
        problems = [p for p in problems if (p.level or 0) <= max_level]
    return sorted(problems, key=lambda p: p.level or 0)


def _problem_from(data: Any, where: str) -> Problem:
    if not isinstance(data, dict):
        raise ProblemSetError(f'{where}: each line must be a JSON object with a "prompt".')
    prompt = data.get("prompt", data.get("question", data.get("problem")))
    if not isinstance(prompt, str) or not prompt.strip():
        raise ProblemSetError(f'{where}: there is no "prompt" text.')
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ProblemSetError(f"{where}: the prompt is longer than {MAX_PROMPT_CHARS} characters.")
    expected = data.get("expected", data.get("answer"))
    if expected is not None and not isinstance(expected, str | int | float):
        raise ProblemSetError(f'{where}: "expected" must be a short text or a number.')
    level = data.get("level")
    if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
        raise ProblemSetError(f'{where}: "level" must be a whole number.')
    text_expected = None if expected is None or str(expected).strip() == "" else str(expected)
    return Problem(prompt.strip(), text_expected, str(data.get("id") or ""), level,
                   str(data.get("topic") or ""))  # fmt: skip


def parse_jsonl(text: str, source: str = "the problem file") -> list[Problem]:
    """Problems from JSONL text; ProblemSetError names the line that is wrong."""
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProblemSetError(f"{where} is not valid JSON ({exc.msg}).") from None
        problems.append(_problem_from(data, where))
        if len(problems) > MAX_PROBLEMS:
            raise ProblemSetError(f"{source} has more than {MAX_PROBLEMS} problems.")
    if not problems:
        raise ProblemSetError(f"{source} has no problems in it.")
    return problems


def load_problems(path: str | Path) -> list[Problem]:
    """Problems from a JSONL file (or the word `builtin` for the built-in set)."""
    if str(path) == BUILTIN:
        return builtin_problems()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemSetError(f"There is no problem file at {file}.") from None
    except UnicodeDecodeError:
        raise ProblemSetError(f"{file.name} is not a UTF-8 text file.") from None
    except OSError as exc:
        raise ProblemSetError(f"{file.name} cannot be read: {exc.strerror or exc}.") from None
    return parse_jsonl(text, file.name)


def from_text(text: str, expected: str | None = None) -> list[Problem]:
    """One problem from the composer's text (no expected answer unless given)."""
    if not text.strip():
        raise ProblemSetError("The composer is empty: type a problem first.")
    return [Problem(text.strip(), expected or None, "composer")]
