"""Word features for any five-letter word: computed from the word, its date, the word lists
and packaged resources only — never from the target columns or same-day counts.

Columns of ``build_features``: ``word``, ``date`` (NaT when not given), then the numeric features:
- KEY_FEATURES: ``Zipf-value`` (wordfreq ``zipf_frequency(word, 'en')``), ``letter_entropy``
  (bits, Shannon entropy of the word's letter counts), ``feedback_entropy`` (bits, of the pattern
  distribution when the word is guessed against all 2,315 answers), ``scrabble_score``,
  ``hamming_neighbors`` (answer or allowed words differing in exactly one position, itself
  excluded), ``semantic_distance`` (see ``embeddings``).
- ``repeated_letters`` (5 - distinct letters), ``vowel_count`` (a e i o u), ``letter_freq_mean/min``
  (share of each letter among all answer-list letters), ``pos_letter_freq_mean/min`` (share of
  answers with that letter at that position), ``rare_letters`` (letters whose answer-list share is
  below RARE_LETTER_SHARE = 2%: j q x z v w k f), ``in_answer_list`` (0/1).
- solver simulations (``solvers``): ``solver_<name>_mean_tries`` and ``solver_<name>_share_<b>``
  for b in 1..6 and 7_or_more, for the entropy, frequency and random solvers. (The frequency
  solver's openers crane/slate/stare are answers, so those words get a 1-try share of 0.2.)
- ``days_since_start``: days since 2022-01-07 (the first MCM day). When no date is given the
  feature is 0 (the word is treated as played on the first day) so the row stays NaN-free; the
  ``date`` column stays NaT so the substitution is visible.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from .embeddings import EMBEDDING_VERSION, semantic_distance
from .feedback import FEEDBACK_VERSION, encode_words, feedback_codes, feedback_table, normalize_word, pattern_entropy
from .io import build_lock, write_csv
from .paths import FEATURES_CSV
from .solvers import SOLVER_VERSION, SOLVERS, mean_tries, solver_distributions
from .wordlists import allowed_index, answer_index, load_allowed, load_answers, zipf_frequencies

# Bumped with any change of a feature's definition; includes the versions of the stages it relies on.
FEATURE_VERSION = f"f1.fb{FEEDBACK_VERSION}.s{SOLVER_VERSION}.e{EMBEDDING_VERSION}"
KEY_FEATURES = ["Zipf-value", "letter_entropy", "feedback_entropy", "scrabble_score",
                "hamming_neighbors", "semantic_distance"]
START_DATE = pd.Timestamp("2022-01-07")
EERIE_ROW = ("eerie", pd.Timestamp("2023-03-01"))
VOWELS = frozenset("aeiou")
RARE_LETTER_SHARE = 0.02
SCRABBLE = {**dict.fromkeys("aeilnorstu", 1), **dict.fromkeys("dg", 2), **dict.fromkeys("bcmp", 3),
            **dict.fromkeys("fhvwy", 4), "k": 5, **dict.fromkeys("jx", 8), **dict.fromkeys("qz", 10)}
BUCKET_SUFFIXES = ["1", "2", "3", "4", "5", "6", "7_or_more"]
NON_FEATURE_COLUMNS = ("word", "date", "feature_version")


def letter_entropy(word: str) -> float:
    """Shannon entropy (bits) of the word's letter counts, e.g. 'eerie' (3 e, r, i) -> 1.371."""
    p = np.array(list(Counter(word).values()), dtype=np.float64) / len(word)
    return float(-(p * np.log2(p)).sum())


@lru_cache(maxsize=1)
def _answer_letter_stats() -> tuple[np.ndarray, np.ndarray]:
    """(26,) share of each letter among answer letters, and (5, 26) share of answers with letter at position."""
    A = encode_words(load_answers())
    overall = np.bincount(A.ravel(), minlength=26) / A.size
    positional = np.stack([np.bincount(A[:, i], minlength=26) / len(A) for i in range(5)])
    return overall, positional


