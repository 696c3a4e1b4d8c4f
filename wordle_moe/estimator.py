"""scikit-learn estimator around the MoE: fit/predict/score, usable in cross_validate, GridSearchCV, Pipeline.

Its defaults are MoEConfig's: each ``__init__`` default below is read from ``MoEConfig()``, so the
module knobs, the config and the estimator cannot drift apart (tests/test_estimator.py checks every field).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .bootstrap import fit_bootstrap, predict_bootstrap
from .config import MoEConfig
from .crossfit import MIN_FOLD_ROWS, fold_weights, oof_residuals, validation_split
from .intervals import bootstrap_summary, check_kind, predictive_interval
from .metrics import rps
from .training import check_inputs, fit_replicas, predict_proba, predict_replicas, resolve_config, select_penalties

_D = MoEConfig()  # the one declaration of every default
# estimator parameter -> MoEConfig field, where scikit-learn's naming differs
RENAMED = {"random_state": "seed", "ci_level": "bootstrap_ci"}
# parameters of the estimator only: replicas trained by fit (0: a single model) and inner folds for the
# residuals of the predictive interval (0: none); BOOTSTRAP_B is the module's replica count for its own runs
ESTIMATOR_ONLY = {"n_bootstrap": 0, "calibration_cv": 5}
NOT_PARAMETERS = ("bootstrap_b",)  # MoEConfig fields the estimator replaces by its own n_bootstrap
MIN_ROWS = MIN_FOLD_ROWS  # one validation row for early stopping and three to train on


def _init_signature() -> inspect.Signature:
    """(self, <every MoEConfig field with its default, renamed per RENAMED>, n_bootstrap, calibration_cv)."""
    names = {v: k for k, v in RENAMED.items()}
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in dataclasses.fields(MoEConfig):
        if f.name not in NOT_PARAMETERS:
            params.append(inspect.Parameter(names.get(f.name, f.name), inspect.Parameter.KEYWORD_ONLY,
                                            default=getattr(_D, f.name)))
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in ESTIMATOR_ONLY.items()]
    return inspect.Signature(params)


_SIGNATURE = _init_signature()


class MoEDistributionRegressor(RegressorMixin, BaseEstimator):
    """Mixture-of-experts regressor from features to a 7-bucket distribution (rows sum to 1).

    fit trains on every row to convergence of the penalised objective, ridge strengths by inner CV on those rows
    (``training="converged"``, the default; ``penalty_cv_`` holds the candidates); with ``training="early_stopping"``
    it holds out ``val_fraction`` of the rows (seeded by ``random_state``) to stop on.
    With ``n_bootstrap`` > 0 it also trains that many bootstrap replicas (batched) on all rows and,
    with ``calibration_cv`` >= 2, the out-of-fold residuals of a single model (inner K-fold over the
    training rows) that turn the bootstrap interval of the mean into a predictive interval for the
    observed shares. ``predict`` gives the bootstrap mean (or the single model), ``predict_interval``
    either interval. ``score`` is the negative mean ranked probability score, so higher is better.

    Parameters: every MoEConfig field under its lower-case knob name, with MoEConfig's default (``seed`` is
    ``random_state``, ``bootstrap_ci`` is ``ci_level``), plus ``n_bootstrap`` (default 0: a single model) and
    ``calibration_cv`` (default 5). Keyword arguments only.

    The target is a (n, 7) distribution, never a 1-D vector: the estimator is multi-output only
    (its tags say so), and scikit-learn checks built on a 1-D ``y`` do not apply (see the test module).
    """

    def __init__(self, **params: Any) -> None:
        # The parameters are MoEConfig's fields (see _init_signature): declared once, in MoEConfig, so a knob added
        # there is a parameter here with the same default. scikit-learn convention: store the arguments unchanged,
        # validate in fit.
        bound = _SIGNATURE.bind(self, **params)  # TypeError for a name that is not a parameter
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = _SIGNATURE  # what get_params, clone and help() read

    @classmethod
    def from_config(cls, config: MoEConfig, n_bootstrap: int = 0, calibration_cv: int = 0) -> MoEDistributionRegressor:
        """The estimator with every knob of ``config`` (``seed`` as random_state, ``bootstrap_ci`` as ci_level).

        ``calibration_cv`` defaults to 0 here: the evaluation and forecasting code calibrate each model's
        predictive interval themselves, from residuals held out inside their own training rows.
        """
        names = {field: param for param, field in RENAMED.items()}
        params = {names.get(k, k): v for k, v in config.to_dict().items() if k not in NOT_PARAMETERS}
        return cls(**params, n_bootstrap=int(n_bootstrap), calibration_cv=int(calibration_cv))

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
            n_reported: Any | None = None) -> MoEDistributionRegressor:
        """Fit on features X (n, d) and distributions y (n, 7) — the shares of the 7 buckets; returns self.

        ``sample_weight`` (n,) weights rows (array or pandas Series; non-negative, not all zero);
        ``n_reported`` (n,) feeds the N_WEIGHTING of the main loss (ignored when n_weighting="none").
        ``history_`` is the single model's training log: loss terms whose coefficient is 0 (they do not change
        training) are logged every ``training.CHECK_EVERY`` steps, NaN between (``train_moe`` logs every step). With
        converged training and ``n_bootstrap`` > 0 the single model trains as one more replica of the bootstrap's
        last chunk, and ``history_`` is the bootstrap's log (replica means per chunk, as ``fit_bootstrap`` gives).
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
        tr, val = validation_split(n, cfg.val_fraction, self.random_state)
        self.penalty_cv_ = None
        if cfg.training == "converged":   # no early stopping: every row trains (the held-out rows are only logged)
            tr = np.arange(n)
            cfg, self.penalty_cv_ = select_penalties(X, P, cfg, sample_weight=sw, n_reported=nr)
            cfg = cfg.replace(penalty_cv=0)   # chosen once: the bootstrap below reuses the choice
        if sw[tr].sum() <= 0 or sw[val].sum() <= 0:
            raise ValueError("sample_weight is zero on every training or every validation row of the early-stopping "
                             "split: give more rows a positive weight")
        self.bootstrap_models_ = None
        self.residuals_ = None
        B = int(self.n_bootstrap or 0)
        if B > 0 and cfg.training == "converged":
            # the single model trains on every row: one more replica of the bootstrap's last chunk (same rows, its
            # validation split only logged) instead of a fit of its own
            held_out = np.zeros(n)
            held_out[val] = 1.0
            self.bootstrap_models_, boot = fit_bootstrap(X, P, config=cfg, B=B, seed=int(self.random_state),
                                                         sample_weight=sw, n_reported=nr, extra=(sw, sw * held_out))
            self.model_, self.best_epoch_ = boot["extra_model"], boot["extra_best_epoch"]
            self.history_ = boot["history"]
        else:
            self.model_, info = fit_replicas(X[tr], P[tr], X[val], P[val], cfg, train_weight=sw[tr][None],
                                             val_weight=sw[val][None], n_reported=None if nr is None else nr[tr],
                                             n_reported_val=None if nr is None else nr[val])
            self.history_ = info["history"]
            self.best_epoch_ = info["best_epoch"]
            if B > 0:
                self.bootstrap_models_, _ = fit_bootstrap(X, P, config=cfg, B=B, seed=int(self.random_state),
                                                          sample_weight=sw, n_reported=nr)
        if B > 0 and self.calibration_cv and self.calibration_cv >= 2:
            inner = clone(self).set_params(n_bootstrap=0, calibration_cv=0)
            self.residuals_ = oof_residuals(inner, X, P, cv=self.calibration_cv, sample_weight=sw, n_reported=nr,
                                            random_state=self.random_state)
        return self

    def fold_predictions(self, X: np.ndarray, P: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], *,
                         sample_weight: np.ndarray | None = None, n_reported: np.ndarray | None = None
                         ) -> list[np.ndarray] | None:
        """Held-out predictions of one single model per (train, test) fold, all folds trained as ONE batched model
        (replica f: fold f's training rows, replica id 0 like a lone fit), the same models as ``clone(self).fit`` per
        fold up to float rounding. None where that equivalence does not hold (bootstrap replicas, an inner CV of
        the penalties, or an N_WEIGHTING scaled over each fold's own rows): the caller then fits clones."""
        cfg = self._config()
        inner_cv = cfg.training == "converged" and cfg.penalty_cv >= 2
        if (self.n_bootstrap or 0) > 0 or inner_cv or (cfg.n_weighting != "none" and n_reported is not None):
            return None
        X, P = check_inputs(X, P, "fit")
        sw = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        train_w, val_w = fold_weights(len(X), folds, cfg.val_fraction, self.random_state)
        if cfg.training == "converged":   # as in fit: every row of the fold trains, the split is only logged
            train_w = train_w + val_w
        train_w, val_w = train_w * sw, val_w * sw
        if np.any(train_w.sum(axis=1) <= 0) or np.any(val_w.sum(axis=1) <= 0):
            return None   # fit's own error message names the problem
        nr = None if n_reported is None else np.asarray(n_reported, dtype=float)
        model, _ = fit_replicas(X, P, X, P, cfg, train_weight=train_w, val_weight=val_w, n_reported=nr,
                                n_reported_val=nr, replica_ids=[0] * len(folds))
        pred = predict_replicas(model, X)
        return [pred[f, te] for f, (_, te) in enumerate(folds)]

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
        check_kind(kind)
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


def supports_interval_kind(model: Any) -> bool:
    """True when ``model.predict_interval`` takes ``kind=`` (this estimator; simpler stand-ins may not)."""
    return "kind" in inspect.signature(model.predict_interval).parameters


def residual_model(config: MoEConfig) -> MoEDistributionRegressor:
    """The single model whose out-of-fold residuals calibrate every predictive interval: ``config`` with its ridge
    strengths as configured (PENALTY_CV=0). Choosing them again inside each residual fold would cost a full inner
    CV per fold for a residual spread that barely depends on them, and a choice made on all rows would see the
    rows a residual is held out on."""
    return MoEDistributionRegressor.from_config(config.replace(penalty_cv=0))


def ensemble_residuals(X: np.ndarray, P: np.ndarray, config: MoEConfig, n_reported: np.ndarray | None = None,
                       cv: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold residuals P - P_hat (n, 7) of ``residual_model(config)`` (``cv``-fold, over these rows): the
    held-out scatter a saved ensemble's predictive interval adds to its interval of the mean."""
    return oof_residuals(residual_model(config), np.asarray(X, float), np.asarray(P, float),
                         cv=cv, n_reported=n_reported, random_state=seed)
