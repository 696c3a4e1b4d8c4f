"""MoEDistributionRegressor follows scikit-learn conventions and works in CV, grid search and pipelines."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from wordle_moe.config import ConfigError
from wordle_moe.estimator import MoEDistributionRegressor
from wordle_moe.metrics import rps
from tests.synthetic import softmax_linear_data

FAST = dict(hidden_size=8, max_epochs=20, patience=5)


def _data(n=60, d=5, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.4)


def test_init_only_stores_params_and_clone_works():
    est = MoEDistributionRegressor(num_experts=3, top_k=2, router="noisy_topk")
    assert est.get_params()["num_experts"] == 3 and not hasattr(est, "model_")
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(ConfigError, match="TOP_K"):
        MoEDistributionRegressor(num_experts=2, top_k=3).fit(*_data())


def test_fit_predict_score_and_determinism():
    X, P = _data()
    est = MoEDistributionRegressor(random_state=3, **FAST).fit(X, P)
    assert est.n_features_in_ == 5 and len(est.history_) > 0
    pred = est.predict(X)
    assert pred.shape == (60, 7)
    np.testing.assert_allclose(pred.sum(1), 1.0, rtol=1e-6)
    assert est.score(X, P) == pytest.approx(-rps(P, pred).mean())
    again = MoEDistributionRegressor(random_state=3, **FAST).fit(X, P)
    np.testing.assert_array_equal(again.predict(X), pred)
    with pytest.raises(ValueError, match="n_bootstrap"):
        est.predict_interval(X)
    with pytest.raises(ValueError):
        est.predict(X[:, :4])


def test_predict_interval_with_bootstrap():
    X, P = _data()
    est = MoEDistributionRegressor(n_bootstrap=5, ci_level=0.8, **FAST).fit(X, P)
    mean, low, high = est.predict_interval(X[:4])
    assert mean.shape == low.shape == high.shape == (4, 7)
    assert (low <= mean + 1e-9).all() and (mean <= high + 1e-9).all()
    np.testing.assert_allclose(est.predict(X[:4]), mean)
    wide = est.predict_interval(X[:4], ci_level=0.99)
    assert ((wide[2] - wide[1]) >= (high - low) - 1e-12).all()


def test_cross_validate_gridsearch_and_pipeline():
    X, P = _data()
    cv = cross_validate(MoEDistributionRegressor(**FAST), X, P, cv=KFold(3, shuffle=True, random_state=0))
    assert len(cv["test_score"]) == 3 and (cv["test_score"] <= 0).all()
    grid = GridSearchCV(MoEDistributionRegressor(**FAST), {"num_experts": [2, 3]}, cv=2).fit(X, P)
    assert grid.best_params_["num_experts"] in (2, 3)
    pipe = make_pipeline(StandardScaler(), MoEDistributionRegressor(**FAST)).fit(X, P)
    assert pipe.predict(X).shape == (60, 7) and pipe.score(X, P) <= 0


def test_router_knobs_and_n_weighting_pass_through():
    X, P = _data()
    n_rep = np.linspace(100, 5000, 60)
    a = MoEDistributionRegressor(router="reputation", n_weighting="linear", **FAST).fit(X, P, n_reported=n_rep)
    b = MoEDistributionRegressor(router="reputation", n_weighting="none", **FAST).fit(X, P, n_reported=n_rep)
    assert a.model_.config.router == "reputation" and a.model_.config.n_weighting == "linear"
    assert not np.allclose(a.predict(X), b.predict(X))


def test_expert_skip_and_skip_l2_pass_through_and_train():
    X, P = _data()
    est = MoEDistributionRegressor(expert_skip=True, skip_l2=0.01, **FAST)
    assert clone(est).get_params()["expert_skip"] is True
    est.fit(X, P)
    cfg = est.model_.config
    assert cfg.expert_skip and cfg.skip_l2 == 0.01
    assert est.model_.expert_skip_w.shape == (1, 2, 5, 7) and est.model_.expert_skip_w.abs().sum() > 0  # trained
    np.testing.assert_allclose(est.predict(X).sum(1), 1.0, rtol=1e-6)
