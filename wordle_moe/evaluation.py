"""Protocols A and B: every model scored on the same folds, plus interval coverage.

Protocol A: 5-fold cross-validation repeated 3 times (seed 0) over the observed words.
Protocol B (forecasting): train on words played before 2022-10-01, test on the rest.
Protocol C (forecasting the WordleBot population): train on every MCM day and every row of the other
populations dated before 2024-07-01; test on the WordleBot normal-mode days from 2024-07-01 (184 days).
Rows of any population on a test day (e.g. the same day in hard mode) never train.
Every model is cloned and fitted on the training rows of a fold only; scalers live inside
Pipelines or inside the estimator, and interval calibration uses only training rows
(an inner cross-validation), so test folds are never looked at before scoring.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import RepeatedKFold

from wordle_moe import metrics
from wordle_moe.baselines import make_peers
from wordle_moe.config import MoEConfig
from wordle_moe.crossfit import fit_estimator, oof_residuals, validation_split
from wordle_moe.estimator import residual_model
from wordle_moe.intervals import predictive_interval
from wordle_moe.parallel import parallel_map

PROTOCOLS = ("A", "B")  # the MCM-only protocols; "C" needs the populations of a multi-source dataset
FORECAST_CUTOFF = pd.Timestamp("2022-10-01")
WORDLEBOT_CUTOFF = pd.Timestamp("2024-07-01")  # protocol C: test on the WordleBot days from here (184 days)
WORDLEBOT_TEST_POPULATION = "wordlebot"
SUMMARY_METRICS = ["mae_pp", "rps", "js", "kl", "abs_delta_expected_tries"]
EXTRA_METRICS = ["cosine", "max_error_pp", "r2"]
COVERAGE_COLUMNS = ["coverage_bootstrap", "coverage_calibrated", "width_bootstrap_pp", "width_calibrated_pp"]


def protocol_splits(protocol: str, n: int, dates: Any = None, *, n_splits: int = 5, n_repeats: int = 3,
                    random_state: int = 0, cutoff: pd.Timestamp | None = None, populations: Any = None
                    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The (fold, train_idx, test_idx) triples of protocol A (repeated K-fold), B (date cut-off) or C
    (WordleBot forecasting: needs ``populations``)."""
    protocol = str(protocol).upper()
    if protocol == "C":
        return [(0, *protocol_c_split(dates, populations, WORDLEBOT_CUTOFF if cutoff is None else cutoff))]
    cutoff = FORECAST_CUTOFF if cutoff is None else cutoff
    if protocol == "A":
        splitter = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
        return [(i, tr, te) for i, (tr, te) in enumerate(splitter.split(np.arange(n)))]
    if protocol == "B":
        if dates is None:
            raise ValueError("protocol B needs the dates of the words")
        d = pd.to_datetime(pd.Series(np.asarray(dates))).to_numpy()
        if len(d) != n:
            raise ValueError(f"dates has {len(d)} entries but there are {n} rows")
        before = d < np.datetime64(cutoff)
        if before.all() or not before.any():
            raise ValueError(f"protocol B needs words on both sides of {cutoff.date()}")
        return [(0, np.flatnonzero(before), np.flatnonzero(~before))]
    raise ValueError(f"unknown protocol {protocol!r}: use one of {(*PROTOCOLS, 'C')}")


def protocol_c_split(dates: Any, populations: Any, cutoff: pd.Timestamp = WORDLEBOT_CUTOFF
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx) of protocol C: test = WordleBot normal-mode rows on or after ``cutoff``;
    train = every row before ``cutoff`` (all populations), so no test day's rows of any mode train."""
    if dates is None or populations is None:
        raise ValueError("protocol C needs the dates and populations of the rows (a multi-source dataset)")
    d = pd.to_datetime(pd.Series(np.asarray(dates))).to_numpy()
    pop = np.asarray(populations)
    if len(d) != len(pop):
        raise ValueError(f"dates has {len(d)} entries but populations has {len(pop)}")
    after = d >= np.datetime64(pd.Timestamp(cutoff))
    test = np.flatnonzero(after & (pop == WORDLEBOT_TEST_POPULATION))
    train = np.flatnonzero(~after)
    if not len(test) or not (pop[train] == WORDLEBOT_TEST_POPULATION).any():
        raise ValueError(f"protocol C needs WordleBot days on both sides of {pd.Timestamp(cutoff).date()}")
    return train, test


