"""Replica disagreement: when the bootstrap replicas disagree on a word more than on the observed words.

A word far from the training words (rare letters, an input outside the range seen in training) can split
the replicas: each resample extrapolates differently. The interval then widens honestly, but the user should
also be told why. The reference is the spread on the observed words: per bucket, the ``QUANTILE`` quantile over
those words of the replicas' standard deviation, stored with a saved model. numpy only (a leaf module).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

QUANTILE = 0.99  # a new word is flagged when a bucket's replica std exceeds this quantile on the observed words


def replica_std(P_boot: np.ndarray) -> np.ndarray:
    """Standard deviation over replicas (n, 7); zeros for a single replica."""
    P_boot = np.asarray(P_boot, dtype=float)
    if P_boot.ndim != 3:
        raise ValueError(f"P_boot must be (R, n, 7), got {P_boot.shape}")
    return P_boot.std(axis=0, ddof=1) if len(P_boot) > 1 else np.zeros(P_boot.shape[1:])


def reference_stats(P_boot: np.ndarray, X: np.ndarray, quantile: float = QUANTILE) -> dict[str, Any]:
    """What a new word is compared with, from the replicas' predictions on the observed words ``X`` (n, d):
    the per-bucket ``quantile`` of the replica std and each input's training range (JSON-able)."""
    X = np.asarray(X, dtype=float)
    std = replica_std(P_boot)
    return {"quantile": float(quantile), "n_words": int(len(X)), "replicas": int(np.shape(P_boot)[0]),
            "std_threshold": np.quantile(std, quantile, axis=0).round(8).tolist(),
            "feature_min": np.nanmin(X, axis=0).tolist(), "feature_max": np.nanmax(X, axis=0).tolist()}


def disagreeing_rows(P_boot: np.ndarray, threshold: Sequence[float]) -> np.ndarray:
    """Boolean (n,): rows where some bucket's replica std exceeds its threshold."""
    return (replica_std(P_boot) > np.asarray(threshold, dtype=float)).any(axis=1)


def inputs_outside(x: np.ndarray, names: Sequence[str], stats: Mapping[str, Any]) -> list[tuple[str, float, float, float]]:
    """(name, value, training min, training max) of the inputs of one row ``x`` outside the training range,
    farthest first (distance in units of the range's width)."""
    x = np.asarray(x, dtype=float)
    lo, hi = np.asarray(stats["feature_min"], float), np.asarray(stats["feature_max"], float)
    width = np.where(hi > lo, hi - lo, 1.0)
    beyond = np.maximum(lo - x, x - hi) / width
    order = np.argsort(-beyond, kind="stable")
    return [(names[j], float(x[j]), float(lo[j]), float(hi[j])) for j in order if beyond[j] > 1e-9]


def describe(word: str, when: str, P_boot_row: np.ndarray, x: np.ndarray, names: Sequence[str],
             stats: Mapping[str, Any]) -> str | None:
    """A one-line warning when the replicas disagree on one row (P_boot_row (R, 7)) beyond the reference, else None."""
    from .paths import BUCKET_LABELS

    std = replica_std(np.asarray(P_boot_row, dtype=float)[:, None, :])[0]
    thr = np.asarray(stats["std_threshold"], dtype=float)
    over = np.flatnonzero(std > thr)
    if not len(over):
        return None
    worst = over[np.argmax(std[over] - thr[over])]
    q = int(round(100 * float(stats.get("quantile", QUANTILE))))
    outside = inputs_outside(x, names, stats)
    why = ("inputs outside the training range: " + ", ".join(f"{n}={v:.3g} (training {lo:.3g}..{hi:.3g})"
                                                             for n, v, lo, hi in outside[:4])
           + (f" and {len(outside) - 4} more" if len(outside) > 4 else "")) if outside else \
        "every input lies inside the training range (an unusual combination of them)"
    return (f"warning: the replicas disagree on {word.upper()} ({when}) more than on {q}% of the observed words: "
            f"bucket {BUCKET_LABELS[worst]} replica std {100 * std[worst]:.1f} pp against {100 * thr[worst]:.1f} pp "
            f"({len(over)} bucket(s) above their {q}th percentile); {why}. Treat the mean with care: its interval "
            "is wide for this reason")
