"""Load the 2023 MCM Problem C Wordle table and clean it by explicit, logged rules.

Every change to the raw table is one row of the cleaning log (contest, column, old_value,
new_value, rule), kept in ``df.attrs["cleaning_log"]`` and returned by ``cleaning_log(df)``.
Known defects are fixed by rules keyed on the contest *and* the defective raw value, so a
source that is already corrected passes through unchanged (and unlogged). Anything the
rules do not cover and that is malformed stops with ``DataError`` naming file, row, column.
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import RAW_DATA, TRY_COLUMNS
from .wordlists import load_answers

COLUMNS = ["date", "contest_number", "word", "n_reported", "n_hard_mode", *TRY_COLUMNS]
LOG_COLUMNS = ["contest", "column", "old_value", "new_value", "rule"]
FIRST_CONTEST_DATE = pd.Timestamp("2021-06-19")  # date = this + contest number (Wordle #0 = 2021-06-19)

# Raw header text (lowercased, whitespace collapsed) -> column name. Snake-case names map to themselves.
HEADER_ALIASES = {
    "date": "date",
    "contest number": "contest_number",
    "word": "word",
    "number of reported results": "n_reported",
    "number in hard mode": "n_hard_mode",
    "1 try": "try_1",
    **{f"{k} tries": f"try_{k}" for k in range(2, 7)},
    "7 or more tries (x)": "try_7_or_more",
    "7 or more tries": "try_7_or_more",
    **{c: c for c in COLUMNS},
}

# Misspellings in the COMAP file (PROVENANCE.md): raw (already lowercased/stripped/ASCII-folded) -> answer.
WORD_TYPOS = {"rprobe": "probe", "clen": "clean", "marxh": "marsh", "tash": "trash"}

# Contest 349 (2022-06-03) reads `peach`; the published puzzle archive and the original answer
# schedule (which runs 8 entries ahead of the contest number at that point of 2022: the rows
# around it match schedule[c+8], and schedule[357] is `phase`) both give `phase`. The day's
# results were tallied from what players actually played, so the row is relabelled `phase`.
WORD_RELABELS = {(349, "peach"): ("phase", "relabel_to_published_archive_answer")}

# Order-of-magnitude typo: contest 529 has 2,569 reported results of which 2,405 hard mode,
# while neighbours have 22-26 thousand results and a 9.5-9.8% hard-mode share. Restoring the
# dropped trailing digit (25,690) gives a 9.4% hard-mode share and a neighbour-sized count;
# the hard-mode count itself is plausible and kept.
COUNT_FIXES = {(529, "n_reported", 2569): (25690, "n_reported_dropped_trailing_digit")}

# Percent rows replaced as a whole: contest -> (raw row that identifies the defect, fixed row, rule).
# nymph: a duplicated 26 shifted the last two values (sum 126); the independent tally of the day
#   (0.5, 2.0, 18.2, 43.7, 25.6, 8.6, 1.3) confirms 1,2,18,44,26,9,1.
# cynic/smear repeat aroma/patty; replaced by the independent tally of their own day, rounded to
#   integer percents half-up like every other row (cynic 0.6,1.6,10.9,32.9,33.8,17.3,2.9;
#   smear 0.6,9.2,20.5,26.0,24.0,15.8,3.9), the resulting 101 sums are normalised like the rest.
PERCENT_FIXES = {
    281: ((1, 2, 18, 44, 26, 26, 9), (1, 2, 18, 44, 26, 9, 1), "percent_row_shift_fixed_by_tally"),
    240: ((1, 6, 25, 33, 22, 11, 2), (1, 2, 11, 33, 34, 17, 3), "duplicate_of_241_replaced_by_tally"),
    414: ((0, 2, 16, 39, 29, 12, 2), (1, 9, 21, 26, 24, 16, 4), "duplicate_of_416_replaced_by_tally"),
}

# Duplicated counts that cannot be verified: kept, but logged so the decision is visible.
KEPT_DUPLICATES = {
    (240, "n_hard_mode", 10343): "duplicate_of_241_hard_mode_kept_unverifiable",
    (414, "n_reported", 36223): "duplicate_of_416_n_reported_kept_plausible",
}

PERCENT_SUM_RANGE = (98.0, 102.0)  # integer-rounded rows; normalised to 1 by target_matrix
PERCENT_SUM_HARD_LIMIT = (90.0, 110.0)  # outside this (after the fixes) the row is malformed


class DataError(ValueError):
    """Malformed input data; the message names the file, the spreadsheet row and the column."""


def _where(path: Path, row: int | None = None, column: str | None = None) -> str:
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


def _norm_header(cell) -> str:
    return re.sub(r"\s+", " ", str(cell)).strip().lower() if not _is_blank(cell) else ""


def _is_blank(cell) -> bool:
    return cell is None or (isinstance(cell, float) and np.isnan(cell)) or (isinstance(cell, str) and not cell.strip()) \
        or cell is pd.NA or cell is pd.NaT


def _read_grid(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The raw cell grid (no header interpretation) and each grid row's spreadsheet/line number (1-based)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".csv"):
        raise DataError(f"{path}: not an .xlsx or .csv file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    if suffix == ".csv":
        try:
            grid = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=False, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: empty file") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a readable csv file ({exc})") from None
        grid = grid.replace("", np.nan)
        return grid, list(range(1, len(grid) + 1))
    import openpyxl  # direct read: keeps real sheet row numbers even when leading rows are empty

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException ...
        raise DataError(f"{path}: not a readable xlsx file ({type(exc).__name__}: {exc})") from None
    try:
        ws = wb.worksheets[0]
        rows, numbers = [], []
        for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            rows.append(list(values))
            numbers.append(number)
    finally:
        wb.close()
    if not rows:
        raise DataError(f"{path}: empty file (no cells in the first sheet)")
    width = max(len(r) for r in rows)
    grid = pd.DataFrame([r + [None] * (width - len(r)) for r in rows], dtype=object)
    return grid, numbers


def _locate_header(grid: pd.DataFrame, path: Path) -> tuple[int, dict[str, int]]:
    """Find the header row (the first of the top rows naming 'date' and 'word') and map column name -> grid column."""
    for r in range(min(len(grid), 20)):
        names = [HEADER_ALIASES.get(_norm_header(v)) for v in grid.iloc[r].tolist()]
        if "date" in names and "word" in names:
            mapping: dict[str, int] = {}
            for j, name in enumerate(names):
                if name is None:
                    continue
                if name in mapping:
                    raise DataError(f"{_where(path, r + 1, name)}: column appears twice in the header")
                mapping[name] = j
            return r, mapping
    raise DataError(f"{path}: no header row naming 'Date' and 'Word' in the first 20 rows")


def _log(log: list, contest, column, old, new, rule) -> None:
    log.append({"contest": int(contest), "column": column, "old_value": str(old), "new_value": str(new), "rule": rule})


def _parse_int(value, path, row, column) -> int:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if _is_blank(value) or pd.isna(number) or float(number) != int(number):
        raise DataError(f"{_where(path, row, column)}: expected an integer, got {value!r}")
    return int(number)


def _parse_float(value, path, row, column) -> float:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if _is_blank(value) or pd.isna(number):
        raise DataError(f"{_where(path, row, column)}: expected a number (percent), got {value!r}")
    return float(number)


def _parse_date(value, path, row) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if _is_blank(value) or pd.isna(stamp):
        raise DataError(f"{_where(path, row, 'date')}: expected a date, got {value!r}")
    return stamp.normalize()


def _clean_word(raw, contest: int, path, row, answers: set, log: list) -> str:
    """Apply the word rules in order: lowercase+strip, ASCII folding, known typos, archive relabel; then check."""
    if _is_blank(raw):
        raise DataError(f"{_where(path, row, 'word')}: empty word")
    word = str(raw)
    steps = [
        ("lowercase_strip", lambda w: w.strip().lower()),
        ("strip_diacritics", lambda w: unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode()),
        ("fix_known_typo", lambda w: WORD_TYPOS.get(w, w)),
    ]
    for rule, step in steps:
        new = step(word)
        if new != word:
            _log(log, contest, "word", repr(word) if rule == "lowercase_strip" else word, new, rule)
            word = new
    if (contest, word) in WORD_RELABELS:
        new, rule = WORD_RELABELS[(contest, word)]
        _log(log, contest, "word", word, new, rule)
        word = new
    if word not in answers:
        raise DataError(f"{_where(path, row, 'word')}: {raw!r} is not resolvable to a word of the answer list")
    return word


def load_wordle_data(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the MCM xlsx (any column offset / header row) or a csv export and return the cleaned table, sorted by contest."""
    path = Path(path) if path is not None else RAW_DATA
    grid, row_numbers = _read_grid(path)
    header_row, mapping = _locate_header(grid, path)
    missing = [c for c in COLUMNS if c not in mapping]
    if missing:
        raise DataError(f"{_where(path, row_numbers[header_row], missing[0])}: missing column "
                        f"(header row has {sorted(mapping)}; missing {missing})")
    answers = set(load_answers())
    log: list[dict] = []
    records, seen = [], {}
    for r in range(header_row + 1, len(grid)):
        cells = grid.iloc[r]
        row = row_numbers[r]
        values = {c: cells.iloc[mapping[c]] for c in COLUMNS}
        if all(_is_blank(v) for v in values.values()):
            continue  # blank spreadsheet row: not data, nothing to drop
        contest = _parse_int(values["contest_number"], path, row, "contest_number")
        if contest in seen:
            raise DataError(f"{_where(path, row, 'contest_number')}: duplicated contest number {contest} "
                            f"(first at row {seen[contest]})")
        seen[contest] = row
        rec = {"date": _parse_date(values["date"], path, row), "contest_number": contest}
        rec["word"] = _clean_word(values["word"], contest, path, row, answers, log)
        for c in ("n_reported", "n_hard_mode"):
            rec[c] = _parse_int(values[c], path, row, c)
        for c in TRY_COLUMNS:
            rec[c] = _parse_float(values[c], path, row, c)
        _fix_row(rec, log)
        _check_row(rec, path, row)
        records.append(rec)
    if not records:
        raise DataError(f"{path}: empty file (a header but no data rows)")
    df = pd.DataFrame.from_records(records, columns=COLUMNS).sort_values("contest_number", kind="stable")
    df = df.reset_index(drop=True)
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df = df.astype({"contest_number": "int64", "n_reported": "int64", "n_hard_mode": "int64",
                    **{c: "float64" for c in TRY_COLUMNS}})
    _log_normalisation(df, log)
    df.attrs["cleaning_log"] = (pd.DataFrame(log, columns=LOG_COLUMNS)
                                .sort_values("contest", kind="stable").reset_index(drop=True))
    df.attrs["source"] = str(path)
    return df


