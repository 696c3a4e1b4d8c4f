"""Writing the fixed-name output files from computed results: tables, figures and the closing listing.

Computing lives in the engine and in ``analysis/``; this module shapes results into the fixed
output tables and writes them with the atomic writers of ``wordle_moe.io`` (a crash never leaves
half a file). Wall-clock timings are kept out of the CSVs (they go to run_manifest.json) so that
two runs with the same seed write byte-identical CSVs. The notebook's parameters are ``wordle_moe.parameters``,
its progress bars ``wordle_moe.progress``; the training steps it calls live in the engine (evaluation, persistence).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wordle_moe import metrics
from wordle_moe.io import save_figure, write_csv
from wordle_moe.paths import BUCKET_LABELS, PRED_COLUMNS, TRY_COLUMNS

ASSIGNMENT_FILES = {"topk": "expert_assignment_all_data.csv", "softmax": "expert_assignment_fixed.csv"}
STABILITY_FILES = {"csv": "expert_assignment_stability.csv", "png": "expert_assignment_stability.png"}
ORIGIN_FILES = ("gate_origin_comparison.csv", "expert_count_comparison.csv")   # learned or imposed; how many experts
TIMING_COLUMNS = ("seconds", "fit_seconds", "fit_seconds_mean", "fit_seconds_std", "predict_seconds")
SUM_TOLERANCE = 1e-6

def expected_outputs(holdout_word: str) -> list[str]:
    """Every fixed output name a complete run writes (the holdout names use the lower-case word)."""
    w = str(holdout_word).strip().lower()
    return [
        "data_cleaning_log.csv", "moe_loss_log.csv", "moe_training_history.png", "model_comparison.csv",
        "moe_softmax_pred_output.csv", "moe_bootstrap_pred_summary.csv", f"holdout_{w}_predictions_with_ci.csv",
        f"holdout_{w}_bar_ci.png", f"holdout_{w}_violin.png", "grid_search_results.csv", "router_comparison.csv",
        "expert_assignment_all_data.csv", "expert_assignment_fixed.csv", "expert_feature_statistics_fixed.csv",
        "expert_wordclouds.png", "expert_wordclouds_fixed.png", "expert_feature_distributions.png",
        "expert_prediction_distributions_fixed.png", "expert_parallel_coordinates.png",
        "expert_decomposition_samples.png", *STABILITY_FILES.values(), "forecast_wordlebot.csv",
        "forecast_wordlebot.png", "forecast_wordlebot_comparison.csv", *ORIGIN_FILES, "run_manifest.json",
    ]


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _drop_timings(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS])


def write_table(df: pd.DataFrame, output_dir: str | os.PathLike, name: str, keep_timings: bool = False) -> Path:
    """Write one output table atomically (timing columns dropped unless asked: they live in the manifest)."""
    return write_csv(df if keep_timings else _drop_timings(df), Path(output_dir) / name)


def check_assignment(df: pd.DataFrame) -> None:
    """Raise ValueError unless the table has the fixed output columns and its weight/prediction rows sum to 1."""
    weights = [c for c in df.columns if c.startswith("expert_") and c.endswith("_weight")]
    expected = ["word", "primary_expert", *[f"expert_{e}_weight" for e in range(len(weights))], *PRED_COLUMNS]
    if list(df.columns) != expected:
        raise ValueError(f"assignment columns {list(df.columns)} differ from the fixed output layout {expected}")
    for cols, what in ((weights, "weights"), (PRED_COLUMNS, "predictions")):
        err = np.abs(df[cols].to_numpy(float).sum(axis=1) - 1).max() if len(df) else 0.0
        if err > SUM_TOLERANCE:
            raise ValueError(f"assignment {what} rows do not sum to 1 (max error {err:.2e})")


def write_assignment(df: pd.DataFrame, output_dir: str | os.PathLike, kind: str) -> Path:
    """expert_assignment_all_data.csv (kind='topk') or expert_assignment_fixed.csv (kind='softmax'), checked."""
    if kind not in ASSIGNMENT_FILES:
        raise ValueError(f"kind must be one of {list(ASSIGNMENT_FILES)}")
    check_assignment(df)
    return write_csv(df, Path(output_dir) / ASSIGNMENT_FILES[kind])


def write_stability(table: pd.DataFrame, output_dir: str | os.PathLike) -> Path:
    """expert_assignment_stability.csv, checked: shares sum to 1, confidence = max share, consensus = argmax."""
    shares = table[[c for c in table.columns if c.startswith("expert_") and c.endswith("_share")]].to_numpy(float)
    if list(table.columns[:3]) != ["word", "consensus_expert", "confidence"] or shares.shape[1] == 0:
        raise ValueError(f"stability columns {list(table.columns)} differ from word, consensus_expert, confidence, "
                         "expert_0_share ..")
    if len(table) and (np.abs(shares.sum(axis=1) - 1).max() > SUM_TOLERANCE
                       or np.abs(shares.max(axis=1) - table["confidence"].to_numpy(float)).max() > SUM_TOLERANCE
                       or (shares.argmax(axis=1) != table["consensus_expert"].to_numpy()).any()):
        raise ValueError("stability shares must sum to 1 with confidence = max share and consensus = its expert")
    return write_csv(table, Path(output_dir) / STABILITY_FILES["csv"])


def prediction_frame(words: Sequence[str], P_pred: np.ndarray, P_true: np.ndarray | None = None,
                     dates: Iterable | None = None) -> pd.DataFrame:
    """word (date), observed try_* shares, pred_* shares and per-word metrics (MAE in pp, RPS, JS)."""
    df = pd.DataFrame({"word": list(words)})
    if dates is not None:
        df["date"] = pd.to_datetime(pd.Series(list(dates))).dt.strftime("%Y-%m-%d").to_numpy()
    if P_true is not None:
        for j, c in enumerate(TRY_COLUMNS):
            df[c] = np.asarray(P_true)[:, j]
    for j, c in enumerate(PRED_COLUMNS):
        df[c] = np.asarray(P_pred)[:, j]
    if P_true is not None:
        df["mae_pp"] = metrics.mae_pp(P_true, P_pred)
        df["rps"] = metrics.rps(P_true, P_pred)
        df["js"] = metrics.js_divergence(P_true, P_pred)
    return df


def bootstrap_summary_frame(words: Sequence[str], summary: Mapping[str, np.ndarray], ci_level: float,
                            P_true: np.ndarray | None = None, dates: Iterable | None = None) -> pd.DataFrame:
    """Long table, one row per (word, bucket): mean, std, low, high (shares), ci_level, observed, inside."""
    n = len(words)
    df = pd.DataFrame({
        "word": np.repeat(np.asarray(list(words), dtype=object), 7),
        "bucket": np.tile(PRED_COLUMNS, n),
        "bucket_label": np.tile(BUCKET_LABELS, n),
    })
    if dates is not None:
        df.insert(1, "date", np.repeat(pd.to_datetime(pd.Series(list(dates))).dt.strftime("%Y-%m-%d").to_numpy(), 7))
    for k in ("mean", "std", "low", "high"):
        df[k] = np.asarray(summary[k]).reshape(-1)
    df["ci_level"] = ci_level
    if P_true is not None:
        obs = np.asarray(P_true, dtype=float).reshape(-1)
        df["observed"] = obs
        df["inside_interval"] = np.where(np.isfinite(obs), (obs >= df["low"]) & (obs <= df["high"]), np.nan)
    return df


def holdout_frame(word: str, date: Any, summary: Mapping[str, np.ndarray], ci_level: float, B: int,
                  row: int = 0, predictive: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per bucket for the holdout word, shares and percent: mean, std, ``low``/``high`` = the bootstrap
    interval of the mean and, with ``predictive`` = (low, high) arrays (n, 7), ``pred_low``/``pred_high`` = the
    predictive interval (where the observed share is expected to fall)."""
    df = pd.DataFrame({"word": word, "date": str(pd.Timestamp(date).date()), "bucket": PRED_COLUMNS,
                       "bucket_label": BUCKET_LABELS})
    for k in ("mean", "std", "low", "high"):
        df[k] = np.asarray(summary[k])[row]
    pct = ["mean", "low", "high"]
    if predictive is not None:
        df["pred_low"], df["pred_high"] = (np.asarray(a)[row] for a in predictive)
        pct += ["pred_low", "pred_high"]
    for k in pct:
        df[f"{k}_pct"] = 100 * df[k]
    df["ci_level"] = ci_level
    df["bootstrap_B"] = B
    return df


