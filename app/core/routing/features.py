"""Cheap features of a prompt for routing: length, math, code, multi-step markers, requests to
think, and the markers of routine requests (rewrite, translate, format, greet).

Each feature is a number computed from the text alone in microseconds (regular expressions,
no model). `FEATURES` names them in a fixed order, the order of the fitted weights in
resources/routing/classifier.json; `REASONS` says in a few words what a feature means when it
decides a route ("multi-step math", "a rewrite"). No Qt, no engine.
"""

from __future__ import annotations

import math
import re

_I = re.IGNORECASE


def _count(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text))


_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?")
_EQUATION = re.compile(r"[\w)\]]\s*(?:\^|\*\*|[=<>≤≥]|[+\-*/]\s*[\w(])\s*[\w(\-]")
_MATH_WORDS = re.compile(
    r"\b(?:solve|equation|integral|derivative|probabilit\w*|expected (?:number|value)|"
    r"divisible|divisors?|prime|factor\w*|eigen\w*|matrix|how many (?:ways|games)|"
    r"minimum|maximum|extrem\w*|sum of|average|compounded|interest|rate|digits|"
    r"trailing zeros|modulo|permutations?|combinations?|area|perimeter|diagonal|"
    r"increasing|system of)\b", _I)  # fmt: skip
_PROOF = re.compile(
    r"\b(?:prove|proof|show that|rigorous\w*|by induction|if and only if|derive|deriving|"
    r"irrational|undecidable|valid\b|convince)", _I)  # fmt: skip
_CODE = re.compile(
    r"```|\bdef \w+\(|\breturn\b|\bfor \(|\bwhile\b|\bfunction\b|=>|[{};]\s*$|\bclass \w+|"
    r"\w+\(\w*[,)]|\bimport\b|#include|\bchar\b|\bint\b|\bvar\b", _I | re.MULTILINE)  # fmt: skip
_DEBUG = re.compile(
    r"\b(?:bug|error|exception|traceback|raises?|crash\w*|deadlock|leak\w*|hangs?|"
    r"never terminates|infinite\w*|intermittent\w*|fails?|failure|garbage|restarts?|"
    r"exit code|oom|slow\w*|race|diagnose|why does|why do)\b", _I)  # fmt: skip
_MULTI_STEP = re.compile(
    r"\b(?:plan|planning|design|compare|trade-?offs?|strategy|schedule|optimi[sz]\w*|"
    r"estimate|analy[sz]\w*|constraints?|should (?:i|we)|scenarios?|how would you|"
    r"walk me through|step[- ]by[- ]step|implement\w*|algorithm\w*|complexity|"
    r"prioriti[sz]e|weigh|migrat\w*|budget|feasible|which comes out|recommendation)\b",
    _I)  # fmt: skip
_THINK = re.compile(
    r"\b(?:think (?:carefully|hard|it through|about this)|reason(?:ing)? (?:through|about|"
    r"carefully|step)|take your time|carefully|explain (?:why|how|rigorously|the reasoning)|"
    r"with reasons|show (?:the|your) (?:calculation|work)|exact argument)\b", _I)  # fmt: skip
_ROUTINE = re.compile(
    r"\b(?:rewrite|rephrase|reword|paraphrase|translate\w*|how do you say|what'?s .{1,20} in "
    r"(?:japanese|korean|french|spanish|german|italian)|summari[sz]e|tl;?dr|format\w*|"
    r"convert|title case|uppercase|alphabetical|grammar|punctuation|polite|formal|tone|"
    r"shorten|concise|simplify|synonym|plural|rename|docstring|subject line|title for|"
    r"bullet|checklist|markdown|sound (?:more|less)|make (?:this|it|my)|turn (?:this|these)|"
    r"joke|poem|recommend|suggest|name my|favou?rite|fun fact|shortcut|what does .{1,20} "
    r"(?:mean|stand for)|who (?:wrote|painted|is)|capital of|what year)\b", _I)  # fmt: skip
_GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|good (?:morning|evening|night)|thanks?|thank you|ok|bye|cheers)\b",
    _I)  # fmt: skip
_QUOTED = re.compile(r"\"[^\"]{8,}\"|“[^”]{8,}”|: [^?]{40,}$", re.DOTALL)


def _words(text: str) -> int:
    return len(text.split())


def _payload_share(text: str) -> float:
    """The share of the text that is material to work on (quoted or after a colon): a long
    paragraph to rewrite is long, not hard."""
    quoted = sum(len(m) for m in _QUOTED.findall(text))
    return min(1.0, quoted / max(1, len(text)))


FEATURES: tuple[str, ...] = (
    "length", "numbers", "equations", "math_words", "proof", "code", "debug", "multi_step",
    "think", "questions", "routine", "greeting", "payload",
)  # fmt: skip

REASONS: dict[str, tuple[str, str]] = {  # feature: (when it pushes to big, to small)
    "length": ("a long, detailed request", "a short request"),
    "numbers": ("several quantities to work with", "few numbers"),
    "equations": ("equations to work through", "no equations"),
    "math_words": ("multi-step math", "no math"),
    "proof": ("a proof or rigorous argument", "no proof"),
    "code": ("code to reason about", "no code"),
    "debug": ("debugging", "no debugging"),
    "multi_step": ("planning or design over several steps", "a single step"),
    "think": ("you asked it to think", "no request to think"),
    "questions": ("several questions at once", "one question"),
    "routine": ("a routine task", "a routine task (rewrite, translate, format, look-up)"),
    "greeting": ("a greeting", "a greeting or small talk"),
    "payload": ("text to work through", "mostly text to rework"),
}


def features(text: str) -> list[float]:
    """The feature vector of `text`, in the order of FEATURES."""
    t = text.strip()
    words = _words(t)
    return [
        math.log1p(words),
        min(_count(_NUMBER, t), 8) / 4.0,
        min(_count(_EQUATION, t), 6) / 3.0,
        min(_count(_MATH_WORDS, t), 4) / 2.0,
        min(_count(_PROOF, t), 3),
        min(_count(_CODE, t), 6) / 3.0,
        min(_count(_DEBUG, t), 4) / 2.0,
        min(_count(_MULTI_STEP, t), 4) / 2.0,
        min(_count(_THINK, t), 2),
        min(t.count("?"), 4) / 2.0,
        min(_count(_ROUTINE, t), 3),
        1.0 if _GREETING.search(t) and words <= 8 else 0.0,
        _payload_share(t),
    ]