def _fix_row(rec: dict, log: list) -> None:
    """Apply the count and percent-row fixes keyed on (contest, defective raw value)."""
    contest = rec["contest_number"]
    for (c_no, column, old), (new, rule) in COUNT_FIXES.items():
        if contest == c_no and rec[column] == old:
            rec[column] = new
            _log(log, contest, column, old, new, rule)
    for (c_no, column, old), rule in KEPT_DUPLICATES.items():
        if contest == c_no and rec[column] == old:
            _log(log, contest, column, old, old, rule)
    if contest in PERCENT_FIXES:
        old_row, new_row, rule = PERCENT_FIXES[contest]
        if tuple(rec[c] for c in TRY_COLUMNS) == tuple(float(v) for v in old_row):
            for c, old, new in zip(TRY_COLUMNS, old_row, new_row):
                if old != new:
                    rec[c] = float(new)
                    _log(log, contest, c, old, new, rule)


def _check_row(rec: dict, path: Path, row: int) -> None:
    """Reject values no rule can explain: negative counts/percents, impossible sums, date off the schedule."""
    for c in ("n_reported", "n_hard_mode", *TRY_COLUMNS):
        if rec[c] < 0:
            raise DataError(f"{_where(path, row, c)}: negative value {rec[c]}")
    if rec["n_hard_mode"] > rec["n_reported"]:
        raise DataError(f"{_where(path, row, 'n_hard_mode')}: {rec['n_hard_mode']} hard-mode results exceed "
                        f"{rec['n_reported']} reported results")
    total = sum(rec[c] for c in TRY_COLUMNS)
    lo, hi = PERCENT_SUM_HARD_LIMIT
    if not lo <= total <= hi:
        raise DataError(f"{_where(path, row, 'try_1..try_7_or_more')}: percents sum to {total:g}, not about 100")
    expected = FIRST_CONTEST_DATE + pd.Timedelta(days=rec["contest_number"])
    if rec["date"] != expected:
        raise DataError(f"{_where(path, row, 'date')}: {rec['date'].date()} does not match contest "
                        f"{rec['contest_number']} (expected {expected.date()})")


def _log_normalisation(df: pd.DataFrame, log: list) -> None:
    """One log row per row whose percents do not sum to exactly 100: target_matrix rescales them to sum 1."""
    sums = df[TRY_COLUMNS].sum(axis=1)
    for contest, total in zip(df["contest_number"], sums):
        if not np.isclose(total, 100.0):
            _log(log, contest, "try_1..try_7_or_more", f"sum={total:g}", "sum=100",
                 "normalise_rounded_percents_in_target_matrix")


def cleaning_log(df: pd.DataFrame) -> pd.DataFrame:
    """The cleaning log of a frame returned by ``load_wordle_data`` (contest, column, old_value, new_value, rule)."""
    log = df.attrs.get("cleaning_log")
    if log is None:
        return pd.DataFrame(columns=LOG_COLUMNS)
    return log.copy()


def target_matrix(df: pd.DataFrame) -> np.ndarray:
    """(n, 7) float64 result distribution per row (percents rescaled so each row sums to 1)."""
    P = df[TRY_COLUMNS].to_numpy(dtype=np.float64)
    sums = P.sum(axis=1, keepdims=True)
    if (sums <= 0).any() or not np.isfinite(P).all():
        raise DataError("target_matrix: a row has no positive finite percents")
    return P / sums
