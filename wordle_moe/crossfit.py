"""Fitting any scikit-learn estimator on some rows, and the out-of-fold residuals of the predictive interval.

One implementation for the estimator's own calibration, the evaluation's inner cross-validation, the
saved ensembles and the forecasts. It knows nothing of the MoE: it sits below the estimator.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from wordle_moe.parallel import parallel_map

MIN_FOLD_ROWS = 4  # rows per inner fold, at least: one validation row for early stopping and three to train on


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) indices of n rows for early stopping, each sorted: round(fraction·n) validation rows,
    at least one, and at least one row left to train on."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, int(round(fraction * n))), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def fold_weights(n: int, folds: Sequence[tuple[np.ndarray, np.ndarray]], val_fraction: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 row weights (K, n) of each fold's training and early-stopping rows: the fold's training rows split
    by ``validation_split``, the rule of a lone fit (the test rows get weight 0 in both)."""
    train_w, val_w = np.zeros((len(folds), n)), np.zeros((len(folds), n))
    for r, (tr, _) in enumerate(folds):
        t, v = validation_split(len(tr), val_fraction, seed)
        train_w[r, tr[t]] = 1.0
        val_w[r, tr[v]] = 1.0
    return train_w, val_w


def accepts_fit_param(estimator: BaseEstimator, name: str) -> bool:
    """Whether ``estimator.fit`` (the final step of a Pipeline) takes a keyword ``name``."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return name in inspect.signature(final.fit).parameters


def fit_estimator(estimator: BaseEstimator, X: np.ndarray, P: np.ndarray,
                  sample_weight: np.ndarray | None = None, n_reported: np.ndarray | None = None) -> BaseEstimator:
    """Fit a bare estimator or a Pipeline, routing sample_weight (and n_reported, where accepted) to the final step."""
    params: dict[str, Any] = {}
    if sample_weight is not None:
        params["sample_weight"] = sample_weight
    if n_reported is not None and accepts_fit_param(estimator, "n_reported"):
        params["n_reported"] = n_reported  # the MoE's N_WEIGHTING; peers ignore it
    if isinstance(estimator, Pipeline):
        params = {f"{estimator.steps[-1][0]}__{k}": v for k, v in params.items()}
    return estimator.fit(X, P, **params)


def _residual_fold(fold: tuple[np.ndarray, np.ndarray], *, estimator: BaseEstimator, X: np.ndarray, P: np.ndarray,
                   sample_weight: np.ndarray | None, n_reported: np.ndarray | None) -> np.ndarray:
    """Residuals P - P_hat on one inner fold's held-out rows (a picklable task for ``parallel_map``)."""
    tr, te = fold
    w = None if sample_weight is None else sample_weight[tr]
    nr = None if n_reported is None else n_reported[tr]
    model = fit_estimator(clone(estimator), X[tr], P[tr], w, nr)
    return P[te] - model.predict(X[te])


def oof_residuals(estimator: BaseEstimator, X: np.ndarray, P: np.ndarray, *, cv: int = 5,
                  sample_weight: np.ndarray | None = None, n_reported: np.ndarray | None = None,
                  random_state: int = 0, n_jobs: int | None = None) -> np.ndarray:
    """Out-of-fold residuals P - P_hat (n, 7) of clones of ``estimator``, from a shuffled K-fold over these rows only.

    They measure how far observed shares fall from a model that never saw them: the spread the predictive
    interval adds to the bootstrap interval of the mean. K = ``cv``, fewer when the rows are too few (>= 2).
    The folds fit in ``n_jobs`` worker processes; the residuals are the same for any number.
    """
    X = np.asarray(X, dtype=float)
    P = np.asarray(P, dtype=float)
    k = max(min(int(cv), len(X) // MIN_FOLD_ROWS), 2)
    resid = np.empty_like(P)
    folds = list(KFold(n_splits=k, shuffle=True, random_state=random_state).split(X))
    # an estimator that can fit all folds at once (the MoE: one batched model, a replica per fold) says so by
    # returning their held-out predictions; any other is cloned per fold, the folds in worker processes
    batched = getattr(estimator, "fold_predictions", None)
    held_out = batched(X, P, folds, sample_weight=sample_weight, n_reported=n_reported) if batched else None
    if held_out is not None:
        fold_resids = [P[te] - pred for (_, te), pred in zip(folds, held_out)]
    else:
        task = partial(_residual_fold, estimator=estimator, X=X, P=P, sample_weight=sample_weight,
                       n_reported=n_reported)
        fold_resids = parallel_map(task, folds, n_jobs)
    for (_, te), fold_resid in zip(folds, fold_resids):
        resid[te] = fold_resid
    return resid
