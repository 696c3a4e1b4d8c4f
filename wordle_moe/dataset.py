"""The modelling table: cleaned observations joined with their word features.

This is the one place where targets (from ``data`` and ``wordlebot``) meet inputs (from ``features``);
the features themselves are computed without ever seeing the targets.

Sources (populations of players): ``mcm`` (the 2022 MCM file: results shared on Twitter), ``wordlebot``
(New York Times WordleBot users, normal mode, 2023-03-29 .. 2024-12-31) and ``wordlebot_hard`` (the same
days in hard mode). A dataset of more than one source gets two 0/1 inputs built from the source alone
(never from a count): ``population_wordlebot`` and ``population_hard_mode``, so the gate can route by
population. The MCM-only dataset, the default, has exactly the inputs it always had.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wordle_moe.data import load_wordle_data, target_matrix
from wordle_moe.features import build_features, feature_columns, load_feature_table, load_rows_feature_table
from wordle_moe.paths import DATA_DIR
from wordle_moe.wordlebot import load_wordlebot_data, wordlebot_observations

SOURCES = ("mcm", "wordlebot", "wordlebot_hard")
ALL_SOURCES = ("mcm", "wordlebot")  # "every source" of the forecasting model (hard mode: see README, Beyond 2022)
POPULATION_FEATURES = ["population_wordlebot", "population_hard_mode"]
POPULATION_CODES = {"mcm": (0.0, 0.0), "wordlebot": (1.0, 0.0), "wordlebot_hard": (1.0, 1.0)}
WORDLEBOT_FEATURES_CSV = DATA_DIR / "features_wordlebot.csv"
LAST_MCM_DAY = pd.Timestamp("2022-12-31")


@dataclass(frozen=True)
class WordleDataset:
    """Model inputs and targets for the observed words, row-aligned with ``frame``."""

    frame: pd.DataFrame          # cleaned data: date, contest_number, word, counts, try columns
    features: pd.DataFrame       # feature rows for the same (word, date), same order
    feature_names: list[str]
    X: np.ndarray                # (n, d) raw feature values
    P: np.ndarray                # (n, 7) observed distributions, rows sum to 1
    n_reported: np.ndarray       # (n,) reported results, for optional weighting

    @property
    def words(self) -> np.ndarray:
        return self.frame["word"].to_numpy()

    @property
    def dates(self) -> pd.Series:
        return self.frame["date"]

    @property
    def population(self) -> np.ndarray:
        """Each row's source population (``mcm``, ``wordlebot``, ``wordlebot_hard``)."""
        if "population" in self.frame:
            return self.frame["population"].to_numpy()
        return np.full(len(self.frame), "mcm", dtype=object)


def _check_sources(sources: Sequence[str] | str) -> tuple[str, ...]:
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    unknown = [x for x in sources if x not in SOURCES]
    if unknown or not sources or len(set(sources)) != len(sources):
        raise ValueError(f"sources must be distinct names from {SOURCES}, got {sources!r}")
    return sources


def population_columns(population: Sequence[str] | str, n: int | None = None) -> pd.DataFrame:
    """The 0/1 population inputs (population_wordlebot, population_hard_mode) of each row's population."""
    if isinstance(population, str):
        population = [population] * (1 if n is None else n)
    unknown = sorted(set(population) - set(POPULATION_CODES))
    if unknown:
        raise ValueError(f"unknown population {unknown[0]!r}: use one of {tuple(POPULATION_CODES)}")
    return pd.DataFrame([POPULATION_CODES[p] for p in population], columns=POPULATION_FEATURES, dtype=np.float64)


