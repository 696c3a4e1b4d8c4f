"""Loading and cleaning the MCM table: each cleaning rule and each DataError on small files written here."""
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from wordle_moe.data import DataError, cleaning_log, load_wordle_data, target_matrix
from wordle_moe.paths import RAW_DATA, ROOT, TRY_COLUMNS
from wordle_moe.wordlists import load_answers

RESAVED = ROOT / "tests" / "fixtures" / "Problem_C_Data_Wordle_resaved.xlsx"
HEADER = ["Date", "Contest number", "Word", "Number of  reported results", "Number in hard mode",
          "1 try", "2 tries", "3 tries", "4 tries", "5 tries", "6 tries", "7 or more tries (X)"]


def row(contest, word, n=20000, hard=2000, pct=(0, 5, 25, 35, 25, 9, 1)):
    date = (pd.Timestamp("2021-06-19") + pd.Timedelta(days=contest)).to_pydatetime()
    return [date, contest, word, n, hard, *pct]


def write_xlsx(path: Path, rows, header=HEADER, offset_col=1, title=True) -> Path:
    """COMAP layout: an empty column A (offset_col=1), 'Percent in' title row, header in row 2."""
    wb = openpyxl.Workbook()
    ws = wb.active
    r0 = 1
    if title:
        ws.cell(row=1, column=offset_col + 6, value="Percent in ")
        r0 = 2
    for j, h in enumerate(header):
        ws.cell(row=r0, column=offset_col + 1 + j, value=h)
    for i, values in enumerate(rows):
        for j, v in enumerate(values):
            ws.cell(row=r0 + 1 + i, column=offset_col + 1 + j, value=v)
    wb.save(path)
    return path


def write_csv(path: Path, rows, header=HEADER) -> Path:
    df = pd.DataFrame(rows, columns=header)
    df.to_csv(path, index=False)
    return path


def log_rows(df, rule):
    log = cleaning_log(df)
    return log[log["rule"] == rule]


# ---------------------------------------------------------------- the real files

def test_real_file_cleaned():
    df = load_wordle_data()
    assert len(df) == 359
    assert df["contest_number"].tolist() == list(range(202, 561))
    assert df["date"].min() == pd.Timestamp("2022-01-07") and df["date"].max() == pd.Timestamp("2022-12-31")
    assert set(df["word"]) <= set(load_answers())
    assert not df["word"].duplicated().any()
    assert list(df.columns) == ["date", "contest_number", "word", "n_reported", "n_hard_mode", *TRY_COLUMNS]
    assert str(df["date"].dtype) == "datetime64[ns]" and df["n_reported"].dtype == np.int64
    sums = df[TRY_COLUMNS].sum(axis=1)
    assert sums.between(98, 102).all()
    P = target_matrix(df)
    assert P.shape == (359, 7) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    log = cleaning_log(df)
    assert list(log.columns) == ["contest", "column", "old_value", "new_value", "rule"]
    # one normalisation row per row not summing to exactly 100 after the fixes (180 raw + cynic, smear at 101)
    assert len(log_rows(df, "normalise_rounded_percents_in_target_matrix")) == int((sums != 100).sum()) == 182


def test_resaved_layout_gives_identical_frame():
    a, b = load_wordle_data(RAW_DATA), load_wordle_data(RESAVED)
    pd.testing.assert_frame_equal(a, b)
    # the resaved file already has probe/naive: those rules do not fire there
    assert set(cleaning_log(a)["rule"]) >= {"fix_known_typo", "strip_diacritics"}
    assert (cleaning_log(b)["old_value"] == "rprobe").sum() == 0
    assert (cleaning_log(b)["old_value"] == "naïve").sum() == 0


# ---------------------------------------------------------------- each rule

def test_word_rules(tmp_path):
    rows = [row(545, "rprobe"), row(540, "naïve"), row(525, "clen"), row(473, "marxh"), row(314, "tash"),
            row(207, "favor "), row(208, "  Cigar"), row(209, "REBUT")]
    df = load_wordle_data(write_xlsx(tmp_path / "w.xlsx", rows))
    assert df.set_index("contest_number")["word"].to_dict() == {
        207: "favor", 208: "cigar", 209: "rebut", 314: "trash", 473: "marsh", 525: "clean", 540: "naive", 545: "probe"}
    typos = log_rows(df, "fix_known_typo")
    assert sorted(zip(typos["old_value"], typos["new_value"])) == [
        ("clen", "clean"), ("marxh", "marsh"), ("rprobe", "probe"), ("tash", "trash")]
    assert log_rows(df, "strip_diacritics")[["old_value", "new_value"]].values.tolist() == [["naïve", "naive"]]
    assert set(log_rows(df, "lowercase_strip")["contest"]) == {207, 208, 209}


