"""Scores for predicted 7-bucket distributions against observed ones.

Every per-word metric takes arrays of shape (n, 7) (rows are probability vectors) and
returns shape (n,). ``distribution_metrics`` averages them into the evaluation table.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-9
# Expected tries counts a failure (bucket X) as 7 tries, the usual convention.
TRY_VALUES = np.arange(1, 8, dtype=float)


def _as_2d(P: np.ndarray) -> np.ndarray:
    P = np.asarray(P, dtype=float)
    return P[None, :] if P.ndim == 1 else P


def mae_pp(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """Mean absolute error over the 7 buckets, in percentage points."""
    return 100.0 * np.abs(_as_2d(P_true) - _as_2d(P_pred)).mean(axis=1)


def max_error_pp(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """Largest absolute bucket error, in percentage points."""
    return 100.0 * np.abs(_as_2d(P_true) - _as_2d(P_pred)).max(axis=1)


def rps(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """Ranked probability score: sum_k (F_k - G_k)^2 / 6 over the cumulative distributions."""
    F = np.cumsum(_as_2d(P_pred), axis=1)
    G = np.cumsum(_as_2d(P_true), axis=1)
    return ((F - G) ** 2)[:, :-1].sum(axis=1) / 6.0


def kl_divergence(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """KL(P_true || P_pred) in nats; predictions are clipped at 1e-9 to stay finite."""
    p = _as_2d(P_true)
    q = np.clip(_as_2d(P_pred), EPS, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    return terms.sum(axis=1)


def js_divergence(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits (0..1); the square of scipy's ``jensenshannon(base=2)``."""
    p, q = _as_2d(P_true), _as_2d(P_pred)
    m = 0.5 * (p + q)

    def _kl2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log2(a / np.where(b > 0, b, 1.0)), 0.0).sum(axis=1)

    return 0.5 * _kl2(p, m) + 0.5 * _kl2(q, m)


def expected_tries(P: np.ndarray) -> np.ndarray:
    """Expected number of tries, counting a failure as 7."""
    return _as_2d(P) @ TRY_VALUES


def abs_delta_expected_tries(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """|E[tries | predicted] - E[tries | observed]|."""
    return np.abs(expected_tries(P_pred) - expected_tries(P_true))


def cosine_similarity(P_true: np.ndarray, P_pred: np.ndarray) -> np.ndarray:
    """Cosine of the angle between observed and predicted vectors."""
    p, q = _as_2d(P_true), _as_2d(P_pred)
    return (p * q).sum(axis=1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(q, axis=1) + EPS)


def r2_score(P_true: np.ndarray, P_pred: np.ndarray) -> float:
    """Coefficient of determination over all buckets, each bucket against its own mean."""
    p, q = _as_2d(P_true), _as_2d(P_pred)
    ss_res = ((p - q) ** 2).sum()
    ss_tot = ((p - p.mean(axis=0)) ** 2).sum()
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


PER_WORD_METRICS = {
    "mae_pp": mae_pp,
    "rps": rps,
    "js": js_divergence,
    "kl": kl_divergence,
    "abs_delta_expected_tries": abs_delta_expected_tries,
    "cosine": cosine_similarity,
    "max_error_pp": max_error_pp,
}


def per_word_metrics(P_true: np.ndarray, P_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-word metric, each an array of shape (n,)."""
    return {name: fn(P_true, P_pred) for name, fn in PER_WORD_METRICS.items()}


def distribution_metrics(P_true: np.ndarray, P_pred: np.ndarray) -> dict[str, float]:
    """Per-word metrics averaged over words, plus R² over the whole matrix."""
    out = {name: float(v.mean()) for name, v in per_word_metrics(P_true, P_pred).items()}
    out["r2"] = r2_score(P_true, P_pred)
    return out
