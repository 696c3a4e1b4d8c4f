"""The WordleBot loader on the shipped file and on broken copies, and the multi-source dataset built on it."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wordle_moe import evaluation
from wordle_moe.data import DataError
from wordle_moe.dataset import POPULATION_FEATURES, default_population, feature_rows, load_dataset, training_date_range
from wordle_moe.paths import TRY_COLUMNS
from wordle_moe.wordlebot import WORDLEBOT_DATA, load_wordlebot_data, wordlebot_observations


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(WORDLEBOT_DATA, dtype=str)


def broken_copy(tmp_path: Path, raw: pd.DataFrame, n: int = 5) -> tuple[pd.DataFrame, Path]:
    return raw.head(n).copy(), tmp_path / "wordlebot.csv"


def test_shipped_file_is_valid():
    df = load_wordlebot_data()
    assert len(df) == 644
    assert df["date"].min() == pd.Timestamp("2023-03-29") and df["date"].max() == pd.Timestamp("2024-12-31")
    assert df["contest_number"].tolist() == list(range(648, 1292))
    assert (df["date"] == pd.Timestamp("2021-06-19") + pd.to_timedelta(df["contest_number"], unit="D")).all()
    # first row of the file, by hand
    assert df.loc[0, "word"] == "beset" and df.loc[0, "normal_4"] == 130921 and df.loc[0, "hard_X"] == 65
    assert df.loc[0, "n_normal"] == 427 + 3893 + 59062 + 130921 + 71632 + 14714 + 1527


def test_observations_are_shares_per_mode():
    df = load_wordlebot_data()
    obs = wordlebot_observations(df, ("normal", "hard"))
    assert len(obs) == 2 * 644
    assert obs["population"].value_counts().to_dict() == {"wordlebot": 644, "wordlebot_hard": 644}
    np.testing.assert_allclose(obs[TRY_COLUMNS].sum(axis=1), 100.0)
    beset = obs[(obs["word"] == "beset") & (obs["population"] == "wordlebot_hard")].iloc[0]
    assert beset["try_3"] == pytest.approx(100 * 28738 / 68846)
    mean_tries = (obs.loc[obs["population"] == "wordlebot", TRY_COLUMNS].to_numpy() / 100 @ np.arange(1, 8)).mean()
    assert mean_tries == pytest.approx(3.94, abs=0.01)  # the documented WordleBot mean
    with pytest.raises(ValueError, match="modes"):
        wordlebot_observations(df, ("easy",))


def test_missing_column(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    df.drop(columns="hard_3").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"wordlebot.csv, row 1, column 'hard_3': missing column"):
        load_wordlebot_data(path)


def test_negative_count(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    df.loc[2, "normal_5"] = "-3"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 4, column 'normal_5': negative count -3"):
        load_wordlebot_data(path)


def test_non_numeric_count(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    df.loc[1, "hard_2"] = "12.5"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 3, column 'hard_2': expected an integer"):
        load_wordlebot_data(path)


def test_duplicated_day(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    pd.concat([df, df.iloc[[1]]]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 7, column 'contest_number': duplicated day 649 \(first at row 3\)"):
        load_wordlebot_data(path)


def test_shifted_date(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    df.loc[3, "date"] = "2023-04-02"  # contest 651 is 2023-04-01
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 5, column 'date': 2023-04-02 does not match contest 651"):
        load_wordlebot_data(path)


def test_bad_date_and_word(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    df.loc[0, "date"] = "29/03/2023"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 2, column 'date': expected a date"):
        load_wordlebot_data(path)
    df, path = broken_copy(tmp_path, raw)
    df.loc[0, "word"] = "bezzt"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 2, column 'word'"):
        load_wordlebot_data(path)


def test_day_without_games(tmp_path, raw):
    df, path = broken_copy(tmp_path, raw)
    for c in ("hard_1", "hard_2", "hard_3", "hard_4", "hard_5", "hard_6", "hard_X"):
        df.loc[0, c] = "0"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 2, column 'hard_1..hard_X': no hard-mode games"):
        load_wordlebot_data(path)


def test_empty_and_missing_file(tmp_path, raw):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_wordlebot_data(path)
    path.write_text(",".join(raw.columns) + "\n")
    with pytest.raises(DataError, match="no data rows"):
        load_wordlebot_data(path)
    with pytest.raises(DataError, match="file not found"):
        load_wordlebot_data(tmp_path / "nope.csv")


# ---------------------------------------------------------------- the multi-source dataset

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
