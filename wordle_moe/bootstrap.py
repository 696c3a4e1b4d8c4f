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
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import MoEConfig
from .intervals import bootstrap_summary
from .metrics import distribution_metrics
from .model import MoEModel
from .parallel import chunks, parallel_map
from .streams import resample_counts
from .training import check_inputs, fit_chunk, fit_replicas, predict_replicas, resolve_config, select_penalties

# Replicas per batched training task (at most): B replicas train as ceil(B / CHUNK) near-equal tasks spread over
# the worker processes, then join into one batched model. The chunks depend on B alone, never on the number of
# workers, so the ensemble is byte-identical for any N_JOBS (tests/test_parallel.py). Batch mates change a
# replica only in the float32 rounding of padded row sums (~1e-8: the same replica as in one batch of B).
BOOTSTRAP_CHUNK = 25

__all__ = ["resample_counts", "oob_weights", "fit_bootstrap", "fit_bootstrap_folds", "predict_bootstrap",
           "bootstrap_predict", "bootstrap_summary", "bootstrap_evaluate"]


def oob_weights(counts: np.ndarray) -> np.ndarray:
    """Out-of-bag validation weights; a replica with no OOB row (tiny n) validates on all rows."""
    oob = (counts == 0).astype(float)
    oob[oob.sum(axis=1) == 0] = 1.0
    return oob


def join_replicas(models: list[MoEModel]) -> MoEModel:
    """One batched model holding the replicas of ``models`` in order (each a batched model of the same config)."""
    if len(models) == 1:
        return models[0]
    first = models[0]
    joined = MoEModel(first.n_features, first.config, replicas=sum(m.replicas for m in models),
                      replica_ids=[i for m in models for i in m.replica_ids])
    states = [m.state_dict() for m in models]
    joined.load_state_dict({k: torch.cat([st[k] for st in states]) for k in states[0]})
    if all(getattr(m, "start_gate_", None) is not None for m in models):  # each replica's gate before training
        joined.start_gate_ = {k: torch.cat([m.start_gate_[k] for m in models]) for k in first.start_gate_}
    return joined.eval()


def take_replicas(model: MoEModel, rows: list[int]) -> MoEModel:
    """A batched model of the replicas at ``rows`` of ``model`` (the inverse of join_replicas)."""
    part = MoEModel(model.n_features, model.config, replicas=len(rows),
                    replica_ids=[model.replica_ids[r] for r in rows])
    index = torch.as_tensor(rows)
    part.load_state_dict({k: v[index] for k, v in model.state_dict().items()})
    if getattr(model, "start_gate_", None) is not None:
        part.start_gate_ = {k: v[index] for k, v in model.start_gate_.items()}
    return part.eval()


def fit_bootstrap(X_train: Any, P_train: Any, *, config: MoEConfig | None = None, B: int | None = None,
                  seed: int | None = None, n_reported: Any | None = None, sample_weight: Any | None = None,
                  batched: bool = True, progress: bool = False, n_jobs: int | None = None,
                  extra: tuple[np.ndarray, np.ndarray] | None = None, **knobs: Any
                  ) -> tuple[list[MoEModel], dict[str, Any]]:
    """Train B bootstrap replicas; returns ([one batched model] or [B sequential models], info).

    Batched: chunks of BOOTSTRAP_CHUNK replicas train in ``n_jobs`` worker processes and join into one model.
    ``extra`` = (train weights, validation weights), each (n,): one more model (replica id 0, as a lone fit's) trained
    in the last chunk, for the price of one more replica there; it comes back as ``info["extra_model"]`` with its
    stopping step ``info["extra_best_epoch"]`` (batched only), and the last chunk's log averages it in.
    """
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
    extra_info = {}
    if batched:
        pieces, ids = chunks(B, BOOTSTRAP_CHUNK), np.arange(B)
        if extra is not None:   # row B of the weights, in the last chunk, with replica id 0
            train_w = np.vstack([train_w, np.asarray(extra[0], dtype=float)[None]])
            val_w = np.vstack([val_w, np.asarray(extra[1], dtype=float)[None]])
            pieces, ids = pieces[:-1] + [range(pieces[-1].start, B + 1)], np.append(ids, 0)
        task = partial(fit_chunk, X=X, P=P, config=cfg.replace(seed=seed), train_weight=train_w, val_weight=val_w,
                       n_reported=n_reported, replica_ids=ids)
        parts = parallel_map(task, pieces, n_jobs, desc="bootstrap", progress=progress)
        if extra is not None:
            last, inf = parts[-1]
            k = last.replicas - 1
            extra_info = {"extra_model": take_replicas(last, [k]), "extra_best_epoch": int(inf["best_epochs"][k])}
            parts[-1] = (take_replicas(last, list(range(k))), {**inf, "best_epochs": inf["best_epochs"][:k]})
        models = [join_replicas([m for m, _ in parts])]
        best = np.concatenate([inf["best_epochs"] for _, inf in parts])
        # one training log per chunk (replica means per epoch), labelled with its first replica
        history = pd.concat([inf["history"].assign(first_replica=piece.start)
                             for piece, (_, inf) in zip(pieces, parts)], ignore_index=True)
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
            "batched": batched, "config": cfg, "history": history, "penalty_cv": penalty_table, **extra_info}
    return models, info


