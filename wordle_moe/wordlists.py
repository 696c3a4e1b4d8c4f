"""The Wordle word lists (answers and allowed guesses) and a checksum of both for cache keys."""
from __future__ import annotations

import hashlib
from functools import cache

import numpy as np

from .paths import ALLOWED, ANSWERS


def _read_words(path) -> tuple[str, ...]:
    """Read one lowercase five-letter word per line (blank lines and CRLF tolerated)."""
    words = tuple(w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())
    bad = [w for w in words if len(w) != 5 or not w.isascii() or not w.isalpha()]
    if bad:
        raise ValueError(f"{path}: not five ASCII letters: {bad[:5]}")
    return words


@cache
def _answers() -> tuple[str, ...]:
    return _read_words(ANSWERS)


@cache
def _allowed() -> tuple[str, ...]:
    answers = _answers()
    seen = set(answers)
    others = tuple(w for w in _read_words(ALLOWED) if w not in seen)
    return answers + others


def load_answers() -> list[str]:
    """The 2,315 original Wordle answers, in the original schedule order (index i = Wordle #i)."""
    return list(_answers())


def load_allowed() -> list[str]:
    """All 12,972 valid guesses: the answers first (same order), then the other allowed guesses."""
    return list(_allowed())


@cache
def answer_index() -> dict[str, int]:
    """Map answer word -> its index in ``load_answers()`` (and, identically, in ``load_allowed()``)."""
    return {w: i for i, w in enumerate(_answers())}


@cache
def allowed_index() -> dict[str, int]:
    """Map valid guess -> its index in ``load_allowed()``."""
    return {w: i for i, w in enumerate(_allowed())}


@cache
def wordlist_checksum() -> str:
    """sha256 (first 16 hex digits) of both lists in load order: the key of every derived cache under data/."""
    h = hashlib.sha256()
    h.update("\n".join(_answers()).encode())
    h.update(b"\0")
    h.update("\n".join(_allowed()).encode())
    return h.hexdigest()[:16]


@cache
def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def zipf_frequencies(words) -> np.ndarray:
    """wordfreq Zipf frequency ('en') of each word (0.0 for words wordfreq does not know)."""
    return np.array([_zipf(w) for w in words], dtype=np.float64)
