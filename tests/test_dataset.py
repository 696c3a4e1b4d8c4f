"""The multi-source dataset: MCM days unchanged, population inputs from the source only, protocol C split,
feature rows for new words with the date clamped to the training days."""
import numpy as np
import pandas as pd
import pytest

from wordle_moe import evaluation
from wordle_moe.dataset import (
    POPULATION_FEATURES,
    default_population,
    feature_rows,
    load_dataset,
    training_date_range,
)
from wordle_moe.wordlebot import WORDLEBOT_DATA


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(WORDLEBOT_DATA, dtype=str)


@pytest.fixture(scope="module")
def both():
    return load_dataset(sources=("mcm", "wordlebot", "wordlebot_hard"))


def test_mcm_dataset_unchanged_by_sources(both):
    mcm = load_dataset()
    assert POPULATION_FEATURES[0] not in mcm.feature_names and "population" not in mcm.frame
    assert both.feature_names == [*mcm.feature_names, *POPULATION_FEATURES]
    np.testing.assert_array_equal(both.X[:359, :-2], mcm.X)
    np.testing.assert_array_equal(both.P[:359], mcm.P)


def test_population_inputs_come_from_the_source_only(both):
    pop = both.population
    assert (pop == "mcm").sum() == 359 and (pop == "wordlebot").sum() == 644 and (pop == "wordlebot_hard").sum() == 644
    codes = both.features[POPULATION_FEATURES].to_numpy()
    np.testing.assert_array_equal(codes[pop == "mcm"], 0)
    np.testing.assert_array_equal(codes[pop == "wordlebot"], [[1, 0]] * 644)
    np.testing.assert_array_equal(codes[pop == "wordlebot_hard"], 1)
    np.testing.assert_allclose(both.P.sum(axis=1), 1.0)
    # the same day's normal and hard rows have identical word features (only the population differs)
    normal, hard = both.X[pop == "wordlebot"], both.X[pop == "wordlebot_hard"]
    np.testing.assert_array_equal(normal[:, :-2], hard[:, :-2])
    # no feature is a count: shuffling the counts leaves the inputs alone (counts only reach n_reported)
    assert "n_reported" not in both.feature_names and "n_hard_mode" not in both.feature_names


def test_protocol_c_split(both):
    tr, te = evaluation.protocol_c_split(both.dates, both.population)
    dates = pd.to_datetime(both.dates)
    assert len(te) == 184 and (both.population[te] == "wordlebot").all()
    assert dates.iloc[te].min() == pd.Timestamp("2024-07-01") and dates.iloc[te].max() == pd.Timestamp("2024-12-31")
    assert not set(tr) & set(te)
    assert dates.iloc[tr].max() < pd.Timestamp("2024-07-01")  # not even the hard-mode rows of test days train
    assert (both.population[tr] == "mcm").sum() == 359
    assert len(tr) == 359 + 2 * (644 - 184)
    [(fold, tr2, te2)] = evaluation.protocol_splits("C", len(both.X), both.dates, populations=both.population)
    np.testing.assert_array_equal(tr, tr2)
    with pytest.raises(ValueError, match="populations"):
        evaluation.protocol_splits("C", len(both.X), both.dates)


def test_feature_rows_clamp_the_date_and_add_the_population(both):
    first, last = training_date_range(both)
    assert (first, last) == (pd.Timestamp("2022-01-07"), pd.Timestamp("2024-12-31"))
    rows = feature_rows(["crane", "eerie", "slate"], ["2026-11-28", "2023-03-01", "2021-01-01"], both.feature_names,
                        population="wordlebot", date_range=(first, last))
    assert rows["date_clamped"].tolist() == [1.0, 0.0, 1.0]
    assert rows["days_since_start"].tolist() == [(last - first).days, (pd.Timestamp("2023-03-01") - first).days, 0.0]
    assert rows["date"].iloc[0] == pd.Timestamp("2026-11-28") and rows["date_used"].iloc[0] == last
    np.testing.assert_array_equal(rows[POPULATION_FEATURES].to_numpy(), [[1, 0]] * 3)
    assert rows[both.feature_names].shape == (3, len(both.feature_names))
    mcm = feature_rows("crane", "2022-05-01", both.feature_names, population="mcm")
    assert mcm[POPULATION_FEATURES].to_numpy().tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="population"):
        feature_rows("crane", "2022-05-01", both.feature_names, population="twitter")
    assert default_population("2026-11-28") == "wordlebot" and default_population("2022-06-01") == "mcm"
    assert default_population(None) == "mcm"


def test_no_input_depends_on_the_wordlebot_counts(tmp_path, raw, both):
    """Shuffling every count column across days changes the targets and weights, never an input."""
    shuffled = raw.copy()
    rng = np.random.default_rng(0)
    counts = [c for c in raw.columns if c.startswith(("normal_", "hard_"))]
    shuffled[counts] = shuffled[counts].to_numpy()[rng.permutation(len(raw))]
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    other = load_dataset(sources=("mcm", "wordlebot", "wordlebot_hard"), wordlebot_path=path)
    np.testing.assert_array_equal(other.X, both.X)
    assert not np.allclose(other.P, both.P) and not np.allclose(other.n_reported, both.n_reported)
