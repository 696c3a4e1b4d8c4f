"""Load the New York Times WordleBot daily result counts (2023-03-29 .. 2024-12-31) and validate them.

The file (``data/wordlebot_2023_2024.csv``, provenance and licence in ``data/README.md``) has one row a
day: date, contest_number, word, then COUNTS of games finished in 1..6 tries or failed, for normal mode
(``normal_1`` .. ``normal_X``) and hard mode (``hard_1`` .. ``hard_X``). It is another population than
the MCM file (WordleBot users, not results shared on Twitter), so ``wordlebot_observations`` returns
it in the MCM table's shape with a ``population`` column: ``wordlebot`` (normal mode) and
``wordlebot_hard`` (hard mode). Nothing is cleaned here: the file has no known defect, so anything
malformed stops with ``DataError`` naming file, row (line number, header = 1) and column.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .data import FIRST_CONTEST_DATE, DataError, _where
from .paths import DATA_DIR, TRY_COLUMNS
from .wordlists import allowed_index

WORDLEBOT_DATA = DATA_DIR / "wordlebot_2023_2024.csv"
MODES = ("normal", "hard")
BUCKET_SUFFIXES = ("1", "2", "3", "4", "5", "6", "X")
COUNT_COLUMNS = {mode: [f"{mode}_{b}" for b in BUCKET_SUFFIXES] for mode in MODES}
COLUMNS = ["date", "contest_number", "word", *COUNT_COLUMNS["normal"], *COUNT_COLUMNS["hard"]]
POPULATIONS = {"normal": "wordlebot", "hard": "wordlebot_hard"}  # mode -> population name


def _read_table(path: Path) -> pd.DataFrame:
    """Every cell as a string (nothing inferred), or DataError for a missing, empty or unreadable file."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable csv file ({exc})") from None
    canonical = {c.lower(): c for c in COLUMNS}  # header matched case-insensitively
    header = [canonical.get(str(c).strip().lower(), str(c).strip()) for c in table.columns]
    table.columns = header
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise DataError(f"{_where(path, 1, duplicated[0])}: column appears twice in the header")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{_where(path, 1, missing[0])}: missing column (missing {missing})")
    if table.empty:
        raise DataError(f"{path}: empty file (a header but no data rows)")
    return table[COLUMNS]


def _integer_column(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """The column as int64; DataError at the first cell that is not a non-negative integer."""
    raw = table[column].str.strip()
    number = pd.to_numeric(raw, errors="coerce")
    bad = number.isna() | (number != np.floor(number))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{_where(path, i + 2, column)}: expected an integer, got {table[column].iloc[i]!r}")
    negative = number < 0
    if negative.any():
        i = int(np.flatnonzero(negative.to_numpy())[0])
        raise DataError(f"{_where(path, i + 2, column)}: negative count {int(number.iloc[i])}")
    return number.to_numpy(dtype=np.int64)


def _dates(table: pd.DataFrame, path: Path) -> pd.Series:
    dates = pd.to_datetime(table["date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{_where(path, i + 2, 'date')}: expected a date YYYY-MM-DD, got {table['date'].iloc[i]!r}")
    return dates.astype("datetime64[ns]")


def _words(table: pd.DataFrame, path: Path) -> pd.Series:
    """Lower-case words; each must be a valid Wordle guess (later answers are editorial additions from that list)."""
    words = table["word"].str.strip().str.lower()
    valid = allowed_index()
    for i, w in enumerate(words):
        if w not in valid:
            raise DataError(f"{_where(path, i + 2, 'word')}: {table['word'].iloc[i]!r} is not a five-letter word of "
                            f"the allowed-guess list")
    return words


def load_wordlebot_data(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The validated WordleBot table, sorted by contest: date, contest_number, word, then per mode its 7 counts
    and their sum n_<mode>.

    Checks: the header has every column; counts are non-negative integers with at least one game per mode
    and day; date = 2021-06-19 + contest number; no day (date or contest) appears twice.
    """
    path = Path(path) if path is not None else WORDLEBOT_DATA
    table = _read_table(path)
    out = pd.DataFrame({"date": _dates(table, path),
                        "contest_number": _integer_column(table, "contest_number", path),
                        "word": _words(table, path)})
    for mode in MODES:
        for c in COUNT_COLUMNS[mode]:
            out[c] = _integer_column(table, c, path)
        out[f"n_{mode}"] = out[COUNT_COLUMNS[mode]].sum(axis=1)
        empty = np.flatnonzero(out[f"n_{mode}"].to_numpy() == 0)
        if len(empty):
            raise DataError(f"{_where(path, int(empty[0]) + 2, f'{mode}_1..{mode}_X')}: no {mode}-mode games that day")
    expected = FIRST_CONTEST_DATE + pd.to_timedelta(out["contest_number"], unit="D")
    off = np.flatnonzero((out["date"] != expected).to_numpy())
    if len(off):
        i = int(off[0])
        raise DataError(f"{_where(path, i + 2, 'date')}: {out['date'].iloc[i].date()} does not match contest "
                        f"{out['contest_number'].iloc[i]} (expected {expected.iloc[i].date()})")
    for column in ("contest_number", "date"):
        dup = np.flatnonzero(out[column].duplicated().to_numpy())
        if len(dup):
            i = int(dup[0])
            first = int(np.flatnonzero((out[column] == out[column].iloc[i]).to_numpy())[0])
            raise DataError(f"{_where(path, i + 2, column)}: duplicated day {out[column].iloc[i]} "
                            f"(first at row {first + 2})")
    out = out.sort_values("contest_number", kind="stable").reset_index(drop=True)
    out.attrs["source"] = str(path)
    return out


def wordlebot_observations(table: pd.DataFrame, modes: tuple[str, ...] = ("normal",)) -> pd.DataFrame:
    """The table in the MCM frame's shape, one row per (day, mode): date, contest_number, word, population,
    n_reported (games of that mode), n_hard_mode, and try_1 .. try_7_or_more as percents of that mode's games."""
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes!r}")
    frames = []
    for mode in modes:
        counts = table[COUNT_COLUMNS[mode]].to_numpy(dtype=np.float64)
        n = counts.sum(axis=1)
        frame = table[["date", "contest_number", "word"]].copy()
        frame["population"] = POPULATIONS[mode]
        frame["n_reported"] = n.astype(np.int64)
        frame["n_hard_mode"] = n.astype(np.int64) if mode == "hard" else 0
        frame[TRY_COLUMNS] = 100.0 * counts / n[:, None]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
