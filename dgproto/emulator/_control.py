"""Client control messages: what a valid ``Configure`` is, and what its features do.

Deepgram documents ``{"type":"Configure","features":{"numerals":true}}`` for listen v1;
the emulator also takes ``keyterms`` (as Flux does) and a few boolean formatting
features, and refuses anything else with ``ConfigureFailure`` so a client sending the
wrong shape (JS SDK v4's ``processors``) finds out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._recognizer import RecognizedWord

__all__ = ["CONFIGURE_FEATURES", "check_configure", "numeral"]

#: ``Configure`` features the emulator accepts, all booleans. ``numerals``,
#: ``punctuate`` and ``smart_format`` change its output; the others are acknowledged.
CONFIGURE_FEATURES = (
    "numerals",
    "punctuate",
    "smart_format",
    "profanity_filter",
    "filler_words",
    "dictation",
)

_SURROGATE = re.compile("[\ud800-\udfff]")

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
#: ``numerals``: number words and their digits (single words; no "twenty one" joining).
_NUMBERS = {name: str(value) for value, name in enumerate(_ONES)} | {
    name: str(10 * index) for index, name in enumerate(_TENS, start=2)
}


def numeral(word: RecognizedWord) -> RecognizedWord:
    """``numerals``: a number word becomes digits, in ``word`` and ``punctuated_word``."""
    digits = _NUMBERS.get(word.word)
    if digits is None:
        return word
    core = word.punctuated_word.strip(".,;:!?\"'")
    punctuated = word.punctuated_word.replace(core, digits, 1) if core else digits
    return attrs.evolve(word, word=digits, punctuated_word=punctuated)


def check_configure(message: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(code, description)`` when a ``Configure`` cannot be applied, else ``None``."""
    unknown = sorted(set(message) - {"type", "features", "keyterms"})
    if unknown:
        return (
            "UNKNOWN_FIELD",
            f"Configure accepts 'features' and 'keyterms'; unknown field(s): {', '.join(unknown)}.",
        )
    features = message.get("features", {})
    if not isinstance(features, dict):
        return ("INVALID_FEATURES", "Configure 'features' must be an object.")
    for name, value in features.items():
        if name not in CONFIGURE_FEATURES:
            return (
                "UNKNOWN_FEATURE",
                f"Unknown feature {name!r}; known: {', '.join(CONFIGURE_FEATURES)}.",
            )
        if not isinstance(value, bool):
            return ("INVALID_FEATURE_VALUE", f"Feature {name!r} must be true or false.")
    keyterms = message.get("keyterms")
    if keyterms is not None and (
        not isinstance(keyterms, list) or not all(_is_keyterm(k) for k in keyterms)
    ):
        return ("INVALID_KEYTERMS", "Configure 'keyterms' must be a list of non-empty strings.")
    return None


def _is_keyterm(value: object) -> bool:
    """A non-empty str that is text: JSON can spell a lone surrogate (``"\\ud800"``),
    which no UTF-8 reply could echo back."""
    return isinstance(value, str) and bool(value) and not _SURROGATE.search(value)
