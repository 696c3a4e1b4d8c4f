"""scikit-learn estimator around the MoE: fit/predict/score, usable in cross_validate, GridSearchCV, Pipeline."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .bootstrap import bootstrap_summary, fit_bootstrap, predict_bootstrap
from .config import MoEConfig
from .metrics import rps
from .training import check_inputs, fit_replicas, predict_proba, predict_replicas, resolve_config


class MoEDistributionRegressor(RegressorMixin, BaseEstimator):
    """Mixture-of-experts regressor from features to a 7-bucket distribution (rows sum to 1).

    fit holds out ``val_fraction`` of the rows (seeded by ``random_state``) for early stopping.
    With ``n_bootstrap`` > 0 it also trains that many bootstrap replicas (batched) on all rows;
    ``predict_interval`` then returns their mean and percentile interval, and ``predict`` the mean.
    ``score`` is the negative mean ranked probability score, so higher is better.
    """

    def __init__(self, num_experts: int = 2, top_k: int = 1, hidden_size: int = 64, router: str = "topk",
                 gate: str = "linear", activation: str = "gelu", dropout: float = 0.1,
                 aux_loss_weight: float = 1e-3, expert_diversity_coef: float = 5e-4,
                 expert_output_diversity_coef: float = 0.1, expert_js_divergence_coef: float = 0.05,
                 z_loss_coef: float = 0.0, lr: float = 1e-2, wd: float = 1e-3, max_epochs: int = 600,
                 patience: int = 60, val_fraction: float = 0.2, router_only_epochs: int = 0,
                 n_weighting: str = "none", capacity_factor: float = 1.0, reputation_beta: float = 0.5,
                 reputation_gamma: float = 0.5, reputation_ema: float = 0.9, reputation_decay: float = 0.99,
                 exploration_bonus: float = 0.1, exploration_decay: float = 0.98,
                 bias_update_rate: float = 1e-3, input_clip: float = 5.0, routing_ce_coef: float = 0.0,
                 expert_skip: bool = False, skip_l2: float = 0.0, skip_zero_mlp: bool = False,
                 n_bootstrap: int = 0, ci_level: float = 0.95, random_state: int = 0) -> None:
        self.num_experts = num_experts
        self.top_k = top_k
        self.hidden_size = hidden_size
        self.router = router
        self.gate = gate
        self.activation = activation
        self.dropout = dropout
        self.aux_loss_weight = aux_loss_weight
        self.expert_diversity_coef = expert_diversity_coef
        self.expert_output_diversity_coef = expert_output_diversity_coef
        self.expert_js_divergence_coef = expert_js_divergence_coef
        self.z_loss_coef = z_loss_coef
        self.lr = lr
        self.wd = wd
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.router_only_epochs = router_only_epochs
        self.n_weighting = n_weighting
        self.capacity_factor = capacity_factor
        self.reputation_beta = reputation_beta
        self.reputation_gamma = reputation_gamma
        self.reputation_ema = reputation_ema
        self.reputation_decay = reputation_decay
        self.exploration_bonus = exploration_bonus
        self.exploration_decay = exploration_decay
        self.bias_update_rate = bias_update_rate
        self.input_clip = input_clip
        self.routing_ce_coef = routing_ce_coef
        self.expert_skip = expert_skip
        self.skip_l2 = skip_l2
        self.skip_zero_mlp = skip_zero_mlp
        self.n_bootstrap = n_bootstrap
        self.ci_level = ci_level
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    def _config(self) -> MoEConfig:
        names = ("num_experts", "top_k", "hidden_size", "router", "gate", "activation", "dropout",
                 "aux_loss_weight", "expert_diversity_coef", "expert_output_diversity_coef",
                 "expert_js_divergence_coef", "z_loss_coef", "lr", "wd", "max_epochs", "patience",
                 "val_fraction", "router_only_epochs", "n_weighting", "capacity_factor", "reputation_beta",
                 "reputation_gamma", "reputation_ema", "reputation_decay", "exploration_bonus",
                 "exploration_decay", "bias_update_rate", "input_clip", "routing_ce_coef", "expert_skip", "skip_l2", "skip_zero_mlp")
        knobs = {k: getattr(self, k) for k in names}
        return resolve_config(MoEConfig(seed=int(self.random_state), bootstrap_ci=float(self.ci_level)), **knobs)

    def fit(self, X: Any, P: Any, sample_weight: Any | None = None,
            n_reported: Any | None = None) -> "MoEDistributionRegressor":
        """Fit on features X (n, d) and distributions P (n, 7); returns self.

        ``n_reported`` (n,) feeds the N_WEIGHTING of the main loss (ignored when n_weighting="none").
        """
        cfg = self._config()
        X, P = validate_data(self, X, P, multi_output=True, dtype=np.float64, reset=True)
        X, P = check_inputs(X, P, "fit")
        n = len(X)
        if n < 4:
            raise ValueError(f"need at least 4 rows to hold out a validation split, got {n}")
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        nr = None if n_reported is None else np.asarray(n_reported, dtype=float)
        perm = np.random.default_rng(self.random_state).permutation(n)
        n_val = min(max(1, int(round(cfg.val_fraction * n))), n - 1)
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        self.model_, info = fit_replicas(X[tr], P[tr], X[val], P[val], cfg, train_weight=sw[tr][None],
                                         val_weight=sw[val][None], n_reported=None if nr is None else nr[tr],
                                         n_reported_val=None if nr is None else nr[val])
        self.history_ = info["history"]
        self.best_epoch_ = info["best_epoch"]
        self.bootstrap_models_ = None
        if self.n_bootstrap and self.n_bootstrap > 0:
            self.bootstrap_models_, _ = fit_bootstrap(X, P, config=cfg, B=int(self.n_bootstrap),
                                                      seed=int(self.random_state), sample_weight=sw,
                                                      n_reported=nr)
        return self

    def _X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return validate_data(self, X, dtype=np.float64, reset=False)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted distributions (n, 7): the single model, or the bootstrap mean when n_bootstrap > 0."""
        X = self._X(X)
        if self.bootstrap_models_:
            return predict_bootstrap(self.bootstrap_models_, X).mean(axis=0)
        return predict_proba(self.model_, X)

    def predict_replicas(self, X: Any) -> np.ndarray:
        """Every bootstrap replica's prediction (B, n, 7); the single model as B=1 without bootstrap."""
        X = self._X(X)
        if self.bootstrap_models_:
            return predict_bootstrap(self.bootstrap_models_, X)
        return predict_replicas(self.model_, X)

    def predict_interval(self, X: Any, ci_level: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, low, high), each (n, 7): bootstrap mean and percentile interval (needs n_bootstrap > 0)."""
        if not self.n_bootstrap:
            raise ValueError("predict_interval needs bootstrap replicas: set n_bootstrap > 0 and refit")
        s = bootstrap_summary(self.predict_replicas(X), self.ci_level if ci_level is None else ci_level)
        return s["mean"], s["low"], s["high"]

    def score(self, X: Any, P: Any, sample_weight: Any | None = None) -> float:
        """Negative mean ranked probability score (higher is better)."""
        per_word = rps(np.asarray(P, dtype=float), self.predict(X))
        return -float(np.average(per_word, weights=sample_weight))