def interval_coverage(P_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of observed (word, bucket) values inside [low, high]."""
    P_true = np.asarray(P_true, dtype=float)
    return float(((P_true >= low) & (P_true <= high)).mean())


def has_interval(model: BaseEstimator) -> bool:
    """True when the model can give a model-mean interval (MoE estimators only with n_bootstrap > 0)."""
    if not hasattr(model, "predict_interval"):
        return False
    return bool(getattr(model, "n_bootstrap", 1))


def _mean_interval(model: BaseEstimator, X: np.ndarray, ci_level: float) -> tuple[np.ndarray, ...]:
    """(mean, low, high): the bootstrap interval of the mean (the calibrated one is built here from inner-CV residuals)."""
    from wordle_moe.estimator import supports_interval_kind

    if supports_interval_kind(model):
        return model.predict_interval(X, ci_level=ci_level, kind="mean")
    return model.predict_interval(X, ci_level=ci_level)


def _fold_scores(P_true: np.ndarray, P_pred: np.ndarray) -> dict[str, float]:
    """The evaluation metrics (and a few extra) for one fold."""
    scores = metrics.distribution_metrics(P_true, P_pred)
    return {k: scores[k] for k in SUMMARY_METRICS + EXTRA_METRICS}


def evaluate_fold(estimator: BaseEstimator, X: np.ndarray, P: np.ndarray, train: np.ndarray, test: np.ndarray, *,
                  sample_weight: np.ndarray | None = None, n_reported: np.ndarray | None = None,
                  ci_level: float = 0.95, calibrate: bool = True, inner_cv: int = 5,
                  calibration_estimator: BaseEstimator | None = None,
                  seed: int = 0) -> tuple[dict[str, float], np.ndarray]:
    """Fit a clone on ``train``, score it on ``test``; coverage columns when it has ``predict_interval``."""
    t0 = time.perf_counter()
    w_tr = None if sample_weight is None else sample_weight[train]
    nr_tr = None if n_reported is None else np.asarray(n_reported)[train]
    model = fit_estimator(clone(estimator), X[train], P[train], w_tr, nr_tr)
    fit_seconds = time.perf_counter() - t0
    row: dict[str, float] = {c: np.nan for c in COVERAGE_COLUMNS}
    if has_interval(model):
        mean, low, high = _mean_interval(model, X[test], ci_level)
        row["coverage_bootstrap"] = interval_coverage(P[test], low, high)
        row["width_bootstrap_pp"] = float(100 * (high - low).mean())
        if calibrate:
            # residual spread measured out-of-fold INSIDE the training rows: the test fold is never used
            inner = calibration_estimator if calibration_estimator is not None else estimator
            resid = oof_residuals(inner, X[train], P[train], cv=inner_cv, sample_weight=w_tr, n_reported=nr_tr,
                                  random_state=seed)
            lo_c, hi_c = predictive_interval(mean, low, high, resid, ci_level)
            row["coverage_calibrated"] = interval_coverage(P[test], lo_c, hi_c)
            row["width_calibrated_pp"] = float(100 * (hi_c - lo_c).mean())
        P_pred = mean
    else:
        P_pred = model.predict(X[test])
    row.update(_fold_scores(P[test], P_pred))
    row.update(n_train=len(train), n_test=len(test), fit_seconds=fit_seconds,
               seconds=time.perf_counter() - t0)
    return row, P_pred


def _tasks(models: Mapping[str, BaseEstimator], splits: Mapping[str, list]
           ) -> list[tuple[str, str, int, np.ndarray, np.ndarray]]:
    """Every (protocol, model, fold), in table order."""
    return [(protocol, name, fold, tr, te) for protocol, folds in splits.items() for fold, tr, te in folds
            for name in models]


def _fold_task(task: tuple[str, str, int, np.ndarray, np.ndarray], *, models: Mapping[str, BaseEstimator],
               calibration_estimators: Mapping[str, BaseEstimator], **kwargs: Any) -> tuple[dict[str, float], np.ndarray]:
    """One (protocol, model, fold) of ``evaluate_models``: a picklable task for ``parallel_map``."""
    _, name, fold, tr, te = task
    return evaluate_fold(models[name], train=tr, test=te, calibration_estimator=calibration_estimators.get(name), seed=fold,
                         **kwargs)


def evaluate_models(models: Mapping[str, BaseEstimator], X: np.ndarray, P: np.ndarray, dates: Any = None,
                    protocol: str = "A", *, sample_weight: np.ndarray | None = None,
                    n_reported: np.ndarray | None = None, ci_level: float = 0.95,
                    calibrate: bool = True, inner_cv: int = 5,
                    calibration_estimators: Mapping[str, BaseEstimator] | None = None,
                    splits: list | Mapping[str, list] | None = None, words: Any = None,
                    return_predictions: bool = False, progress: bool = True, n_jobs: int | None = None
                    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Score every model on the same folds of ``protocol``; one row per (model, protocol, fold).

    ``splits`` may also map several protocols to their folds ({"A": [...], "B": [...]}): all their fits then share
    one pool of workers. ``n_reported`` (reported results per word) reaches estimators whose fit accepts it (the
    MoE's N_WEIGHTING). ``calibration_estimators`` may give a cheaper stand-in per model for the inner-CV residuals
    (e.g. fewer bootstrap replicas); by default the model itself is used.
    With ``return_predictions`` also returns the out-of-fold predictions in long form.
    The (protocol, model, fold) fits run in ``n_jobs`` worker processes (default: ``parallel.n_jobs_in_force``),
    the dearest first (the line-up lists the cheapest models first); the table is the same for any number of workers.
    """
    X = np.asarray(X, dtype=float)
    P = np.asarray(P, dtype=float)
    if X.ndim != 2 or P.shape != (len(X), 7):
        raise ValueError(f"need X (n, d) and P (n, 7); got {X.shape} and {P.shape}")
    if not models:
        raise ValueError("no models to evaluate")
    protocol = str(protocol).upper()
    if not isinstance(splits, Mapping):
        splits = {protocol: splits if splits is not None else protocol_splits(protocol, len(X), dates)}
    calibration_estimators = dict(calibration_estimators or {})
    rows, preds = [], []
    tasks = _tasks(models, splits)
    rank = {name: i for i, name in enumerate(reversed(list(models)))}
    order = sorted(range(len(tasks)), key=lambda i: rank[tasks[i][1]])     # stable: table order within a model
    task = partial(_fold_task, models=dict(models), calibration_estimators=calibration_estimators, X=X, P=P,
                   sample_weight=sample_weight, n_reported=n_reported, ci_level=ci_level, calibrate=calibrate,
                   inner_cv=inner_cv)
    done = parallel_map(task, [tasks[i] for i in order], n_jobs, desc=f"protocol {'+'.join(splits)}",
                        progress=progress)
    results = [None] * len(tasks)
    for i, result in zip(order, done):
        results[i] = result
    for (prot, name, fold, _, te), (row, P_pred) in zip(tasks, results):
        rows.append({"model": name, "protocol": prot, "fold": fold, **row})
        if return_predictions:
            frame = pd.DataFrame(P_pred, columns=[f"pred_{k}" for k in range(7)])
            frame.insert(0, "row", te)
            if words is not None:
                frame.insert(1, "word", np.asarray(words)[te])
            preds.append(frame.assign(model=name, protocol=prot, fold=fold))
    table = pd.DataFrame(rows)
    if return_predictions:
        return table, pd.concat(preds, ignore_index=True)
    return table


def summarise(table: pd.DataFrame, metrics_: list[str] | None = None) -> pd.DataFrame:
    """Mean and std over folds per (protocol, model): columns ``<metric>_mean``, ``<metric>_std``, n_folds."""
    cols = metrics_ or [c for c in SUMMARY_METRICS + EXTRA_METRICS + COVERAGE_COLUMNS + ["fit_seconds"]
                        if c in table.columns]
    grouped = table.groupby(["protocol", "model"], sort=False)
    mean = grouped[cols].mean().add_suffix("_mean")
    std = grouped[cols].std(ddof=1).add_suffix("_std")
    out = pd.concat([mean, std], axis=1)
    ordered = [f"{c}_{s}" for c in cols for s in ("mean", "std")]
    out = out[ordered]
    out.insert(0, "n_folds", grouped.size())
    return out.reset_index()


def rank_models(summary: pd.DataFrame, metric: str = "rps") -> pd.DataFrame:
    """The summary sorted by mean ``metric`` within each protocol, best first."""
    return summary.sort_values(["protocol", f"{metric}_mean"]).reset_index(drop=True)


def forecast_split(dates: Any, seed: int = 0, val_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """Protocol B indices (train = words before 2022-10-01, test = the rest), with a seeded validation
    subset of the training words for early stopping: dict(train, val, test)."""
    dates = pd.to_datetime(pd.Series(np.asarray(dates)))
    (_, train, test), = protocol_splits("B", len(dates), dates)
    tr, va = validation_split(len(train), val_fraction, seed)
    return {"train": train[tr], "val": train[va], "test": test}


def peer_models(config: MoEConfig, quick: bool = False, seed: int = 0
                ) -> tuple[dict[str, BaseEstimator], dict[str, BaseEstimator]]:
    """(models, calibration stand-ins): the peer line-up with the MoE itself. QUICK keeps the two cheapest peers
    and a MoE with 4 replicas; a full run gives the MoE min(BOOTSTRAP_B, 20) replicas per fold. The inner-CV
    residuals of the calibrated interval come from the single model, as for the saved ensembles
    (``estimator.residual_model``) and protocol C: the evaluation scores the interval users get, and the inner
    fits train one model each instead of an ensemble."""
    n_boot = min(int(config.bootstrap_b), 4 if quick else 20)
    models = make_peers(config, quick, random_state=seed, moe_replicas=n_boot, mlp_replicas=n_boot)
    stand_ins = {"moe": residual_model(config)}
    if "single_mlp" in models:
        stand_ins["single_mlp"] = clone(models["single_mlp"]).set_params(n_bootstrap=0)
    return models, stand_ins


def compare_with_peers(X: np.ndarray, P: np.ndarray, dates: Any, config: Any, quick: bool = False,
                       seed: int = 0, repeats_a: int = 1, progress: bool = False) -> pd.DataFrame:
    """model_comparison table: mean/std of every metric per (protocol, model), best RPS first.

    Full run: protocol A (5-fold CV, ``repeats_a`` repeats; `make bench` runs all 3 repeats)
    and protocol B, with calibrated intervals; QUICK: protocol B only, no calibration.
    """
    models, stand_ins = peer_models(config, quick, seed)
    splits = {"B": protocol_splits("B", len(X), dates)}
    if not quick:
        splits["A"] = protocol_splits("A", len(X), n_repeats=repeats_a, random_state=seed)
    # every protocol's fits in one pool of workers (the dearest first), in the table order of before
    table = evaluate_models(models, X, P, dates, splits={p: splits[p] for p in sorted(splits)}, calibrate=not quick,
                            ci_level=config.bootstrap_ci, calibration_estimators=stand_ins, progress=progress)
    summary = rank_models(summarise(table))
    labels = {"A": f"protocol A: 5-fold CV x {repeats_a}",  # each row carries its own protocol's label
              "B": f"protocol B: words before {FORECAST_CUTOFF.date()} train, later words test"}
    summary.insert(2, "mode", [f"{'quick' if quick else 'full'}, {labels[p]}" for p in summary["protocol"]])
    return summary
