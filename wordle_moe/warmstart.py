"""Warm start of each expert's linear skip path from the softmax-regression solution (L-BFGS), per replica.

With EXPERT_SKIP each expert is softmax(z·W_skip + MLP(z)), z the replica's standardised, clipped inputs.
Adam from a zero start stops early (validation patience) before the linear part reaches the optimum
L-BFGS finds for the same model (measured on the MCM words: RPS 2.93e-3 against 2.74e-3). This module
solves the L2-penalised soft-label softmax regression on every replica's own rows (bootstrap counts as
weights) in ONE L-BFGS run over all replicas (the objective is a sum of independent per-replica terms,
so its optimum is every replica's optimum), then sets every expert's skip weights to it, the MLP's output
bias to its intercept and the MLP's output layer to zero: each expert starts AS the linear model, and
training only adds what the nonlinear part and the routing can improve on it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import log_softmax

from .paths import N_BUCKETS


def softmax_regressions(Z: np.ndarray, P: np.ndarray, weight: np.ndarray, alpha: float = 1e-2,
                        max_iter: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(W (R, d, 7), b (R, 7)): for each replica r the minimiser of
    Σ_n w_rn·CE(P_n, softmax(Z_rn W_r + b_r)) / Σ_n w_rn + alpha/2 ||W_r||²  (intercept not penalised).

    Z (R, n, d) per-replica inputs, P (n, 7) soft labels, weight (R, n) non-negative row weights.
    """
    Z = np.asarray(Z, dtype=np.float64)
    R, n, d = Z.shape
    P = np.asarray(P, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    w = w / np.clip(w.sum(axis=1, keepdims=True), 1e-300, None)  # each replica's weights sum to 1
    size_w = R * d * N_BUCKETS

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[:size_w].reshape(R, d, N_BUCKETS)
        b = theta[size_w:].reshape(R, N_BUCKETS)
        logq = log_softmax(np.einsum("rnd,rdk->rnk", Z, W) + b[:, None, :], axis=2)
        loss = -(w[:, :, None] * P[None] * logq).sum() + 0.5 * alpha * (W ** 2).sum()
        G = w[:, :, None] * (np.exp(logq) - P[None])             # d loss / d logits (soft labels sum to 1)
        grad_W = np.einsum("rnd,rnk->rdk", Z, G) + alpha * W
        return loss, np.concatenate([grad_W.ravel(), G.sum(axis=1).ravel()])

    mean = np.einsum("rn,nk->rk", w, P)
    b0 = np.log(np.clip(mean, 1e-6, None))
    theta0 = np.concatenate([np.zeros(size_w), (b0 - b0.mean(axis=1, keepdims=True)).ravel()])
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter * R, "gtol": 1e-9, "ftol": 1e-15})
    return res.x[:size_w].reshape(R, d, N_BUCKETS), res.x[size_w:].reshape(R, N_BUCKETS)


@torch.no_grad()
def warm_start_skip_path(model: Any, X: np.ndarray, P: np.ndarray, weight: np.ndarray,
                         alpha: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Set every expert's skip path to its replica's softmax-regression solution (see module docstring).

    Needs a model built with EXPERT_SKIP whose standardiser is already fitted on the same rows and weights.
    Returns the (W, b) it set.
    """
    if not hasattr(model, "expert_skip_w"):
        raise ValueError("SKIP_INIT='softmax_regression' needs EXPERT_SKIP=True (the experts have no skip path)")
    Z = model.standardise(np.asarray(X, dtype=np.float32)).double().numpy()   # (R, n, d), clipped like training
    weight = np.broadcast_to(np.atleast_2d(np.asarray(weight, dtype=np.float64)), (Z.shape[0], Z.shape[1]))
    W, b = softmax_regressions(Z, P, weight, alpha=alpha)
    E = model.expert_skip_w.shape[1]
    model.expert_skip_w.copy_(torch.as_tensor(W, dtype=model.expert_skip_w.dtype)[:, None].expand(-1, E, -1, -1))
    model.expert_b2.copy_(torch.as_tensor(b, dtype=model.expert_b2.dtype)[:, None].expand(-1, E, -1))
    model.expert_w2.zero_()
    return W, b
