"""Word features: any word works, no leakage from targets, key features against slow references."""
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from tests.test_feedback import reference_pattern
from wordle_moe import features as ft
from wordle_moe.data import load_wordle_data
from wordle_moe.paths import TRY_COLUMNS
from wordle_moe.wordlists import load_allowed, load_answers


def test_eerie_and_unplayed_words_have_complete_features():
    f = ft.build_features(["EERIE", "xylyl", "zzzzz"], ["2023-03-01", "2022-01-08", None])
    assert f["word"].tolist() == ["eerie", "xylyl", "zzzzz"]
    assert list(f.columns[:2]) == ["word", "date"]
    assert all(k in f.columns for k in ft.KEY_FEATURES)
    cols = ft.feature_columns(f)
    assert "word" not in cols and "date" not in cols
    assert not f[cols].isna().any().any()
    assert f["days_since_start"].tolist() == [418.0, 1.0, 0.0]  # no date -> 0 (documented)
    assert pd.isna(f["date"].iloc[2])
    assert f["in_answer_list"].tolist() == [1.0, 0.0, 0.0]
    for s in ("entropy", "frequency", "random"):
        shares = f[[f"solver_{s}_share_{b}" for b in ft.BUCKET_SUFFIXES]].to_numpy()
        np.testing.assert_allclose(shares.sum(axis=1), 1.0)
        np.testing.assert_allclose(f[f"solver_{s}_mean_tries"], shares @ np.arange(1, 8))


def test_hand_values():
    f = ft.build_features(["eerie", "crane", "jazzy"]).set_index("word")
    assert f.loc["eerie", "letter_entropy"] == pytest.approx(-(0.6 * math.log2(0.6) + 2 * 0.2 * math.log2(0.2)))
    assert f.loc["crane", "letter_entropy"] == pytest.approx(math.log2(5))
    assert f.loc["jazzy", "scrabble_score"] == 8 + 1 + 10 + 10 + 4
    assert f.loc["eerie", "repeated_letters"] == 2 and f.loc["eerie", "vowel_count"] == 4
    assert f.loc["jazzy", "rare_letters"] == 3  # j, z, z
    from wordfreq import zipf_frequency
    assert f.loc["crane", "Zipf-value"] == zipf_frequency("crane", "en")


def test_invalid_words_raise_naming_the_word():
    for bad in ["abcd", "abcdef", "ab1de", "naïve", "a bcd"]:
        with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
            ft.build_features([bad])


@pytest.mark.parametrize("word", ["eerie", "salet", "qajaq", "zzzzz"])
def test_feedback_entropy_against_slow_reference(word):
    counts = Counter(reference_pattern(word, a) for a in load_answers())
    p = np.array(list(counts.values())) / 2315
    expected = float(-(p * np.log2(p)).sum())
    assert ft.feedback_entropies([word])[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("word", ["eerie", "crane", "cares", "zzzzz", "xylyl"])
def test_hamming_neighbors_against_slow_reference(word):
    expected = sum(1 for w in load_allowed() if sum(a != b for a, b in zip(w, word)) == 1)
    assert ft.hamming_neighbors([word])[0] == expected


def test_no_leakage_from_targets_or_counts():
    data = load_wordle_data().head(12)
    shuffled = data.copy()
    rng = np.random.default_rng(0)
    for c in [*TRY_COLUMNS, "n_reported", "n_hard_mode"]:
        shuffled[c] = rng.permutation(shuffled[c].to_numpy())
    shuffled[TRY_COLUMNS] = rng.random((len(shuffled), 7)) * 100
    a, b = ft.build_feature_table(data), ft.build_feature_table(shuffled)
    pd.testing.assert_frame_equal(a, b)
    assert a["word"].iloc[-1] == "eerie" and a["date"].iloc[-1] == pd.Timestamp("2023-03-01")


def test_load_feature_table_rebuilds_when_stale(tmp_path, monkeypatch):
    path = tmp_path / "features.csv"
    monkeypatch.setattr(ft, "FEATURES_CSV", path)
    table = ft.load_feature_table()
    assert path.exists() and len(table) == 360
    assert table["word"].iloc[-1] == "eerie"
    assert "feature_version" not in table.columns  # the version lives in the CSV and in attrs
    assert table.attrs["feature_version"] == ft.FEATURE_VERSION
    assert not table[ft.feature_columns(table)].isna().any().any()
    # a table written by another feature version is rebuilt
    stale = pd.read_csv(path)
    stale["feature_version"] = "0-old"
    stale["Zipf-value"] = -1.0
    stale.to_csv(path, index=False)
    rebuilt = ft.load_feature_table()
    assert (rebuilt["Zipf-value"] > 0).all()
    assert pd.read_csv(path)["feature_version"].astype(str).eq(ft.FEATURE_VERSION).all()
    # the current table is reused, not rebuilt
    mtime = path.stat().st_mtime_ns
    again = ft.load_feature_table()
    assert path.stat().st_mtime_ns == mtime
    pd.testing.assert_frame_equal(again, rebuilt)


def test_empty_input_and_scalar_date():
    empty = ft.build_features([])
    assert empty.shape[0] == 0 and list(empty.columns[:2]) == ["word", "date"]
    f = ft.build_features(["eerie", "crane"], "2022-01-09")  # one date broadcast to every word
    assert f["days_since_start"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="2 dates for 3 words"):
        ft.build_features(["eerie", "crane", "cigar"], ["2022-01-09", "2022-01-10"])
