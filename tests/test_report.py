"""Tests of wordle_moe.report: the output tables are shaped and checked before they are written."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wordle_moe import report
from wordle_moe.paths import PRED_COLUMNS


def assignment(n=4, E=2):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"word": [f"w{i}" for i in range(n)], "primary_expert": 0})
    w = rng.dirichlet(np.ones(E), n)
    for e in range(E):
        df[f"expert_{e}_weight"] = w[:, e]
    p = rng.dirichlet(np.ones(7), n)
    for j, c in enumerate(PRED_COLUMNS):
        df[c] = p[:, j]
    return df


def test_write_assignment_checks_layout_and_sums(tmp_path):
    df = assignment()
    path = report.write_assignment(df, tmp_path, "topk")
    assert path.name == "expert_assignment_all_data.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path), df, check_exact=False, rtol=1e-9)
    bad = df.copy()
    bad.loc[0, "expert_0_weight"] += 0.1
    with pytest.raises(ValueError, match="weights rows do not sum to 1"):
        report.write_assignment(bad, tmp_path, "softmax")
    with pytest.raises(ValueError, match="fixed output layout"):
        report.write_assignment(df.drop(columns="pred_1_try"), tmp_path, "softmax")
    with pytest.raises(ValueError, match="kind"):
        report.write_assignment(df, tmp_path, "argmax")
    assert not (tmp_path / "expert_assignment_fixed.csv").exists()


def test_write_table_drops_timings(tmp_path):
    report.write_table(pd.DataFrame({"a": [1], "seconds": [0.3], "fit_seconds_mean": [1.0]}), tmp_path, "t.csv")
    assert pd.read_csv(tmp_path / "t.csv").columns.tolist() == ["a"]


def test_bootstrap_and_holdout_frames():
    rng = np.random.default_rng(1)
    P_boot = rng.dirichlet(np.ones(7), size=(20, 3))
    s = {"mean": P_boot.mean(0), "std": P_boot.std(0), "low": P_boot.min(0), "high": P_boot.max(0)}
    P_true = np.vstack([P_boot[0, :2], np.full((1, 7), np.nan)])
    df = report.bootstrap_summary_frame(["a", "b", "eerie"], s, 0.9, P_true, ["2022-01-01", "2022-01-02",
                                                                            "2023-03-01"])
    assert len(df) == 21 and df["bucket"].iloc[:7].tolist() == PRED_COLUMNS
    np.testing.assert_allclose(df.loc[df["word"] == "b", "mean"], s["mean"][1])
    assert df.loc[df["word"] == "a", "inside_interval"].eq(1).all() and df.loc[df["word"] == "eerie",
                                                                              "inside_interval"].isna().all()
    hold = report.holdout_frame("eerie", "2023-03-01", s, 0.9, 20, row=-1)
    assert len(hold) == 7 and hold["date"].iloc[0] == "2023-03-01"
    np.testing.assert_allclose(hold["mean_pct"], 100 * s["mean"][2])
    assert report.holdout_filenames("EERIE ")["bar"] == "holdout_eerie_bar_ci.png"


def test_prediction_frame_metrics():
    P = np.array([[0.1, 0.2, 0.3, 0.2, 0.1, 0.05, 0.05]])
    df = report.prediction_frame(["a"], P, P)
    assert df["mae_pp"].iloc[0] == 0 and df["rps"].iloc[0] == 0


def test_list_outputs_marks_missing(tmp_path):
    (tmp_path / "data_cleaning_log.csv").write_text("x\n")
    (tmp_path / "extra.txt").write_text("y")
    (tmp_path / ".tmp.partial").write_text("z")
    listing = report.list_outputs(tmp_path, "eerie").set_index("file")
    assert listing.loc["data_cleaning_log.csv", "exists"] and not listing.loc["run_manifest.json", "exists"]
    assert not listing.loc["extra.txt", "fixed_name"] and ".tmp.partial" not in listing.index
    assert "holdout_eerie_violin.png" in listing.index


def test_write_stability_checks_the_table(tmp_path):
    table = pd.DataFrame({"word": ["aa", "bb"], "consensus_expert": [1, 0], "confidence": [0.75, 0.5],
                          "expert_0_share": [0.25, 0.5], "expert_1_share": [0.75, 0.5]})
    path = report.write_stability(table, tmp_path)
    assert path.name == "expert_assignment_stability.csv" and path.name in report.expected_outputs("eerie")
    pd.testing.assert_frame_equal(pd.read_csv(path), table)
    with pytest.raises(ValueError, match="max share"):
        report.write_stability(table.assign(confidence=[0.75, 0.4]), tmp_path)
    with pytest.raises(ValueError, match="sum to 1"):
        report.write_stability(table.assign(expert_0_share=[0.5, 0.5]), tmp_path)
    with pytest.raises(ValueError, match="consensus"):
        report.write_stability(table.assign(consensus_expert=[0, 0]), tmp_path)
    with pytest.raises(ValueError, match="differ from"):
        report.write_stability(table.drop(columns="confidence"), tmp_path)