def feedback_entropies(words: Sequence[str]) -> np.ndarray:
    """Entropy (bits) of each word's pattern distribution over all answers (table rows for valid guesses)."""
    idx = allowed_index()
    table = feedback_table()
    rows = np.empty((len(words), table.shape[1]), dtype=np.uint8)
    known = [i for i, w in enumerate(words) if w in idx]
    rows[known] = table[[idx[words[i]] for i in known]]
    new = [i for i, w in enumerate(words) if w not in idx]
    if new:
        rows[new] = feedback_codes([words[i] for i in new], load_answers())
    return pattern_entropy(rows)


@lru_cache(maxsize=1)
def _wildcard_keys() -> list[tuple[np.ndarray, np.ndarray]]:
    """For each position i: sorted unique keys of all valid words with letter i removed, and their counts."""
    W = encode_words(load_allowed()).astype(np.int64)
    return [np.unique(_key_without(W, i), return_counts=True) for i in range(5)]


def _key_without(W: np.ndarray, i: int) -> np.ndarray:
    """Base-26 integer of the four letters other than position i."""
    keep = [j for j in range(5) if j != i]
    return W[:, keep] @ (26 ** np.arange(4, dtype=np.int64))


def hamming_neighbors(words: Sequence[str]) -> np.ndarray:
    """Number of answer/allowed words differing from each word in exactly one position (itself excluded).

    Two distinct words differ in exactly one position i iff they agree everywhere but i, so the
    count is sum_i (valid words sharing the 4-letter key without position i) minus 5 if the word
    itself is valid (it shares all five keys).
    """
    Q = encode_words(words).astype(np.int64)
    total = np.zeros(len(Q), dtype=np.int64)
    for i, (keys, counts) in enumerate(_wildcard_keys()):
        qk = _key_without(Q, i)
        pos = np.clip(np.searchsorted(keys, qk), 0, len(keys) - 1)
        total += np.where(keys[pos] == qk, counts[pos], 0)
    valid = np.array([w in allowed_index() for w in words])
    return total - 5 * valid


def _normalize_dates(dates, n: int) -> pd.Series:
    if dates is None:
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    if not pd.api.types.is_list_like(dates):  # one date for every word
        dates = [dates] * n
    dates = pd.to_datetime(pd.Series(list(dates)), errors="raise").dt.normalize().astype("datetime64[ns]")
    if len(dates) != n:
        raise ValueError(f"got {len(dates)} dates for {n} words")
    return dates.reset_index(drop=True)


def build_features(words: Iterable[str] | str, dates=None) -> pd.DataFrame:
    """One feature row per word (any five ASCII letters, case-insensitive); see the module docstring."""
    if isinstance(words, str):
        words = [words]
    words = [normalize_word(w) for w in words]
    dates = _normalize_dates(dates, len(words))
    overall, positional = _answer_letter_stats()
    E = encode_words(words)
    letter_share = overall[E] if len(words) else np.zeros((0, 5))
    pos_share = positional[np.arange(5)[None, :], E] if len(words) else np.zeros((0, 5))
    out = pd.DataFrame({"word": pd.Series(words, dtype=str), "date": dates})
    out["Zipf-value"] = zipf_frequencies(words)
    out["letter_entropy"] = [letter_entropy(w) for w in words]
    out["feedback_entropy"] = feedback_entropies(words)
    out["scrabble_score"] = [sum(SCRABBLE[c] for c in w) for w in words]
    out["hamming_neighbors"] = hamming_neighbors(words)
    out["semantic_distance"] = semantic_distance(words) if words else np.zeros(0)
    out["repeated_letters"] = [5 - len(set(w)) for w in words]
    out["vowel_count"] = [sum(c in VOWELS for c in w) for w in words]
    out["letter_freq_mean"] = letter_share.mean(axis=1)
    out["letter_freq_min"] = letter_share.min(axis=1) if len(words) else []
    out["pos_letter_freq_mean"] = pos_share.mean(axis=1)
    out["pos_letter_freq_min"] = pos_share.min(axis=1) if len(words) else []
    out["rare_letters"] = (letter_share < RARE_LETTER_SHARE).sum(axis=1)
    out["in_answer_list"] = [int(w in answer_index()) for w in words]
    dists = solver_distributions(words)
    for s in SOLVERS:
        out[f"solver_{s}_mean_tries"] = mean_tries(dists[s])
        for b, suffix in enumerate(BUCKET_SUFFIXES):
            out[f"solver_{s}_share_{suffix}"] = dists[s][:, b]
    days = (dates - START_DATE).dt.days
    out["days_since_start"] = days.fillna(0).astype(np.float64)
    numeric = feature_columns(out)
    out[numeric] = out[numeric].astype(np.float64)  # one dtype for every model input, also after a CSV round trip
    return out


