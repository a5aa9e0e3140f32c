"""The final answer in a model's reply, normalised so that answers can be compared.

The final answer is the content of the last `\\boxed{…}` (nested braces allowed), else the
last non-empty line of the answer, without lead-ins such as "The answer is" or "Final
answer:", Markdown emphasis and a closing full stop. `normalise` turns numbers into one
spelling ("1,000" → "1000", "0.50" → "0.5", "3/4" → "0.75", "$12" → "12", "40%" → "40")
and text into lower-case words. No Qt.

    final_answer("Two plus two.\\n\\nThe answer is **4**.")  # "4"
    is_correct("So x = \\\\boxed{\\\\frac{3}{4}}", "0.75")    # True
"""

from __future__ import annotations

import re
from fractions import Fraction

_LEAD_INS = re.compile(
    r"^(?:(?:so|thus|therefore|hence|finally|in conclusion)\b[,:]?\s*)?"
    r"(?:(?:the\s+)?(?:final\s+)?(?:answer|result|output|solution)\b\s*)?"
    r"(?:(?:is\b|=|:)\s*)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_TEXT_ANSWER_WORDS = 6  # a longer last line is not "an answer" to compare word for word


def boxed(text: str) -> str | None:
    """The content of the last `\\boxed{…}` (or `\\fbox{…}`), or None."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, begin = 1, i
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i].strip()
        i += 1
    return None  # never closed: the answer was cut short


def _clean_line(line: str) -> str:
    line = line.strip().strip("*_`#>- ").strip()
    line = line.replace("**", "").replace("__", "")
    line = re.sub(r"^\$+|\$+$", "", line).strip()
    line = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", line).strip()
    return line


def final_answer(text: str) -> str:
    """The model's final answer as written: the last `\\boxed{}`, else the last line."""
    found = boxed(text)
    if found is not None:
        return _clean_line(found)
    for line in reversed(text.strip().splitlines()):
        cleaned = _clean_line(line)
        if cleaned:
            stripped = _LEAD_INS.sub("", cleaned, count=1).strip()
            return (stripped or cleaned).rstrip(".!").strip()
    return ""


def number_value(text: str) -> Fraction | None:
    """The number a whole answer stands for ("1,000", "3/4", "$12", "-0.5", "40%")."""
    text = _FRAC.sub(r"\1/\2", text.strip())
    text = re.sub(r"^[$€£]\s*|\s*(?:%|\\%)$", "", text).replace(",", "").replace(" ", "")
    text = text.rstrip(".")
    if not re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:/-?\d+)?", text):
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value


def last_number(text: str) -> Fraction | None:
    """The last number written in `text` (a fraction `\\frac{a}{b}` or `a/b` counts)."""
    text = _FRAC.sub(r"\1/\2", text)
    matches = _NUMBER.findall(text)
    for match in reversed(matches):
        value = number_value(match)
        if value is not None:
            return value
    return None


def _number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    text = f"{as_float:.6f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == value else f"{value.numerator}/{value.denominator}"


def normalise(answer: str) -> str:
    """One spelling per answer: a number as its shortest decimal, else lower-case words."""
    answer = _FRAC.sub(r"\1/\2", answer.strip())
    value = number_value(answer)
    if value is None:
        value = _lone_number(answer)
    if value is not None:
        return _number_text(value)
    words = re.findall(r"[\w'+\-*/=<>.]+", answer.lower().replace("\\text", " "))
    words = [w.strip(".") for w in words if w.strip(".") not in ("a", "an", "the")]
    return " ".join(w for w in words if w)


def _lone_number(answer: str) -> Fraction | None:
    """The number in a short answer with exactly one number ("x = 5", "12 km", "5 apples")."""
    numbers = _NUMBER.findall(_FRAC.sub(r"\1/\2", answer))
    if len(numbers) != 1 or len(answer.split()) > _TEXT_ANSWER_WORDS:
        return None
    return number_value(numbers[0])


def is_correct(reply: str, expected: str) -> bool:
    """Whether the reply's final answer is the expected one (numbers compared by value)."""
    final = final_answer(reply)
    want = expected.strip()
    want_value = number_value(want)
    if want_value is not None:
        got = number_value(final)
        if got is None:
            got = last_number(final)
        return got is not None and got == want_value
    got_text, want_text = normalise(final), normalise(want)
    if not got_text:
        return False
    return got_text == want_text or got_text.startswith(want_text + " ")


def same_answer(a: str, b: str) -> bool:
    """Whether two final answers (already extracted) say the same thing."""
    na, nb = normalise(a), normalise(b)
    return bool(na) and na == nb
