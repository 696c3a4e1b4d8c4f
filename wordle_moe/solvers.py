"""Vectorised Wordle solver simulations: how many tries a solver needs for each answer word.

All games of one solver are simulated at once as a tree over candidate sets: games that share
a history share the candidate set (the answers consistent with that history) and therefore
the solver's decision, so each tree node is one vectorised step (choose a guess for the node,
look up that guess's pattern against every candidate, split the candidates by pattern). There
is no loop over words x words; the Python loop runs over tree nodes (a few thousand).

Solvers (``SOLVERS``):
- ``entropy``: opener ``salet``; then the guess (from all 12,972 allowed words) maximising the
  entropy of the pattern distribution over the remaining candidates, ties to candidates, then
  list order; with 1-2 candidates left it guesses a candidate.
- ``frequency``: human-like: opener, then always the most frequent (wordfreq Zipf) consistent
  candidate; averaged over the openers crane, adieu, slate, audio, stare.
- ``random``: uniformly random consistent candidate each turn; the distribution is averaged over
  ``RANDOM_SEEDS`` seeds (each node's random draw is seeded by its history, so a single word's
  path reproduces the whole-tree result).

Each solver gives, per target word, a 7-bucket distribution (solved in 1..6 tries, 7 = not
solved within 6) and the mean tries (a failure counts as 7). A word outside the answer list is
simulated with the candidate set = answers + that word (only its own path through the tree).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .feedback import ALL_GREEN, feedback_codes, feedback_table, normalize_word
from .io import atomic_path
from .paths import DATA_DIR
from .wordlists import allowed_index, answer_index, load_allowed, load_answers, wordlist_checksum, zipf_frequencies

SOLVER_VERSION = "1"
SOLVERS = ("entropy", "frequency", "random")
ENTROPY_OPENER = "salet"
FREQUENCY_OPENERS = ("crane", "adieu", "slate", "audio", "stare")
RANDOM_SEEDS = tuple(range(16))
MAX_TRIES = 6
N_BUCKETS = MAX_TRIES + 1
_CLOGC_MAX = 2400  # c*log2(c) lookup covers any candidate-set size (answers + 1 extra word)
_CLOGC = np.zeros(_CLOGC_MAX + 1)
_CLOGC[1:] = np.arange(1, _CLOGC_MAX + 1) * np.log2(np.arange(1, _CLOGC_MAX + 1))


@dataclass(frozen=True)
class Universe:
    """A game set-up: guessable words, candidate answers, their pattern table and frequencies."""

    F: np.ndarray  # (n_guesses, n_candidates) uint8 pattern codes
    cand_guess: np.ndarray  # (n_candidates,) row of F of each candidate word
    is_candidate_row: np.ndarray  # (n_guesses,) bool
    cand_zipf: np.ndarray  # (n_candidates,) wordfreq Zipf of each candidate
    guess_index: dict  # word -> row of F


@lru_cache(maxsize=1)
def answers_universe() -> Universe:
    """The standard game: all allowed guesses, the 2,315 answers as candidates."""
    answers, allowed = load_answers(), load_allowed()
    is_cand = np.zeros(len(allowed), dtype=bool)
    is_cand[: len(answers)] = True
    return Universe(feedback_table(), np.arange(len(answers)), is_cand, zipf_frequencies(answers), allowed_index())


@lru_cache(maxsize=4)
def extended_universe(word: str) -> tuple[Universe, int]:
    """The game whose candidates are the answers plus ``word`` (a non-answer); returns it and the word's index."""
    base = answers_universe()
    answers, allowed = load_answers(), load_allowed()
    column = feedback_codes(allowed, [word])  # every allowed guess against the new candidate
    F = np.hstack([base.F, column])
    guess_index = base.guess_index
    if word in guess_index:
        row = guess_index[word]
    else:  # not a valid guess in the lists, but once it is the last candidate the player types it
        F = np.vstack([F, feedback_codes([word], answers + [word])])
        row = F.shape[0] - 1
        guess_index = {**guess_index, word: row}
    is_cand = np.zeros(F.shape[0], dtype=bool)
    is_cand[base.cand_guess] = True
    is_cand[row] = True
    universe = Universe(F, np.append(base.cand_guess, row), is_cand,
                        np.append(base.cand_zipf, zipf_frequencies([word])), guess_index)
    return universe, len(answers)