def test_peach_relabelled_phase(tmp_path):
    df = load_wordle_data(write_xlsx(tmp_path / "p.xlsx", [row(349, "peach"), row(350, "peach")]))
    assert df["word"].tolist() == ["phase", "peach"]  # keyed on contest 349 only
    log = log_rows(df, "relabel_to_published_archive_answer")
    assert log[["contest", "old_value", "new_value"]].values.tolist() == [[349, "peach", "phase"]]


def test_contest_529_count_fix(tmp_path):
    df = load_wordle_data(write_xlsx(tmp_path / "c.xlsx", [row(529, "study", n=2569, hard=2405),
                                                            row(530, "eject", n=2569, hard=240)]))
    assert df["n_reported"].tolist() == [25690, 2569]
    assert df["n_hard_mode"].tolist() == [2405, 240]
    log = log_rows(df, "n_reported_dropped_trailing_digit")
    assert log[["contest", "column", "old_value", "new_value"]].values.tolist() == [[529, "n_reported", "2569", "25690"]]


def test_percent_row_fixes(tmp_path):
    rows = [row(281, "nymph", pct=(1, 2, 18, 44, 26, 26, 9)),
            row(240, "cynic", hard=10343, pct=(1, 6, 25, 33, 22, 11, 2)),
            row(241, "aroma", hard=10343, pct=(1, 6, 25, 33, 22, 11, 2)),
            row(414, "smear", n=36223, pct=(0, 2, 16, 39, 29, 12, 2)),
            row(416, "patty", n=36223, pct=(0, 2, 16, 39, 29, 12, 1))]
    df = load_wordle_data(write_xlsx(tmp_path / "r.xlsx", rows)).set_index("word")
    assert df.loc["nymph", TRY_COLUMNS].tolist() == [1, 2, 18, 44, 26, 9, 1]
    assert df.loc["cynic", TRY_COLUMNS].tolist() == [1, 2, 11, 33, 34, 17, 3]
    assert df.loc["aroma", TRY_COLUMNS].tolist() == [1, 6, 25, 33, 22, 11, 2]
    assert df.loc["smear", TRY_COLUMNS].tolist() == [1, 9, 21, 26, 24, 16, 4]
    assert df.loc["patty", TRY_COLUMNS].tolist() == [0, 2, 16, 39, 29, 12, 1]
    assert log_rows(df, "percent_row_shift_fixed_by_tally")["column"].tolist() == ["try_6", "try_7_or_more"]
    assert len(log_rows(df, "duplicate_of_241_replaced_by_tally")) == 5  # try_1 and try_4 unchanged
    assert len(log_rows(df, "duplicate_of_416_replaced_by_tally")) == 7
    kept = cleaning_log(df)[cleaning_log(df)["rule"].str.contains("kept")]
    assert kept[["contest", "column"]].values.tolist() == [[240, "n_hard_mode"], [414, "n_reported"]]


def test_normalisation_logged_and_applied(tmp_path):
    rows = [row(300, "shame", pct=(0, 5, 25, 35, 25, 9, 1)), row(301, "cheek", pct=(1, 5, 25, 35, 25, 9, 2)),
            row(302, "ample", pct=(0, 5, 25, 35, 25, 8, 0))]
    df = load_wordle_data(write_csv(tmp_path / "n.csv", rows))
    log = log_rows(df, "normalise_rounded_percents_in_target_matrix")
    assert log[["contest", "old_value"]].values.tolist() == [[301, "sum=102"], [302, "sum=98"]]
    P = target_matrix(df)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(P[1], np.array([1, 5, 25, 35, 25, 9, 2]) / 102)
    # the frame itself keeps the percents as fixed, not yet normalised
    assert df[TRY_COLUMNS].sum(axis=1).tolist() == [100, 102, 98]


