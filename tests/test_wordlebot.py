"""The WordleBot loader on the shipped file and on broken copies."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wordle_moe.data import DataError
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
