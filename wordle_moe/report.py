"""Writing the fixed-name output files from computed results, plus the small steps the notebook calls.

Computing lives in the engine and in ``analysis/``; this module shapes results into the fixed
output tables and writes them with the atomic writers of ``wordle_moe.io`` (a crash never leaves
half a file). Wall-clock timings are kept out of the CSVs (they go to run_manifest.json) so that
two runs with the same seed write byte-identical CSVs.
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
TIMING_COLUMNS = ("seconds", "fit_seconds", "fit_seconds_mean", "fit_seconds_std", "predict_seconds")
SUM_TOLERANCE = 1e-6

# The notebook's own switches; every other parameter is a knob of moe_booststrap.py (see module_knobs).
NOTEBOOK_SWITCHES = ("QUICK", "RUN_GRID_SEARCH", "OUTPUT_DIR", "FAIL_AT_SECTION", "N_JOBS")
# QUICK mode: a small run for tests and smoke checks (caps, never raises a value the user set lower)
QUICK_CAPS = {"MAX_EPOCHS": 60, "PATIENCE": 15, "BOOTSTRAP_B": 6, "HIDDEN_SIZE": 32}


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
        "forecast_wordlebot.png", "forecast_wordlebot_comparison.csv", "run_manifest.json",
    ]


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
def module_knobs(module: Any) -> tuple[str, ...]:
    """Every upper-case knob of the companion module, in file order (read from the module, never hand-listed)."""
    names = module.knobs() if hasattr(module, "knobs") else vars(module)
    return tuple(n for n in names if n.isupper() and not n.startswith("_"))


def notebook_parameters(module: Any) -> tuple[str, ...]:
    """The names the notebook's parameters cell defines: every module knob plus the notebook switches."""
    return module_knobs(module) + NOTEBOOK_SWITCHES


def check_parameter_names(names: Iterable[str], module: Any) -> None:
    """Raise ConfigError naming any injected name that is neither a module knob nor a notebook switch.

    Papermill only warns about an unknown ``-p NAME`` and runs on with the defaults; a misspelt knob would
    silently change nothing, so the notebook stops instead.
    """
    from wordle_moe.config import ConfigError

    known = set(notebook_parameters(module))
    unknown = sorted(set(names) - known)
    if unknown:
        import difflib

        close = {u: difflib.get_close_matches(u.upper(), known, n=1) for u in unknown}
        hints = "; ".join(f"{u} (did you mean {c[0]}?)" for u, c in close.items() if c)
        raise ConfigError(f"unknown notebook parameter(s) {unknown}: not a knob of moe_booststrap.py nor a notebook "
                          f"switch{'; ' + hints if hints else ''}. Known: {sorted(known)}")


def _coerce(knob: str, value: Any, current: Any) -> Any:
    """A papermill string for a list knob (``-p GRID_TOP_K "[1, 2]"``) parsed as a Python literal."""
    import ast

    from wordle_moe.config import ConfigError

    if isinstance(current, (list, tuple)) and isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ConfigError(f"{knob}={value!r} is invalid: give a list such as [1, 2]") from None
    if isinstance(current, (list, tuple)) and not (isinstance(value, (list, tuple)) and len(value) > 0):
        raise ConfigError(f"{knob}={value!r} is invalid: must be a non-empty list")
    return list(value) if isinstance(value, tuple) else value


