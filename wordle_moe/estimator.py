"""scikit-learn estimator around the MoE: fit/predict/score, usable in cross_validate, GridSearchCV, Pipeline.

Its defaults are MoEConfig's: each ``__init__`` default below is read from ``MoEConfig()``, so the
module knobs, the config and the estimator cannot drift apart (tests/test_estimator.py checks every field).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .bootstrap import bootstrap_summary, fit_bootstrap, predict_bootstrap
from .config import MoEConfig
from .metrics import rps
from .training import check_inputs, fit_replicas, predict_proba, predict_replicas, resolve_config

_D = MoEConfig()  # the one declaration of every default
# estimator parameter -> MoEConfig field, where scikit-learn's naming differs
RENAMED = {"random_state": "seed", "ci_level": "bootstrap_ci"}
# parameters of the estimator only: replicas trained by fit (0: a single model) and inner folds for the
# residuals of the predictive interval (0: none); BOOTSTRAP_B is the module's replica count for its own runs
ESTIMATOR_ONLY = {"n_bootstrap": 0, "calibration_cv": 5}
NOT_PARAMETERS = ("bootstrap_b",)  # MoEConfig fields the estimator replaces by its own n_bootstrap
INTERVAL_KINDS = ("predictive", "mean")
MIN_ROWS = 4  # one validation row for early stopping and three to train on


class MoEDistributionRegressor(RegressorMixin, BaseEstimator):
    """Mixture-of-experts regressor from features to a 7-bucket distribution (rows sum to 1).

    fit holds out ``val_fraction`` of the rows (seeded by ``random_state``) for early stopping.
    With ``n_bootstrap`` > 0 it also trains that many bootstrap replicas (batched) on all rows and,
    with ``calibration_cv`` >= 2, the out-of-fold residuals of a single model (inner K-fold over the
    training rows) that turn the bootstrap interval of the mean into a predictive interval for the
    observed shares. ``predict`` gives the bootstrap mean (or the single model), ``predict_interval``
    either interval. ``score`` is the negative mean ranked probability score, so higher is better.

    The target is a (n, 7) distribution, never a 1-D vector: the estimator is multi-output only
    (its tags say so), and scikit-learn checks built on a 1-D ``y`` do not apply (see the test module).
    """

    def __init__(self, num_experts: int = _D.num_experts, top_k: int = _D.top_k, hidden_size: int = _D.hidden_size,
                 router: str = _D.router, gate: str = _D.gate, activation: str = _D.activation,
                 dropout: float = _D.dropout, aux_loss_weight: float = _D.aux_loss_weight,
                 expert_diversity_coef: float = _D.expert_diversity_coef,
                 expert_output_diversity_coef: float = _D.expert_output_diversity_coef,
                 expert_js_divergence_coef: float = _D.expert_js_divergence_coef,
                 z_loss_coef: float = _D.z_loss_coef, lr: float = _D.lr, wd: float = _D.wd,
                 max_epochs: int = _D.max_epochs, patience: int = _D.patience, val_fraction: float = _D.val_fraction,
                 router_only_epochs: int = _D.router_only_epochs, n_weighting: str = _D.n_weighting,
                 capacity_factor: float = _D.capacity_factor, reputation_beta: float = _D.reputation_beta,
                 reputation_gamma: float = _D.reputation_gamma, reputation_ema: float = _D.reputation_ema,
                 reputation_decay: float = _D.reputation_decay, exploration_bonus: float = _D.exploration_bonus,
                 exploration_decay: float = _D.exploration_decay, bias_update_rate: float = _D.bias_update_rate,
                 input_clip: float = _D.input_clip, routing_ce_coef: float = _D.routing_ce_coef,
                 diversity_scope: str = _D.diversity_scope,
                 expert_skip: bool = _D.expert_skip, skip_l2: float = _D.skip_l2,
                 skip_zero_mlp: bool = _D.skip_zero_mlp, n_bootstrap: int = ESTIMATOR_ONLY["n_bootstrap"],
                 calibration_cv: int = ESTIMATOR_ONLY["calibration_cv"], ci_level: float = _D.bootstrap_ci,
                 random_state: int = _D.seed) -> None:
        # scikit-learn convention: __init__ stores its arguments unchanged, validation happens in fit
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False  # the target is a 7-bucket distribution per row
        tags.target_tags.two_d_labels = True
        tags.input_tags.allow_nan = False
        return tags

    def _config(self) -> MoEConfig:
        """The validated MoEConfig of these parameters (ConfigError names the knob)."""
        fields = {f.name for f in dataclasses.fields(MoEConfig)}
        params = self.get_params(deep=False)
        knobs = {RENAMED.get(k, k): v for k, v in params.items() if RENAMED.get(k, k) in fields}
        return resolve_config(MoEConfig(), bootstrap_b=max(int(self.n_bootstrap or 0), 1), **knobs)

    def fit(self, X: Any, y: Any, sample_weight: Any | None = None,
            n_reported: Any | None = None) -> "MoEDistributionRegressor":
        """Fit on features X (n, d) and distributions y (n, 7) — the shares of the 7 buckets; returns self.

        ``sample_weight`` (n,) weights rows (array or pandas Series; non-negative, not all zero);
        ``n_reported`` (n,) feeds the N_WEIGHTING of the main loss (ignored when n_weighting="none").
        """
        cfg = self._config()
        # inputs first, then weights, then the target, so each error names what is wrong with it
        X = validate_data(self, X, dtype=np.float64, reset=True)
        n = len(X)
        if n < MIN_ROWS:
            raise ValueError(f"n_samples = {n}: need at least {MIN_ROWS} samples (one held out for early stopping)")
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if sw.sum() <= 0:
            raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                             "(y: the (n_samples, 7) distributions)")
        P = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if P.ndim != 2 or P.shape != (n, 7):
            raise ValueError(f"y must have shape (n_samples, 7) = ({n}, 7), one distribution over the 7 result "
                             f"buckets per row; got shape {P.shape}")
        X, P = check_inputs(X, P, "fit")
        nr = None if n_reported is None else np.asarray(n_reported, dtype=float)
        perm = np.random.default_rng(self.random_state).permutation(n)
        n_val = min(max(1, int(round(cfg.val_fraction * n))), n - 1)
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        if sw[tr].sum() <= 0 or sw[val].sum() <= 0:
            raise ValueError("sample_weight is zero on every training or every validation row of the early-stopping "
                             "split: give more rows a positive weight")
        self.model_, info = fit_replicas(X[tr], P[tr], X[val], P[val], cfg, train_weight=sw[tr][None],
                                         val_weight=sw[val][None], n_reported=None if nr is None else nr[tr],
                                         n_reported_val=None if nr is None else nr[val])
        self.history_ = info["history"]
        self.best_epoch_ = info["best_epoch"]
        self.bootstrap_models_ = None
        self.residuals_ = None
        if self.n_bootstrap and self.n_bootstrap > 0:
            self.bootstrap_models_, _ = fit_bootstrap(X, P, config=cfg, B=int(self.n_bootstrap),
                                                      seed=int(self.random_state), sample_weight=sw,
                                                      n_reported=nr)
            if self.calibration_cv and self.calibration_cv >= 2:
                self.residuals_ = self._oof_residuals(X, P, sw, nr)
        return self

    def _oof_residuals(self, X: np.ndarray, P: np.ndarray, sw: np.ndarray, nr: np.ndarray | None) -> np.ndarray:
        """Out-of-fold residuals P - P_hat (n, 7) of the single model, from an inner K-fold over these rows only.

        They measure how far observed shares fall from a model that never saw them: the spread the
        predictive interval adds to the bootstrap interval of the mean.
        """
        from sklearn.base import clone
        from sklearn.model_selection import KFold

        inner = clone(self).set_params(n_bootstrap=0, calibration_cv=0)
        k = min(int(self.calibration_cv), len(X) // MIN_ROWS)
        resid = np.zeros_like(P)
        for tr, te in KFold(n_splits=max(k, 2), shuffle=True, random_state=self.random_state).split(X):
            model = clone(inner).fit(X[tr], P[tr], sample_weight=sw[tr], n_reported=None if nr is None else nr[tr])
            resid[te] = P[te] - model.predict(X[te])
        return resid

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

    def predict_interval(self, X: Any, ci_level: float | None = None, kind: str = "predictive"
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, low, high), each (n, 7), at ``ci_level`` (default the estimator's ``ci_level``).

        kind="predictive" (default): where an observed share is expected to fall — the bootstrap mean plus
        the quantiles of held-out residuals (needs n_bootstrap > 0 and calibration_cv >= 2).
        kind="mean": the bootstrap percentile interval of the mean prediction (needs n_bootstrap > 0); it
        covers uncertainty about the mean only and is far narrower than the spread of observed shares.
        """
        if kind not in INTERVAL_KINDS:
            raise ValueError(f"kind must be one of {INTERVAL_KINDS}, got {kind!r}")
        check_is_fitted(self, "model_")
        if not self.bootstrap_models_:
            raise ValueError("predict_interval needs bootstrap replicas: set n_bootstrap > 0 and refit")
        level = self.ci_level if ci_level is None else ci_level
        s = bootstrap_summary(self.predict_replicas(X), level)
        if kind == "mean":
            return s["mean"], s["low"], s["high"]
        if self.residuals_ is None:
            raise ValueError("the predictive interval needs held-out residuals: set calibration_cv >= 2 and refit "
                             "(or ask for kind='mean')")
        low, high = predictive_interval(s["mean"], s["low"], s["high"], self.residuals_, level)
        return s["mean"], low, high

    def score(self, X: Any, y: Any, sample_weight: Any | None = None) -> float:
        """Negative mean ranked probability score of the (n, 7) distributions y (higher is better)."""
        per_word = rps(np.asarray(y, dtype=float), self.predict(X))
        return -float(np.average(per_word, weights=sample_weight))


def predictive_interval(mean: np.ndarray, low: np.ndarray, high: np.ndarray, residuals: np.ndarray,
                        ci_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Predictive interval: the model mean plus held-out residual quantiles, never narrower than the bootstrap interval.

    The bootstrap (model-mean) interval only covers uncertainty about the mean; observed shares also
    scatter around it (word-level noise the features do not explain). Residuals of models fitted without
    the rows they are measured on measure that scatter per bucket and already include the estimation
    uncertainty; adding the bootstrap spread again in quadrature double-counts it (measured: ~97.5%
    coverage at a nominal 95%), so the two intervals are combined as an envelope, clipped to [0, 1].
    """
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}")
    alpha = 1.0 - ci_level
    q_low, q_high = np.quantile(np.asarray(residuals, dtype=float), [alpha / 2, 1 - alpha / 2], axis=0)  # (7,)
    lo = np.minimum(low, mean + q_low)
    hi = np.maximum(high, mean + q_high)
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def supports_interval_kind(model: Any) -> bool:
    """True when ``model.predict_interval`` takes ``kind=`` (this estimator; simpler stand-ins may not)."""
    return "kind" in inspect.signature(model.predict_interval).parameters