def test_csv_with_snake_case_header_and_header_row_detection(tmp_path):
    header = ["date", "contest_number", "word", "n_reported", "n_hard_mode", *TRY_COLUMNS]
    df = load_wordle_data(write_csv(tmp_path / "s.csv", [row(202, "slump"), row(203, "crank")], header=header))
    assert df["word"].tolist() == ["slump", "crank"]
    # header in row 5 of a sheet, data starting in column D: found without hard-coding
    path = tmp_path / "off.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    for j, h in enumerate(HEADER):
        ws.cell(row=5, column=4 + j, value=h)
    for j, v in enumerate(row(202, "slump")):
        ws.cell(row=6, column=4 + j, value=v)
    wb.save(path)
    assert load_wordle_data(path)["word"].tolist() == ["slump"]


# ---------------------------------------------------------------- each error

def test_missing_column(tmp_path):
    header = [h for h in HEADER if h != "Number in hard mode"]
    rows = [[v for k, v in enumerate(row(202, "slump")) if k != 4]]
    path = write_xlsx(tmp_path / "m.xlsx", rows, header=header)
    with pytest.raises(DataError, match=r"m\.xlsx, row 2, column 'n_hard_mode': missing column"):
        load_wordle_data(path)


def test_non_numeric_percent(tmp_path):
    rows = [row(202, "slump"), row(203, "crank", pct=(0, 5, "25%?", 35, 25, 9, 1))]
    with pytest.raises(DataError, match=r"x\.xlsx, row 4, column 'try_3'.*25%\?"):
        load_wordle_data(write_xlsx(tmp_path / "x.xlsx", rows))
    with pytest.raises(DataError, match=r"x\.csv, row 3, column 'try_3'"):
        load_wordle_data(write_csv(tmp_path / "x.csv", rows))


def test_duplicated_contest(tmp_path):
    rows = [row(202, "slump"), row(203, "crank"), row(203, "crank")]
    with pytest.raises(DataError, match=r"d\.xlsx, row 5, column 'contest_number': duplicated contest number 203 "
                                        r"\(first at row 4\)"):
        load_wordle_data(write_xlsx(tmp_path / "d.xlsx", rows))


def test_unresolvable_word(tmp_path):
    for bad in ["qwxyz", "slumps", "sl mp"]:
        with pytest.raises(DataError, match=r"u\.xlsx, row 3, column 'word'.*not resolvable"):
            load_wordle_data(write_xlsx(tmp_path / "u.xlsx", [row(202, bad)]))


def test_empty_files(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"e\.csv: empty file"):
        load_wordle_data(empty)
    with pytest.raises(DataError, match=r"h\.xlsx: empty file"):
        load_wordle_data(write_xlsx(tmp_path / "h.xlsx", []))
    wb = openpyxl.Workbook()
    wb.save(tmp_path / "blank.xlsx")
    with pytest.raises(DataError, match=r"blank\.xlsx"):
        load_wordle_data(tmp_path / "blank.xlsx")


def test_wrong_file_type(tmp_path):
    txt = tmp_path / "data.txt"
    txt.write_text("Date,Word\n")
    with pytest.raises(DataError, match=r"data\.txt: not an \.xlsx or \.csv file"):
        load_wordle_data(txt)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("this is not a zip file")
    with pytest.raises(DataError, match=r"fake\.xlsx: not a readable xlsx file"):
        load_wordle_data(fake)
    with pytest.raises(DataError, match="file not found"):
        load_wordle_data(tmp_path / "missing.csv")


def test_other_malformed_rows(tmp_path):
    with pytest.raises(DataError, match=r"column 'date'.*does not match contest 202"):
        bad = row(202, "slump")
        bad[0] = pd.Timestamp("2022-01-08").to_pydatetime()
        load_wordle_data(write_xlsx(tmp_path / "a.xlsx", [bad]))
    with pytest.raises(DataError, match=r"row 3, column 'try_1..try_7_or_more'.*sum to 150"):
        load_wordle_data(write_xlsx(tmp_path / "b.xlsx", [row(202, "slump", pct=(50, 5, 25, 35, 25, 9, 1))]))
    with pytest.raises(DataError, match=r"row 3, column 'n_hard_mode'"):
        load_wordle_data(write_xlsx(tmp_path / "c.xlsx", [row(202, "slump", n=10, hard=20)]))
    assert issubclass(DataError, ValueError)


def test_csv_export_of_the_raw_sheet_gives_identical_frame(tmp_path):
    grid = pd.read_excel(RAW_DATA, header=None)  # the sheet cell by cell, title row and empty column A included
    path = tmp_path / "raw.csv"
    grid.to_csv(path, header=False, index=False)
    a, b = load_wordle_data(RAW_DATA), load_wordle_data(path)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(cleaning_log(a), cleaning_log(b))
