"""Peer models: simple predictors of the 7-bucket distribution the MoE must beat.

Every peer follows sklearn conventions: ``fit(X, P, sample_weight=None) -> self`` where ``P``
is an (n, 7) matrix of observed distributions (soft labels), and ``predict(X) -> (n, 7)``
with rows summing to 1. ``make_peers`` builds the full line-up with feature scaling inside
a Pipeline, so a scaler is always fitted on the training fold only.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .config import MoEConfig
from .estimator import MoEDistributionRegressor
from .paths import N_BUCKETS


def _check_targets(X: np.ndarray, P: np.ndarray, sample_weight: np.ndarray | None) -> tuple:
    """Validated float arrays (X (n,d), P (n,7) renormalised, weights (n,) summing to n)."""
    X = np.asarray(X, dtype=float)
    P = np.asarray(P, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if P.ndim != 2 or P.shape[1] != N_BUCKETS:
        raise ValueError(f"P must have shape (n_samples, {N_BUCKETS}), got {P.shape}")
    if len(X) != len(P):
        raise ValueError(f"X has {len(X)} rows but P has {len(P)}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    if (P < 0).any() or not np.isfinite(P).all():
        raise ValueError("P must be finite and non-negative")
    P = P / P.sum(axis=1, keepdims=True)
    if sample_weight is None:
        w = np.ones(len(X))
    else:
        w = np.asarray(sample_weight, dtype=float)
        if w.shape != (len(X),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("sample_weight must be a non-negative (n_samples,) array with positive sum")
    return X, P, w * len(w) / w.sum()


def _normalised(P: np.ndarray) -> np.ndarray:
    """Clip to non-negative and renormalise rows (regressors can stray off the simplex)."""
    P = np.clip(np.asarray(P, dtype=float), 0.0, None)
    s = P.sum(axis=1, keepdims=True)
    return np.where(s > 0, P / np.where(s > 0, s, 1.0), 1.0 / N_BUCKETS)


def _replicate_soft_labels(X: np.ndarray, P: np.ndarray, w: np.ndarray) -> tuple:
    """Each row repeated once per bucket k with hard label k and weight w * P_k (soft labels for classifiers)."""
    n = len(X)
    X_rep = np.repeat(X, N_BUCKETS, axis=0)
    y_rep = np.tile(np.arange(N_BUCKETS), n)
    w_rep = (P * w[:, None]).ravel()
    return X_rep, y_rep, w_rep


class MeanDistribution(RegressorMixin, BaseEstimator):
    """The (weighted) mean training distribution, predicted for every word: the floor any model must beat."""

    def fit(self, X: np.ndarray, P: np.ndarray, sample_weight: np.ndarray | None = None) -> MeanDistribution:
        X, P, w = _check_targets(X, P, sample_weight)
        self.mean_ = (w[:, None] * P).sum(axis=0) / w.sum()
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "mean_")
        return np.tile(self.mean_, (len(np.asarray(X)), 1))


class SoftmaxRegression(RegressorMixin, BaseEstimator):
    """Multinomial logistic regression on soft labels: minimises weighted mean cross-entropy + alpha/2 ||W||².

    The intercept is not penalised. Fitted with L-BFGS on the exact gradient. Inputs should be
    standardised (``make_peers`` puts a StandardScaler in front).
    """

    def __init__(self, alpha: float = 1e-2, max_iter: int = 1000, tol: float = 1e-8):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def _objective(self, theta: np.ndarray, X: np.ndarray, P: np.ndarray, w: np.ndarray) -> tuple:
        d = X.shape[1]
        W = theta[: d * N_BUCKETS].reshape(d, N_BUCKETS)
        b = theta[d * N_BUCKETS:]
        logits = X @ W + b
        logq = log_softmax(logits, axis=1)
        n_w = w.sum()
        loss = -(w[:, None] * P * logq).sum() / n_w + 0.5 * self.alpha * (W ** 2).sum()
        # d CE / d logits = q - p for soft labels that sum to 1
        G = w[:, None] * (np.exp(logq) - P) / n_w
        grad_W = X.T @ G + self.alpha * W
        grad_b = G.sum(axis=0)
        return loss, np.concatenate([grad_W.ravel(), grad_b])

    def fit(self, X: np.ndarray, P: np.ndarray, sample_weight: np.ndarray | None = None) -> SoftmaxRegression:
        X, P, w = _check_targets(X, P, sample_weight)
        d = X.shape[1]
        # start from the mean distribution: zero weights, intercept = log of the mean
        b0 = np.log(np.clip((w[:, None] * P).sum(0) / w.sum(), 1e-6, None))
        theta0 = np.concatenate([np.zeros(d * N_BUCKETS), b0 - b0.mean()])
        res = minimize(self._objective, theta0, args=(X, P, w), jac=True, method="L-BFGS-B",
                       options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-14})
        self.coef_ = res.x[: d * N_BUCKETS].reshape(d, N_BUCKETS)
        self.intercept_ = res.x[d * N_BUCKETS:]
        self.n_iter_ = int(res.nit)
        self.n_features_in_ = d
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return softmax(np.asarray(X, dtype=float) @ self.coef_ + self.intercept_, axis=1)


class RandomForestDistribution(RegressorMixin, BaseEstimator):
    """Multi-output random forest regressor on the 7 shares, renormalised onto the simplex."""

    def __init__(self, n_estimators: int = 300, min_samples_leaf: int = 3, max_features: float | str = 0.5,
                 random_state: int | None = 0, n_jobs: int | None = 1):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, P: np.ndarray, sample_weight: np.ndarray | None = None) -> RandomForestDistribution:
        X, P, w = _check_targets(X, P, sample_weight)
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, random_state=self.random_state, n_jobs=self.n_jobs,
        ).fit(X, P, sample_weight=w)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "forest_")
        return _normalised(self.forest_.predict(np.asarray(X, dtype=float)))


class GradientBoostingDistribution(RegressorMixin, BaseEstimator):
    """Histogram gradient boosting classifier trained on soft labels (rows replicated 7x, weight P_k)."""

    def __init__(self, learning_rate: float = 0.05, max_iter: int = 150, max_depth: int | None = 3,
                 min_samples_leaf: int = 20, l2_regularization: float = 1.0, random_state: int | None = 0,
                 n_threads: int = 1):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: np.ndarray, P: np.ndarray, sample_weight: np.ndarray | None = None) -> GradientBoostingDistribution:
        X, P, w = _check_targets(X, P, sample_weight)
        X_rep, y_rep, w_rep = _replicate_soft_labels(X, P, w)
        booster = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate, max_iter=self.max_iter, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            early_stopping=False, random_state=self.random_state,
        )
        # OpenMP threads on a few thousand rows cost more than they save on a shared machine
        with threadpool_limits(self.n_threads):
            self.booster_ = booster.fit(X_rep, y_rep, sample_weight=w_rep)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "booster_")
        with threadpool_limits(self.n_threads):
            proba = self.booster_.predict_proba(np.asarray(X, dtype=float))
        out = np.zeros((len(proba), N_BUCKETS))
        out[:, self.booster_.classes_.astype(int)] = proba  # every label is present, but be explicit
        return _normalised(out)


QUICK_PEERS = ("mean_distribution", "softmax_regression")  # the two cheapest peers: QUICK runs keep only these


def single_mlp_config(config: MoEConfig) -> MoEConfig:
    """The single MLP-softmax peer: one expert, its own MLP (no shared linear base), early stopping as it was
    trained before converged training (with one expert the shared-base MoE is softmax regression, already a peer)."""
    return config.replace(num_experts=1, top_k=1, shared_base=False, expert_skip=False, training="early_stopping")


def make_peers(config: MoEConfig | None = None, quick: bool = False, *, random_state: int | None = None,
               moe_replicas: int = 0, mlp_replicas: int = 0) -> dict[str, BaseEstimator]:
    """The one peer line-up, unfitted; scalers sit inside Pipelines so they see only training rows.

    Always the fitted-distribution peers (QUICK: the two cheapest). With ``config``: also the MoE itself
    ("moe", ``moe_replicas`` bootstrap replicas) and, outside QUICK, the single MLP-softmax peer ("single_mlp":
    ``single_mlp_config``, one expert with its own MLP, ``mlp_replicas`` replicas). ``random_state`` defaults to
    ``config.seed``.
    """
    seed = int(random_state if random_state is not None else (config.seed if config is not None else 0))
    peers: dict[str, BaseEstimator] = {
        "mean_distribution": MeanDistribution(),
        "softmax_regression": make_pipeline(StandardScaler(), SoftmaxRegression(alpha=1e-2)),
        "random_forest": RandomForestDistribution(random_state=seed),
        "gradient_boosting": GradientBoostingDistribution(random_state=seed),
    }
    if quick:
        peers = {k: v for k, v in peers.items() if k in QUICK_PEERS}
    peers = {name: clone(est) for name, est in peers.items()}
    if config is not None:
        if not quick:
            peers["single_mlp"] = MoEDistributionRegressor.from_config(single_mlp_config(config), mlp_replicas)
        peers["moe"] = MoEDistributionRegressor.from_config(config, moe_replicas)
    return peers
