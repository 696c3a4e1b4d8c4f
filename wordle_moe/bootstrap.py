"""Bootstrap uncertainty: B replicas on resamples, trained together as ONE batched model.

Replica r of a run with seed s owns the random streams ``SeedSequence(s).spawn(B)[r]`` (streams.py):
its multinomial resample (used as row weights), its initial weights, its dropout masks and its router
noise. It trains to convergence of its penalised objective (TRAINING="converged", ridge strengths chosen
once by inner CV on the training rows, shared by all replicas) or stops early on its own out-of-bag rows.
Replicas share nothing but the optimizer call (losses are summed, AdamW is element-wise), so replica r is
the same in a batch of 2 or of 200 and equals a sequential R=1 run with the same seed and replica id
(``batched=False`` runs that reference path), and runs with seeds s and s+1 share no replica.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .config import MoEConfig
from .intervals import bootstrap_summary
from .metrics import distribution_metrics
from .model import MoEModel
from .streams import resample_counts
from .training import check_inputs, fit_replicas, predict_replicas, resolve_config, select_penalties

__all__ = ["resample_counts", "oob_weights", "fit_bootstrap", "predict_bootstrap", "bootstrap_predict",
           "bootstrap_summary", "bootstrap_evaluate"]


def oob_weights(counts: np.ndarray) -> np.ndarray:
    """Out-of-bag validation weights; a replica with no OOB row (tiny n) validates on all rows."""
    oob = (counts == 0).astype(float)
    oob[oob.sum(axis=1) == 0] = 1.0
    return oob


def fit_bootstrap(X_train: Any, P_train: Any, *, config: MoEConfig | None = None, B: int | None = None,
                  seed: int | None = None, n_reported: Any | None = None, sample_weight: Any | None = None,
                  batched: bool = True, progress: bool = False, **knobs: Any
                  ) -> tuple[list[MoEModel], dict[str, Any]]:
    """Train B bootstrap replicas; returns ([one batched model] or [B sequential models], info)."""
    cfg = resolve_config(config, **knobs)
    B = cfg.bootstrap_b if B is None else int(B)
    seed = cfg.seed if seed is None else int(seed)
    if B < 1:
        raise ValueError(f"BOOTSTRAP_B must be >= 1, got {B}")
    X, P = check_inputs(X_train, P_train, "train")
    n = len(X)
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if sw.shape != (n,) or np.any(sw < 0):
        raise ValueError(f"sample_weight must be non-negative with shape ({n},)")
    counts = resample_counts(n, B, seed)
    train_w, val_w = counts * sw, oob_weights(counts) * sw
    start = time.perf_counter()
    # one choice of the ridge strengths for every replica, from the training rows only (no-op unless converged)
    cfg, penalty_table = select_penalties(X, P, cfg.replace(seed=seed), sample_weight=sw, n_reported=n_reported)
    if batched:
        model, fit_info = fit_replicas(X, P, X, P, cfg.replace(seed=seed), train_weight=train_w, val_weight=val_w,
                                       n_reported=n_reported, n_reported_val=n_reported,
                                       replica_ids=list(range(B)), progress=progress)
        models, best = [model], fit_info["best_epochs"]
        history = fit_info["history"]
    else:
        models, best, history = [], [], None
        rng = range(B)
        if progress:
            from tqdm.auto import tqdm
            rng = tqdm(rng, desc="bootstrap (sequential)")
        for r in rng:
            m, inf = fit_replicas(X, P, X, P, cfg.replace(seed=seed), train_weight=train_w[r:r + 1],
                                  val_weight=val_w[r:r + 1], n_reported=n_reported, n_reported_val=n_reported,
                                  replica_ids=[r], progress=False)
            models.append(m)
            best.append(inf["best_epochs"][0])
        best = np.asarray(best)
    info = {"counts": counts, "best_epochs": best, "seconds": time.perf_counter() - start, "B": B, "seed": seed,
            "batched": batched, "config": cfg, "history": history, "penalty_cv": penalty_table}
    return models, info


def predict_bootstrap(models: list[MoEModel], X_pred: Any) -> np.ndarray:
    """Every replica's prediction stacked: (B, n_pred, 7)."""
    return np.concatenate([predict_replicas(m, X_pred) for m in models], axis=0)


def bootstrap_predict(X_train: Any, P_train: Any, X_pred: Any, *, config: MoEConfig | None = None,
                      B: int | None = None, seed: int | None = None, n_reported: Any | None = None,
                      sample_weight: Any | None = None, batched: bool = True, progress: bool = False,
                      **knobs: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Train B bootstrap replicas and predict X_pred: (P_boot (B, n_pred, 7), info).

    B and seed default to config.bootstrap_b and config.seed. ``batched=False`` is the sequential
    reference (a loop of R=1 trainings with identical streams and resamples).
    """
    models, info = fit_bootstrap(X_train, P_train, config=config, B=B, seed=seed, n_reported=n_reported,
                                 sample_weight=sample_weight, batched=batched, progress=progress, **knobs)
    X_pred = np.asarray(X_pred, dtype=np.float64)
    if X_pred.ndim != 2 or X_pred.shape[1] != np.asarray(X_train).shape[1]:
        raise ValueError(f"X_pred must have shape (n, {np.asarray(X_train).shape[1]}), got {X_pred.shape}")
    info["models"] = models
    return predict_bootstrap(models, X_pred), info


def bootstrap_evaluate(P_boot: np.ndarray, P_true: np.ndarray, ci_level: float = 0.95) -> dict[str, Any]:
    """Metrics of the bootstrap mean, mean interval width and coverage of the observed values."""
    s = bootstrap_summary(P_boot, ci_level)
    P_true = np.asarray(P_true, dtype=float)
    inside = (P_true >= s["low"]) & (P_true <= s["high"])
    out = distribution_metrics(P_true, s["mean"])
    out.update(ci_level=float(ci_level), mean_interval_width=float((s["high"] - s["low"]).mean()),
               coverage=float(inside.mean()), coverage_per_bucket=inside.mean(axis=0).tolist())
    return out
