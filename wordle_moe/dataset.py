"""The modelling table: cleaned observations joined with their word features.

This is the one place where targets (from ``data``) meet inputs (from ``features``); the
features themselves are computed without ever seeing the targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from wordle_moe.data import load_wordle_data, target_matrix
from wordle_moe.features import feature_columns, load_feature_table


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


def load_dataset(path=None, feature_names: Sequence[str] | None = None) -> WordleDataset:
    """Load, clean and featurise the observed words (the feature table is cached in data/)."""
    frame = load_wordle_data(path).reset_index(drop=True)
    table = load_feature_table()
    keyed = table.assign(date=pd.to_datetime(table["date"])).set_index(["word", "date"])
    rows = keyed.reindex(pd.MultiIndex.from_frame(frame[["word", "date"]]))
    if rows.isna().all(axis=1).any():
        missing = rows.index[rows.isna().all(axis=1)].tolist()[:5]
        raise ValueError(f"feature table has no row for {missing}; rebuild it with load_feature_table(rebuild=True)")
    features = rows.reset_index()
    names = list(feature_names) if feature_names is not None else feature_columns(features)
    return WordleDataset(
        frame=frame,
        features=features,
        feature_names=names,
        X=features[names].to_numpy(dtype=float),
        P=target_matrix(frame),
        n_reported=frame["n_reported"].to_numpy(dtype=float),
    )
