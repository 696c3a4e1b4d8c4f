"""Wordle feedback patterns, computed by array operations over whole word lists.

Encoding of a pattern: ``code = sum_i c_i * 3**i`` over positions i = 0..4 with
c_i = 0 grey, 1 yellow, 2 green. So 0 = all grey and ``ALL_GREEN = 242`` = solved.
Repeated letters follow the game's rule: greens first; then a non-green guess letter at
position i is yellow iff the answer's count of that letter at non-green positions exceeds
the number of earlier non-green occurrences of the same letter in the guess.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .io import atomic_path
from .paths import DATA_DIR
from .wordlists import load_allowed, load_answers, wordlist_checksum

N_PATTERNS = 243
ALL_GREEN = 242
POW3 = 3 ** np.arange(5, dtype=np.int64)
# Cells of one (chunk, answers) block: bounds peak memory of the table build (~10 such uint8 arrays live).
_CHUNK_BYTES = 8 * 2**20
FEEDBACK_VERSION = "1"


def normalize_word(word: str) -> str:
    """Lowercase/strip ``word`` and check it is five ASCII letters (ValueError naming it otherwise)."""
    if not isinstance(word, str):
        raise ValueError(f"not a word: {word!r}")
    w = word.strip().lower()
    if len(w) != 5 or not w.isascii() or not w.isalpha():
        raise ValueError(f"not a five-letter ASCII word: {word!r}")
    return w


def encode_words(words: Iterable[str] | str) -> np.ndarray:
    """Words -> (n, 5) uint8 array of letter indices 0..25 (a=0)."""
    if isinstance(words, str):
        words = [words]
    ws = [normalize_word(w) for w in words]
    if not ws:
        return np.zeros((0, 5), dtype=np.uint8)
    buf = np.frombuffer("".join(ws).encode("ascii"), dtype=np.uint8).reshape(len(ws), 5)
    return (buf - ord("a")).astype(np.uint8)


_POPCOUNT = np.array([bin(i).count("1") for i in range(32)], dtype=np.uint8)


def _letter_counts(A: np.ndarray) -> np.ndarray:
    """(26, a) uint8: how often each letter occurs in each encoded answer."""
    counts = np.zeros((26, len(A)), dtype=np.uint8)
    for j in range(5):  # five positions, not words
        np.add.at(counts, (A[:, j], np.arange(len(A))), 1)
    return counts


def _feedback_block(G: np.ndarray, A: np.ndarray, counts_A: np.ndarray) -> np.ndarray:
    """Pattern codes for encoded guesses G (g,5) against answers A (a,5) -> (g, a) uint8, no loop over words.

    Greens are a 5-bit mask per pair. For a guess letter at i, the answer's count of it at
    non-green positions is (its count in the answer) - (greens at positions j whose guess
    letter equals it), and the earlier non-green occurrences in the guess are a popcount
    of (earlier same-letter positions) & ~greens: everything is (g, a) uint8 arithmetic.
    """
    green = [G[:, i, None] == A[None, :, i] for i in range(5)]
    gmask = np.zeros((len(G), len(A)), dtype=np.uint8)
    for i in range(5):
        gmask |= green[i].astype(np.uint8) << i
    same = G[:, :, None] == G[:, None, :]  # (g, i, j)
    bits = (1 << np.arange(5)).astype(np.uint8)
    code = np.zeros((len(G), len(A)), dtype=np.uint8)
    for i in range(5):
        same_bits = (same[:, i, :] * bits).sum(axis=1).astype(np.uint8)[:, None]  # j with G_j == G_i
        earlier_bits = (same[:, i, :i] * bits[:i]).sum(axis=1).astype(np.uint8)[:, None] if i else None
        ans_count = counts_A[G[:, i]] - _POPCOUNT[gmask & same_bits]
        earlier = _POPCOUNT[~gmask & earlier_bits] if i else 0
        yellow = ~green[i] & (ans_count > earlier)
        code += (2 * green[i] + yellow).astype(np.uint8) * np.uint8(3 ** i)
    return code


def feedback_matrix(G: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Pattern codes for encoded guesses (g,5) x answers (a,5) -> (g, a) uint8, chunked over guesses."""
    G = np.asarray(G, dtype=np.uint8).reshape(-1, 5)
    A = np.asarray(A, dtype=np.uint8).reshape(-1, 5)
    out = np.empty((len(G), len(A)), dtype=np.uint8)
    counts_A = _letter_counts(A)
    chunk = max(1, _CHUNK_BYTES // max(1, len(A)))
    for s in range(0, len(G), chunk):
        out[s:s + chunk] = _feedback_block(G[s:s + chunk], A, counts_A)
    return out


def feedback_codes(guesses: Sequence[str] | str, answers: Sequence[str] | str) -> np.ndarray:
    """Pattern codes of any five-letter guesses against any five-letter answers -> (len(guesses), len(answers)) uint8."""
    return feedback_matrix(encode_words(guesses), encode_words(answers))


def pattern_string(code: int) -> str:
    """Human-readable pattern, e.g. 'GY..G' (G green, Y yellow, . grey), position 0 first."""
    code = int(code)
    return "".join(".YG"[(code // 3 ** i) % 3] for i in range(5))


def pattern_code(pattern: str) -> int:
    """Inverse of ``pattern_string``: 'GY..G' -> code."""
    return int(sum(".YG".index(c) * 3 ** i for i, c in enumerate(pattern.upper().replace("B", "."))))


def table_path() -> Path:
    """Cache file of the full table, keyed by the word lists' checksum and the feedback code version."""
    return DATA_DIR / f"feedback_table_{wordlist_checksum()}_v{FEEDBACK_VERSION}.npy"


def build_feedback_table() -> np.ndarray:
    """Compute the (12972 allowed guesses x 2315 answers) uint8 table from scratch."""
    return feedback_matrix(encode_words(load_allowed()), encode_words(load_answers()))


@lru_cache(maxsize=1)
def feedback_table() -> np.ndarray:
    """The (12972 x 2315) pattern table: rows follow ``load_allowed()``, columns ``load_answers()``; cached in data/."""
    path = table_path()
    shape = (len(load_allowed()), len(load_answers()))
    if path.exists():
        try:
            table = np.load(path)
            if table.shape == shape and table.dtype == np.uint8:
                table.setflags(write=False)
                return table
        except (OSError, ValueError):  # a corrupt cache is simply rebuilt
            pass
    table = build_feedback_table()
    with atomic_path(path) as tmp:  # unique temp name + rename: safe with concurrent builders
        np.save(tmp, table)
    table.setflags(write=False)
    return table


def pattern_entropy(codes: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of the pattern distribution of each row of ``codes`` (n, m) -> (n,)."""
    codes = np.asarray(codes)
    n, m = codes.shape
    if n == 0 or m == 0:
        return np.zeros(n)
    counts = np.bincount((np.arange(n)[:, None] * N_PATTERNS + codes).ravel(),
                         minlength=n * N_PATTERNS).reshape(n, N_PATTERNS)
    p = counts / m
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(np.where(p > 0, p * np.log2(p), 0.0)).sum(axis=1)