def fit_bootstrap_folds(X: Any, P: Any, folds: list[tuple[np.ndarray, np.ndarray]], *, config: MoEConfig, B: int,
                        seed: int, n_reported: Any | None = None) -> MoEModel:
    """One B-replica bootstrap per fold's training rows, every fold's replicas trained as ONE batched model: replicas
    f·B .. f·B+B−1 are fold f's, each the replica ``fit_bootstrap(X[train_f], P[train_f], B=B, seed=seed)`` trains
    (same resample, replica id, initial weights; equal up to float rounding), at a fraction of the cost of F
    separate small fits. The ridge strengths are chosen per fold by the inner CV on that fold's training rows
    (nested), then given to the fold's replicas. Needs N_WEIGHTING="none" (else each fold's weights would be
    scaled over all rows): use ``fit_bootstrap`` per fold there."""
    cfg = resolve_config(config)
    if cfg.n_weighting != "none" and n_reported is not None:
        raise ValueError("fit_bootstrap_folds needs N_WEIGHTING='none'; fit each fold with fit_bootstrap instead")
    X, P = check_inputs(X, P, "train")
    n, F = len(X), len(folds)
    train_w, val_w = np.zeros((F * B, n)), np.zeros((F * B, n))
    penalties: dict[str, list[float]] = {"base": [], "delta": [], "clip": []}
    for f, (tr, _) in enumerate(folds):
        counts = resample_counts(len(tr), B, seed)
        train_w[f * B:(f + 1) * B, tr] = counts
        val_w[f * B:(f + 1) * B, tr] = oob_weights(counts)
        nr = None if n_reported is None else np.asarray(n_reported)[tr]
        chosen, _ = select_penalties(X[tr], P[tr], cfg.replace(seed=seed), n_reported=nr)
        penalties["base"] += [chosen.base_l2] * B
        penalties["delta"] += [chosen.delta_l2] * B
        penalties["clip"] += [chosen.input_clip] * B
    model, _ = fit_replicas(X, P, X, P, cfg.replace(seed=seed), train_weight=train_w, val_weight=val_w,
                            n_reported=n_reported, n_reported_val=n_reported, replica_ids=list(range(B)) * F,
                            penalties={k: np.asarray(v) for k, v in penalties.items()})
    return model


def predict_bootstrap(models: list[MoEModel], X_pred: Any) -> np.ndarray:
    """Every replica's prediction stacked: (B, n_pred, 7)."""
    return np.concatenate([predict_replicas(m, X_pred) for m in models], axis=0)


def bootstrap_predict(X_train: Any, P_train: Any, X_pred: Any, *, config: MoEConfig | None = None,
                      B: int | None = None, seed: int | None = None, n_reported: Any | None = None,
                      sample_weight: Any | None = None, batched: bool = True, progress: bool = False,
                      n_jobs: int | None = None, **knobs: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Train B bootstrap replicas and predict X_pred: (P_boot (B, n_pred, 7), info).

    B and seed default to config.bootstrap_b and config.seed. ``batched=False`` is the sequential
    reference (a loop of R=1 trainings with identical streams and resamples).
    """
    models, info = fit_bootstrap(X_train, P_train, config=config, B=B, seed=seed, n_reported=n_reported,
                                 sample_weight=sample_weight, batched=batched, progress=progress, n_jobs=n_jobs,
                                 **knobs)
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