def _mcm_part(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cleaned MCM frame and its feature rows (from the cached data/features.csv)."""
    frame = load_wordle_data(path).reset_index(drop=True)
    table = load_feature_table()
    keyed = table.assign(date=pd.to_datetime(table["date"])).set_index(["word", "date"])
    rows = keyed.reindex(pd.MultiIndex.from_frame(frame[["word", "date"]]))
    if rows.isna().all(axis=1).any():
        missing = rows.index[rows.isna().all(axis=1)].tolist()[:5]
        raise ValueError(f"feature table has no row for {missing}; rebuild it with load_feature_table(rebuild=True)")
    return frame, rows.reset_index()


def _wordlebot_part(modes: tuple[str, ...], wordlebot_path=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """WordleBot rows (one per day and mode) and their feature rows (cached in data/features_wordlebot.csv)."""
    table = load_wordlebot_data(wordlebot_path)
    frame = wordlebot_observations(table, modes)
    features = load_rows_feature_table(frame["word"].tolist(), frame["date"].tolist(), WORDLEBOT_FEATURES_CSV)
    return frame, features


def load_dataset(path=None, feature_names: Sequence[str] | None = None,
                 sources: Sequence[str] | str = ("mcm",), wordlebot_path=None) -> WordleDataset:
    """Load, clean and featurise the observed days of ``sources`` (default: the MCM file only).

    With more than one source the rows are stacked in source order (MCM first), ``frame`` gains a
    ``population`` column and the inputs gain the population columns; targets are shares (rows sum to 1);
    ``n_reported`` is the number of games of the row's population that day (a sample weight only, never an input).
    """
    sources = _check_sources(sources)
    frames, features = [], []
    if "mcm" in sources:
        f, x = _mcm_part(path)
        frames.append(f.assign(population="mcm"))
        features.append(x)
    modes = tuple(m for m, src in (("normal", "wordlebot"), ("hard", "wordlebot_hard")) if src in sources)
    if modes:
        f, x = _wordlebot_part(modes, wordlebot_path)
        frames.append(f)
        features.append(x)
    if sources == ("mcm",):
        frame = frames[0].drop(columns="population")  # the MCM dataset exactly as it always was
    else:
        frame = pd.concat(frames, ignore_index=True)
        frame.attrs = dict(frames[0].attrs)  # keeps the MCM cleaning log when MCM is a source
    feats = pd.concat(features, ignore_index=True)
    if len(sources) > 1:
        feats = pd.concat([feats, population_columns(frame["population"].tolist())], axis=1)
    names = list(feature_names) if feature_names is not None else feature_columns(feats)
    return WordleDataset(
        frame=frame,
        features=feats,
        feature_names=names,
        X=feats[names].to_numpy(dtype=float),
        P=target_matrix(frame),
        n_reported=frame["n_reported"].to_numpy(dtype=float),
    )


def training_date_range(dataset: WordleDataset) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of a dataset's observations (the range inside which the time input is trusted)."""
    dates = pd.to_datetime(dataset.dates)
    return pd.Timestamp(dates.min()), pd.Timestamp(dates.max())


def default_population(date=None) -> str:
    """``wordlebot`` for a date after the last MCM day (2022-12-31), else ``mcm`` (also when no date is given)."""
    if date is None or pd.isna(pd.Timestamp(date)):
        return "mcm"
    return "wordlebot" if pd.Timestamp(date) > LAST_MCM_DAY else "mcm"


def feature_rows(words: Sequence[str] | str, dates, feature_names: Sequence[str],
                 population: str | Sequence[str] = "wordlebot", date_range: tuple | None = None) -> pd.DataFrame:
    """Feature rows for any words and dates as a model trained on ``feature_names`` expects them.

    ``date_range`` = (first, last) training day: a date outside it is clamped to the nearer end before the
    time input ``days_since_start`` is computed, so a model never extrapolates its time trend beyond the days
    it was trained on (columns ``date`` = asked, ``date_used`` = after the clamp, ``date_clamped`` 0/1).
    Population columns are added when the model has them (``population`` per row or one for all).
    """
    words = [words] if isinstance(words, str) else list(words)
    n = len(words)
    if dates is None:
        asked = pd.Series([pd.NaT] * n, dtype="datetime64[ns]")
    else:
        asked = pd.to_datetime(pd.Series(list(dates) if pd.api.types.is_list_like(dates) else [dates] * n))
        asked = asked.dt.normalize().astype("datetime64[ns]")
    if len(asked) != n:
        raise ValueError(f"got {len(asked)} dates for {n} words")
    used = asked if date_range is None else asked.clip(*(pd.Timestamp(d) for d in date_range))
    out = build_features(words, None if dates is None else list(used)).rename(columns={"date": "date_used"})
    out.insert(1, "date", asked.to_numpy())
    out.insert(3, "date_clamped", (asked.notna() & (asked != used)).astype(float).to_numpy())
    if any(c in POPULATION_FEATURES for c in feature_names):
        out.insert(1, "population", [population] * n if isinstance(population, str) else list(population))
        out = pd.concat([out, population_columns(list(out["population"]))], axis=1)
    missing = [c for c in feature_names if c not in out.columns]
    if missing:
        raise ValueError(f"cannot build model inputs {missing[:5]} for new words")
    return out

