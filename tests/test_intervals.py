"""Tests of wordle_moe.intervals: the one implementation of the interval of the mean and the predictive interval."""
import numpy as np
import pytest

from wordle_moe.intervals import INTERVAL_KINDS, bootstrap_summary, predictive_interval, replica_intervals


def test_predictive_interval_math():
    mean = np.array([[0.2, 0.8]])
    resid = np.array([[-0.1, 0.0], [0.0, 0.05], [0.1, -0.05]] * 10)
    lo, hi = predictive_interval(mean, mean - 0.01, mean + 0.01, resid, ci_level=0.5)
    q_lo, q_hi = np.quantile(resid, [0.25, 0.75], axis=0)
    np.testing.assert_allclose(lo, np.minimum(mean - 0.01, mean + q_lo))
    np.testing.assert_allclose(hi, np.maximum(mean + 0.01, mean + q_hi))
    with pytest.raises(ValueError, match="ci_level"):
        predictive_interval(mean, mean, mean, resid, ci_level=1.0)


def test_predictive_interval_is_residual_quantiles_enveloping_the_bootstrap_interval():
    mean = np.full((2, 7), 0.2)
    resid = np.tile(np.linspace(-0.1, 0.1, 201)[:, None], (1, 7))  # 2.5% / 97.5% quantiles: -0.095 / +0.095
    lo, hi = predictive_interval(mean, mean - 0.03, mean + 0.04, resid, 0.95)
    np.testing.assert_allclose(lo, 0.2 - 0.095)
    np.testing.assert_allclose(hi, 0.2 + 0.095)
    # a bootstrap interval wider than the residual spread is kept
    lo, hi = predictive_interval(mean, mean - 0.15, mean + 0.01, resid, 0.95)
    np.testing.assert_allclose(lo, 0.05)
    np.testing.assert_allclose(hi, 0.295)
    lo0, _ = predictive_interval(np.full((1, 7), 0.01), np.full((1, 7), 0.0),
                                            np.full((1, 7), 0.02), resid, 0.95)
    assert (lo0 >= 0).all()  # clipped to valid shares


def test_replica_intervals_match_the_summary_and_refuse_what_they_cannot_give():
    rng = np.random.default_rng(0)
    P_boot = rng.dirichlet(np.ones(7), (20, 5))                     # (R, n, 7)
    resid = rng.normal(0, 0.02, (40, 7))
    out = replica_intervals(P_boot, resid, 0.9)
    assert set(out) == set(INTERVAL_KINDS)
    s = bootstrap_summary(P_boot, 0.9)
    np.testing.assert_allclose(out["mean"][1], np.quantile(P_boot, 0.05, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(out["predictive"][1:], predictive_interval(s["mean"], s["low"], s["high"], resid, 0.9))
    assert (out["predictive"][1] <= out["mean"][1]).all() and (out["predictive"][2] >= out["mean"][2]).all()
    with pytest.raises(ValueError, match="needs bootstrap replicas"):
        replica_intervals(P_boot[:1], resid, 0.9, kinds=("mean",))
    with pytest.raises(ValueError, match="no held-out residuals"):
        replica_intervals(P_boot, None, 0.9, kinds=("predictive",))
    with pytest.raises(ValueError, match="kind must be one of"):
        replica_intervals(P_boot, resid, 0.9, kinds=("median",))