def apply_parameters(module: Any, params: Mapping[str, Any], quick: bool = False) -> dict[str, Any]:
    """Set every module knob in ``params`` that is not None on the module (QUICK caps applied), validate, return them.

    Raises ConfigError naming the knob before any training (TOP_K > NUM_EXPERTS, negative coefficient,
    unknown router, a grid that is not a list, ...), and for a malformed HOLDOUT_WORD / HOLDOUT_DATE.
    """
    from wordle_moe.config import ConfigError

    knobs = module_knobs(module)
    applied = {k: _coerce(k, params[k], getattr(module, k, None)) for k in knobs
               if params.get(k) is not None}  # None: keep the module's value
    if quick:
        for knob, cap in QUICK_CAPS.items():
            value = applied.get(knob, getattr(module, knob, None))
            if isinstance(value, (int, float)):
                applied[knob] = min(value, cap)
    word = str(applied.get("HOLDOUT_WORD", getattr(module, "HOLDOUT_WORD", "eerie"))).strip().lower()
    if len(word) != 5 or not word.isalpha():
        raise ConfigError(f"HOLDOUT_WORD={word!r} is invalid: must be a five-letter word")
    applied["HOLDOUT_WORD"] = word
    try:
        pd.Timestamp(applied.get("HOLDOUT_DATE", getattr(module, "HOLDOUT_DATE", None)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"HOLDOUT_DATE={applied.get('HOLDOUT_DATE')!r} is invalid: {exc}") from None
    for knob, value in applied.items():
        setattr(module, knob, value)
    module.config()  # validates every knob together; the message names the offending knob
    return applied


# --------------------------------------------------------------------------------------------
# Progress bars
# --------------------------------------------------------------------------------------------
PROGRESS_ENV = "WORDLE_MOE_PROGRESS"  # widgets | text: overrides the detection below


def _under_papermill() -> bool:
    """True when this kernel was started by papermill (its parent process runs papermill): no browser draws widgets."""
    try:
        import psutil

        parent = psutil.Process().parent()
        return parent is not None and any("papermill" in part for part in parent.cmdline())
    except Exception:  # psutil missing or the process table unreadable: assume an interactive front end
        return False


def configure_progress() -> str:
    """Make the engine's ``tqdm.auto`` bars visible where the notebook runs; returns "widgets" or "text".

    In JupyterLab tqdm.auto draws ipywidgets bars. Under papermill no browser renders them, so its log would
    show a bar at 0% and nothing more: there the bars become plain text written at most every 10 s, which
    ``papermill --log-output`` prints as the work goes on. Call before importing the engine modules that
    bind ``tqdm.auto.tqdm`` at import (evaluation, search); ``WORDLE_MOE_PROGRESS`` overrides the detection.
    """
    import tqdm.auto
    import tqdm.std

    mode = os.environ.get(PROGRESS_ENV) or ("text" if _under_papermill() else "widgets")
    if mode == "text":
        class LogBar(tqdm.std.tqdm):
            """A text bar for logs: ASCII, a new line at most every 10 s instead of rapid carriage returns."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("mininterval", 10.0)
                kwargs.setdefault("ascii", True)
                kwargs["leave"] = True  # keep the final line in the log
                super().__init__(*args, **kwargs)

        tqdm.auto.tqdm = LogBar
        tqdm.auto.trange = lambda *args, **kwargs: LogBar(range(*args), **kwargs)
    return mode


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


# --------------------------------------------------------------------------------------------
# Notebook steps (thin glue over the engine; they compute nothing the engine does not)
# --------------------------------------------------------------------------------------------
def forecast_split(dates: Any, seed: int = 0, val_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """Protocol B indices (train = words before 2022-10-01, test = the rest), with a seeded validation
    subset of the training words for early stopping: dict(train, val, test)."""
    from wordle_moe.evaluation import protocol_splits

    dates = pd.to_datetime(pd.Series(np.asarray(dates)))
    (_, train, test), = protocol_splits("B", len(dates), dates)
    perm = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, int(round(val_fraction * len(train))))
    return {"train": np.sort(train[perm[n_val:]]), "val": np.sort(train[perm[:n_val]]), "test": test}


def ensemble_residuals(X: np.ndarray, P: np.ndarray, config: Any, n_reported: np.ndarray | None = None,
                       cv: int = 5, seed: int = 0, progress: bool = False) -> np.ndarray:
    """Out-of-fold residuals P - P_hat (n, 7) of the single model with ``config`` (``cv``-fold, over these rows):
    the held-out scatter a saved ensemble's predictive interval adds to its interval of the mean."""
    from wordle_moe.estimator import MoEDistributionRegressor
    from wordle_moe.evaluation import oof_residuals

    return oof_residuals(MoEDistributionRegressor.from_config(config), np.asarray(X, float), np.asarray(P, float), cv=cv,
                         n_reported=n_reported, random_state=seed)


def save_ensemble(path: str | os.PathLike, model: Any, data: Any, config: Any, *,
                  residuals: np.ndarray | None = None, data_files: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Save a trained model of ``data`` (a WordleDataset) for later predictions: weights, config, feature names,
    training date range, data and feature-code hashes and held-out residuals (computed here when not given)."""
    from wordle_moe.dataset import training_date_range
    from wordle_moe.persistence import save_model

    if residuals is None:
        residuals = ensemble_residuals(data.X, data.P, config, data.n_reported, seed=int(config.seed))
    return save_model(path, model, feature_names=data.feature_names, residuals=residuals, data_files=data_files,
                      date_range=training_date_range(data), training_data=(data.X, data.P), extra=extra)


def peer_models(config: Any, quick: bool = False, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(models, calibration stand-ins): the peer models plus the MoE itself. QUICK keeps the two cheapest peers
    and a MoE with 4 replicas; a full run gives the MoE min(BOOTSTRAP_B, 20) replicas per fold. The inner-CV
    residuals of the calibrated interval come from the single model, as for the saved ensembles
    (``ensemble_residuals``) and protocol C: the evaluation scores the interval users get, and the 5 inner fits
    per fold train one network each instead of a 4-replica ensemble."""
    from wordle_moe.baselines import make_peers
    from wordle_moe.estimator import MoEDistributionRegressor

    peers = make_peers(random_state=seed, include_mlp=False)
    if quick:
        peers = {k: v for k, v in peers.items() if k in ("mean_distribution", "softmax_regression")}
    n_boot = min(int(config.bootstrap_b), 4 if quick else 20)
    stand_ins: dict[str, Any] = {}
    variants = {"moe": config}
    if not quick:  # the single MLP-softmax peer: the same network with one expert, trained the same way
        variants["single_mlp"] = config.replace(num_experts=1, top_k=1)
    for name, cfg in variants.items():
        peers[name] = MoEDistributionRegressor.from_config(cfg, n_boot)
        stand_ins[name] = MoEDistributionRegressor.from_config(cfg)
    return peers, stand_ins


def compare_with_peers(X: np.ndarray, P: np.ndarray, dates: Any, config: Any, quick: bool = False,
                       seed: int = 0, repeats_a: int = 1, progress: bool = False) -> pd.DataFrame:
    """model_comparison table: mean/std of every metric per (protocol, model), best RPS first.

    Full run: protocol A (5-fold CV, ``repeats_a`` repeats; `make bench` runs all 3 repeats)
    and protocol B, with calibrated intervals; QUICK: protocol B only, no calibration.
    """
    from wordle_moe.evaluation import evaluate_models, protocol_splits, rank_models, summarise

    models, stand_ins = peer_models(config, quick, seed)
    splits = {"B": protocol_splits("B", len(X), dates)}
    if not quick:
        splits["A"] = protocol_splits("A", len(X), n_repeats=repeats_a, random_state=seed)
    tables = [evaluate_models(models, X, P, dates, protocol=p, splits=splits[p], calibrate=not quick,
                              ci_level=config.bootstrap_ci, calibration_estimators=stand_ins, progress=progress)
              for p in sorted(splits)]
    summary = rank_models(summarise(pd.concat(tables, ignore_index=True)))
    summary.insert(2, "mode", "quick" if quick else f"full (protocol A: 5-fold x {repeats_a})")
    return summary


def grid_for_run(module: Any, full: bool) -> dict[str, list]:
    """The GRID_* grids of the module when ``full``; otherwise a real two-configuration grid around the knobs
    (TOP_K 1 vs 2, or two hidden sizes for a single expert) so grid_search_results.csv is never a stub."""
    if full:
        return {"num_experts": list(module.GRID_NUM_EXPERTS), "top_k": list(module.GRID_TOP_K),
                "hidden_size": list(module.GRID_HIDDEN_SIZE), "aux_loss_weight": list(module.GRID_AUX_COEF),
                "expert_diversity_coef": list(module.GRID_DIVERSITY_COEF)}
    if module.NUM_EXPERTS >= 2:
        return {"num_experts": [module.NUM_EXPERTS], "top_k": sorted({1, 2, module.TOP_K} & {1, 2})}
    return {"num_experts": [1], "hidden_size": sorted({module.HIDDEN_SIZE, 2 * module.HIDDEN_SIZE})}
