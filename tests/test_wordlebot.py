"""The WordleBot loader on the shipped file and on broken copies."""

import numpy as np
import pandas as pd
import pytest

from wordle_moe.data import DataError
from wordle_moe.paths import TRY_COLUMNS
from wordle_moe.wordlebot import WORDLEBOT_DATA, load_wordlebot_data, wordlebot_observations


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(WORDLEBOT_DATA, dtype=str)


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


def _set(row: int, column: str, value: str):
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df.loc[row, column] = value
        return df
    return edit


def _no_hard_games(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[0, [f"hard_{b}" for b in (1, 2, 3, 4, 5, 6, "X")]] = "0"
    return df


# (edit of the first five data rows, the error it must raise); file row numbers count the header as row 1
BROKEN_COPIES = {
    "missing column": (lambda df: df.drop(columns="hard_3"), r"wordlebot.csv, row 1, column 'hard_3': missing column"),
    "negative count": (_set(2, "normal_5", "-3"), r"row 4, column 'normal_5': negative count -3"),
    "non-numeric count": (_set(1, "hard_2", "12.5"), r"row 3, column 'hard_2': expected an integer"),
    "duplicated day": (lambda df: pd.concat([df, df.iloc[[1]]]),
                       r"row 7, column 'contest_number': duplicated day 649 \(first at row 3\)"),
    "shifted date": (_set(3, "date", "2023-04-02"), r"row 5, column 'date': 2023-04-02 does not match contest 651"),
    "malformed date": (_set(0, "date", "29/03/2023"), r"row 2, column 'date': expected a date"),
    "not a word": (_set(0, "word", "bezzt"), r"row 2, column 'word'"),
    "day without games": (_no_hard_games, r"row 2, column 'hard_1..hard_X': no hard-mode games"),
}


@pytest.mark.parametrize("defect", BROKEN_COPIES)
def test_broken_copy_raises_naming_file_row_and_column(tmp_path, raw, defect):
    edit, message = BROKEN_COPIES[defect]
    path = tmp_path / "wordlebot.csv"
    edit(raw.head(5)).to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
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