def holdout_filenames(word: str) -> dict[str, str]:
    """The three holdout file names for ``word``."""
    w = word.strip().lower()
    return {"csv": f"holdout_{w}_predictions_with_ci.csv", "bar": f"holdout_{w}_bar_ci.png",
            "violin": f"holdout_{w}_violin.png"}


# --------------------------------------------------------------------------------------------
# Figures and the closing listing
# --------------------------------------------------------------------------------------------
def write_figure(fig: Any, output_dir: str | os.PathLike, name: str) -> Path:
    """Save a figure atomically and close it (so a long notebook does not keep dozens of figures open)."""
    import matplotlib.pyplot as plt

    path = save_figure(fig, Path(output_dir) / name)
    plt.close(fig)
    return path


def list_outputs(output_dir: str | os.PathLike, holdout_word: str) -> pd.DataFrame:
    """Every file in the output folder with its size, marking the fixed-name files and any that are missing."""
    out = Path(output_dir)
    expected = expected_outputs(holdout_word)
    present = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(".")) if out.exists() else []
    names = expected + [p for p in present if p not in expected]
    return pd.DataFrame({
        "file": names,
        "fixed_name": [n in expected for n in names],
        "exists": [(out / n).exists() for n in names],
        "bytes": [(out / n).stat().st_size if (out / n).exists() else 0 for n in names],
    })