def _sum_c_log_c(codes: np.ndarray) -> np.ndarray:
    """For each row of pattern codes (G, m): sum over patterns of count*log2(count) (lower = higher entropy)."""
    G, m = codes.shape
    if m >= 48:  # dense counting is cheaper for big candidate sets
        counts = np.bincount((np.arange(G, dtype=np.int64)[:, None] * 243 + codes).ravel(), minlength=G * 243)
        return _CLOGC[counts].reshape(G, 243).sum(axis=1)
    S = np.sort(codes, axis=1)
    new_run = np.ones((G, m), dtype=bool)
    new_run[:, 1:] = S[:, 1:] != S[:, :-1]
    starts = np.flatnonzero(new_run.ravel())
    lengths = np.diff(np.append(starts, G * m))
    return np.bincount(starts // m, weights=_CLOGC[lengths], minlength=G)


def _entropy_policy(opener: str) -> Callable:
    def choose(u: Universe, cand: np.ndarray, depth: int, rng_key: tuple) -> int:
        if depth == 1:
            return u.guess_index[opener]
        if len(cand) <= 2:
            return int(u.cand_guess[cand[0]])
        score = np.round(_sum_c_log_c(u.F[:, cand]), 9)
        # lexsort: last key first -> minimise score, then prefer candidates, then list order
        return int(np.lexsort((np.arange(len(score)), ~u.is_candidate_row, score))[0])
    return choose


def _frequency_policy(opener: str) -> Callable:
    def choose(u: Universe, cand: np.ndarray, depth: int, rng_key: tuple) -> int:
        if depth == 1:
            return u.guess_index[opener]
        return int(u.cand_guess[cand[np.argmax(u.cand_zipf[cand])]])  # argmax: first = list order on ties
    return choose


def _random_policy(seed: int) -> Callable:
    def choose(u: Universe, cand: np.ndarray, depth: int, rng_key: tuple) -> int:
        rng = np.random.default_rng([seed, *rng_key])
        return int(u.cand_guess[cand[rng.integers(len(cand))]])
    return choose


def simulate_tries(universe: Universe, policy: Callable, targets: np.ndarray | None = None) -> np.ndarray:
    """Tries (1..6, 7 = failed) for each candidate index in ``targets`` (default: all), one tree walk."""
    n = universe.F.shape[1]
    targets = np.arange(n) if targets is None else np.asarray(targets, dtype=np.int64)
    wanted = np.zeros(n, dtype=bool)
    wanted[targets] = True
    tries = np.full(n, N_BUCKETS, dtype=np.int64)
    stack = [(np.arange(n), 1, ())]
    while stack:
        cand, depth, history = stack.pop()
        g = policy(universe, cand, depth, (depth, *history))
        codes = universe.F[g, cand]
        solved = codes == ALL_GREEN
        tries[cand[solved]] = depth
        if depth == MAX_TRIES:
            continue
        rest, rest_codes = cand[~solved], codes[~solved]
        order = np.argsort(rest_codes, kind="stable")
        rest, rest_codes = rest[order], rest_codes[order]
        cuts = np.flatnonzero(np.diff(rest_codes)) + 1
        for group, code in zip(np.split(rest, cuts), rest_codes[np.r_[0, cuts]] if len(rest) else []):
            if wanted[group].any():
                stack.append((group, depth + 1, (*history, int(g), int(code))))
    return tries[targets]


def solver_policies(solver: str) -> list[Callable]:
    """The policies averaged for ``solver`` (one per opener or seed)."""
    if solver == "entropy":
        return [_entropy_policy(ENTROPY_OPENER)]
    if solver == "frequency":
        return [_frequency_policy(o) for o in FREQUENCY_OPENERS]
    if solver == "random":
        return [_random_policy(s) for s in RANDOM_SEEDS]
    raise ValueError(f"unknown solver {solver!r}; choose from {SOLVERS}")


def _distribution(tries: np.ndarray) -> np.ndarray:
    """(n_policies, n) tries -> (n, 7) share of policies solving in 1..6 / failing."""
    onehot = tries[:, :, None] == np.arange(1, N_BUCKETS + 1)[None, None, :]
    return onehot.mean(axis=0)


def cache_path():
    """Cache of the answers' solver results, keyed by word lists and solver code version."""
    key = hashlib.sha256(repr((SOLVER_VERSION, ENTROPY_OPENER, FREQUENCY_OPENERS, RANDOM_SEEDS)).encode()).hexdigest()[:8]
    return DATA_DIR / f"solver_results_{wordlist_checksum()}_v{SOLVER_VERSION}_{key}.npz"


def simulate_answers(solver: str) -> np.ndarray:
    """(2315, 7) distribution of ``solver`` over all answers, from scratch (no cache)."""
    u = answers_universe()
    return _distribution(np.stack([simulate_tries(u, p) for p in solver_policies(solver)]))


@lru_cache(maxsize=1)
def answer_results() -> dict[str, np.ndarray]:
    """{solver: (2315, 7) distribution} for all answers; cached under data/."""
    path = cache_path()
    if path.exists():
        try:
            with np.load(path) as z:
                res = {s: z[s] for s in SOLVERS}
            if all(r.shape == (len(load_answers()), N_BUCKETS) for r in res.values()):
                return res
        except (OSError, KeyError, ValueError):
            pass
    res = {s: simulate_answers(s) for s in SOLVERS}
    with atomic_path(path) as tmp:  # unique temp name + rename: safe with concurrent builders
        np.savez(tmp, **res)
    return res


def simulate_word(word: str, solver: str) -> np.ndarray:
    """(7,) distribution of ``solver`` for any five-letter word (answers + word as candidates if it is not an answer)."""
    word = normalize_word(word)
    if word in answer_index():
        u, target = answers_universe(), answer_index()[word]
    else:
        u, target = extended_universe(word)
    tries = np.stack([simulate_tries(u, p, [target]) for p in solver_policies(solver)])
    return _distribution(tries)[0]


def solver_distributions(words: Sequence[str]) -> dict[str, np.ndarray]:
    """{solver: (n, 7) distribution} for any words: answers from the cache, others simulated one path each."""
    words = [normalize_word(w) for w in words]
    cached = answer_results()
    idx = answer_index()
    out = {}
    for s in SOLVERS:
        rows = [cached[s][idx[w]] if w in idx else simulate_word(w, s) for w in words]
        out[s] = np.array(rows, dtype=np.float64).reshape(len(words), N_BUCKETS)
    return out


def mean_tries(distribution: np.ndarray) -> np.ndarray:
    """Expected tries of (n, 7) distributions (a failure counts as 7)."""
    return np.asarray(distribution) @ np.arange(1, N_BUCKETS + 1)
