"""Peer models: shapes, simplex outputs, and the soft-label fits checked against direct computations."""
import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import softmax
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from wordle_moe import baselines
from wordle_moe.baselines import (
    GradientBoostingDistribution,
    MeanDistribution,
    RandomForestDistribution,
    SoftmaxRegression,
    make_peers,
)
from wordle_moe.crossfit import fit_estimator


def _toy(n: int = 60, d: int = 3, seed: int = 0):
    """Distributions that depend smoothly on the features, as in Wordle (harder word -> later buckets)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(scale=0.8, size=(d, 7))
    P = softmax(X @ W + np.log([0.01, 0.05, 0.2, 0.33, 0.25, 0.12, 0.04]), axis=1)
    return X, P


def test_mean_distribution_is_weighted_mean():
    X, P = _toy(10)
    w = np.arange(1, 11, dtype=float)
    pred = MeanDistribution().fit(X, P, sample_weight=w).predict(X[:3])
    np.testing.assert_allclose(pred, np.tile((w[:, None] * P).sum(0) / w.sum(), (3, 1)))


def test_softmax_regression_gradient_matches_finite_differences():
    X, P = _toy(12, 2)
    model = SoftmaxRegression(alpha=0.3)
    w = np.linspace(0.5, 2.0, 12)
    w = w * len(w) / w.sum()
    theta = np.random.default_rng(1).normal(size=2 * 7 + 7)
    _, grad = model._objective(theta, X, P, w)
    numeric = approx_fprime(theta, lambda t: model._objective(t, X, P, w)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def test_softmax_regression_equals_direct_loss_minimum():
    """At the optimum the gradient of the written-out objective (CE + alpha/2 ||W||²) vanishes."""
    X, P = _toy(20, 2)
    model = SoftmaxRegression(alpha=0.1).fit(X, P)
    Q = model.predict(X)
    grad_W = X.T @ (Q - P) / len(X) + 0.1 * model.coef_  # hand-written gradient, unit weights
    grad_b = (Q - P).sum(0) / len(X)
    assert np.abs(grad_W).max() < 1e-6 and np.abs(grad_b).max() < 1e-6


def test_softmax_regression_matches_sklearn_on_replicated_rows():
    """sklearn's multinomial LR on rows replicated 7x with weight P_k minimises the same objective."""
    X, P = _toy(25, 2, seed=3)
    alpha = 0.05
    ours = SoftmaxRegression(alpha=alpha).fit(X, P)
    X_rep, y_rep, w_rep = baselines._replicate_soft_labels(X, P, np.ones(len(X)))
    # sklearn: mean weighted CE (sum of weights = n) + ||W||² / (2 C n)  ->  C = 1 / (alpha n)
    ref = LogisticRegression(C=1.0 / (alpha * len(X)), tol=1e-12, max_iter=5000).fit(X_rep, y_rep, sample_weight=w_rep)
    np.testing.assert_allclose(ours.predict(X), ref.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("estimator", [
    MeanDistribution(),
    SoftmaxRegression(),
    RandomForestDistribution(n_estimators=20),
    GradientBoostingDistribution(max_iter=20),
])
def test_peers_predict_probability_rows(estimator):
    X, P = _toy(40)
    model = clone(estimator).fit(X, P, sample_weight=np.ones(40))
    pred = model.predict(X[:7])
    assert pred.shape == (7, 7)
    assert (pred >= 0).all()
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-9)
    assert model.n_features_in_ == X.shape[1]


def test_learning_peers_beat_the_mean_on_learnable_data():
    X, P = _toy(200, seed=5)
    rng = np.random.default_rng(6)
    idx = rng.permutation(200)
    tr, te = idx[:150], idx[150:]
    from wordle_moe.metrics import rps

    base = rps(P[te], MeanDistribution().fit(X[tr], P[tr]).predict(X[te])).mean()
    for est in (SoftmaxRegression(), RandomForestDistribution(n_estimators=50),
                GradientBoostingDistribution(max_iter=60)):
        score = rps(P[te], est.fit(X[tr], P[tr]).predict(X[te])).mean()
        assert score < base, type(est).__name__


def test_gradient_boosting_uses_soft_labels():
    """A constant feature leaves only the intercept: predict_proba must converge to the soft-label mean."""
    X = np.zeros((30, 1))
    _, P = _toy(30)
    pred = GradientBoostingDistribution(max_iter=300, learning_rate=0.2, l2_regularization=0.0).fit(X, P).predict(X[:1])
    np.testing.assert_allclose(pred[0], P.mean(0), atol=1e-3)


def test_replication_weights():
    X = np.arange(6, dtype=float).reshape(3, 2)
    P = np.tile(np.eye(7)[2], (3, 1))
    X_rep, y_rep, w_rep = baselines._replicate_soft_labels(X, P, np.array([1.0, 2.0, 3.0]))
    assert X_rep.shape == (21, 2) and y_rep.shape == (21,)
    np.testing.assert_array_equal(X_rep[7:14], np.tile(X[1], (7, 1)))
    np.testing.assert_allclose(w_rep.reshape(3, 7)[:, 2], [1, 2, 3])
    assert w_rep.sum() == pytest.approx(6.0)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        MeanDistribution().fit(np.zeros((3, 2)), np.ones((3, 6)))
    with pytest.raises(ValueError, match="rows"):
        SoftmaxRegression().fit(np.zeros((3, 2)), np.ones((4, 7)) / 7)
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxRegression().fit(np.full((3, 2), np.nan), np.ones((3, 7)) / 7)


def test_make_peers_with_pipeline_and_weights():
    X, P = _toy(50)
    peers = make_peers(random_state=0)
    assert set(peers) == {"mean_distribution", "softmax_regression", "random_forest", "gradient_boosting"}
    model = fit_estimator(peers["softmax_regression"], X * 100 + 5, P, sample_weight=np.ones(50))
    # scaler inside the pipeline: the regression sees standardised inputs, so results equal unscaled-input fit
    direct = SoftmaxRegression(alpha=1e-2).fit((X - X.mean(0)) / X.std(0), P)
    np.testing.assert_allclose(model.predict(X[:5] * 100 + 5), direct.predict((X[:5] - X.mean(0)) / X.std(0)), atol=1e-6)


def test_make_peers_with_a_config_adds_the_moe_and_its_single_expert_twin():
    from wordle_moe.config import MoEConfig

    cfg = MoEConfig(num_experts=3, top_k=2, seed=7)
    full = make_peers(cfg, moe_replicas=5, mlp_replicas=2)
    assert list(full) == ["mean_distribution", "softmax_regression", "random_forest", "gradient_boosting",
                          "single_mlp", "moe"]
    assert (full["moe"].num_experts, full["moe"].top_k, full["moe"].n_bootstrap, full["moe"].random_state) == (3, 2, 5, 7)
    assert (full["single_mlp"].num_experts, full["single_mlp"].top_k, full["single_mlp"].n_bootstrap) == (1, 1, 2)
    assert full["random_forest"].random_state == 7  # the config's seed unless random_state is given
    quick = make_peers(cfg, quick=True)
    assert list(quick) == ["mean_distribution", "softmax_regression", "moe"]