def feature_columns(features_df: pd.DataFrame) -> list[str]:
    """The numeric model-input columns of a feature frame (everything but word/date/version), in order."""
    return [c for c in features_df.columns
            if c not in NON_FEATURE_COLUMNS and pd.api.types.is_numeric_dtype(features_df[c])]


def build_feature_table(data: pd.DataFrame) -> pd.DataFrame:
    """Features of a cleaned data frame's (word, date) rows plus ('eerie', 2023-03-01); reads only word and date."""
    words = list(data["word"]) + [EERIE_ROW[0]]
    dates = list(pd.to_datetime(data["date"])) + [EERIE_ROW[1]]
    return build_features(words, dates)


def _read_feature_csv(path=None) -> pd.DataFrame | None:
    """The stored table (``FEATURES_CSV`` unless given) if it exists and carries the current FEATURE_VERSION, else None."""
    path = FEATURES_CSV if path is None else path
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path, parse_dates=["date"])
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if "feature_version" not in df or set(df["feature_version"].astype(str)) != {FEATURE_VERSION}:
        return None
    return df


def load_feature_table(rebuild: bool = False) -> pd.DataFrame:
    """data/features.csv (359 MCM rows + eerie on 2023-03-01), rebuilt from raw data when missing, stale or asked."""
    with build_lock(FEATURES_CSV):  # concurrent test workers build a missing table once
        df = None if rebuild else _read_feature_csv()
        if df is None:
            from .data import load_wordle_data  # data is the earlier stage; imported lazily to keep import light

            df = build_feature_table(load_wordle_data())
            df.insert(2, "feature_version", FEATURE_VERSION)
            write_csv(df, FEATURES_CSV)
            df = pd.read_csv(FEATURES_CSV, parse_dates=["date"])  # return exactly what later loads will see
    return _typed_table(df)


def _typed_table(df: pd.DataFrame) -> pd.DataFrame:
    """A stored feature table with its version column dropped and every model input as float64."""
    df["word"] = df["word"].astype(str)
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df = df.drop(columns="feature_version")
    numeric = feature_columns(df)
    df[numeric] = df[numeric].astype(np.float64)
    df.attrs["feature_version"] = FEATURE_VERSION
    return df


def load_rows_feature_table(words: Sequence[str], dates, path, rebuild: bool = False) -> pd.DataFrame:
    """Features of the given (word, date) rows, cached at ``path`` (e.g. data/features_wordlebot.csv).

    The cache is rebuilt when missing, written by another FEATURE_VERSION, not covering every requested
    row, or when asked; rows come back in the order asked. The MCM table keeps its own file
    (``load_feature_table``), so adding sources never touches or slows the MCM path.
    """
    from pathlib import Path

    path = Path(path)
    keys = pd.MultiIndex.from_arrays([pd.Series(list(words), dtype=str),
                                      _normalize_dates(dates, len(words))], names=["word", "date"])
    with build_lock(path):
        df = None if rebuild else _read_feature_csv(path)
        if df is not None:
            stored = pd.MultiIndex.from_frame(df[["word", "date"]].astype({"word": str}))
            if not keys.isin(stored).all():
                df = None  # stale: the source gained rows the cache does not cover
        if df is None:
            built = build_features(list(keys.get_level_values(0)), list(keys.get_level_values(1)))
            built = built.drop_duplicates(["word", "date"]).reset_index(drop=True)
            built.insert(2, "feature_version", FEATURE_VERSION)
            write_csv(built, path)
            df = pd.read_csv(path, parse_dates=["date"])  # return exactly what later loads will see
    df = _typed_table(df)
    out = df.set_index(["word", "date"]).loc[keys].reset_index()
    out.attrs["feature_version"] = FEATURE_VERSION
    return out
