"""Bootstrap: batched replicas equal the sequential reference; summary and evaluation maths."""
import numpy as np
import pytest

from wordle_moe.bootstrap import (bootstrap_evaluate, bootstrap_predict, bootstrap_summary, fit_bootstrap,
                                  resample_counts)
from wordle_moe.config import MoEConfig
from wordle_moe.metrics import distribution_metrics
from tests.synthetic import softmax_linear_data


def _data(n=40, d=5, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.4)


def test_resample_counts_are_seeded_per_replica():
    c = resample_counts(30, 4, seed=7)
    assert c.shape == (4, 30) and (c.sum(1) == 30).all()
    np.testing.assert_array_equal(c[2], np.random.default_rng(9).multinomial(30, np.full(30, 1 / 30)))
    np.testing.assert_array_equal(resample_counts(30, 2, seed=9)[0], c[2])


@pytest.mark.parametrize("router", ["topk", "reputation"])
def test_batched_equals_sequential_replica_by_replica(router):
    """Replica r of the batched model == an R=1 run with seed+r and the same resample.

    dropout = 0 because the dropout masks come from one stream per run: the batched model draws one
    (R, E, n, H) mask, the sequential runs draw R separate (1, E, n, H) masks, so with dropout > 0 the
    two paths are different (equally valid) random experiments. Tolerance 1e-5: float32 batched
    vs single matmuls differ in summation order only.
    """
    X, P = _data()
    cfg = MoEConfig(dropout=0.0, hidden_size=8, num_experts=3, max_epochs=40, patience=6, router=router)
    a, ia = bootstrap_predict(X, P, X[:9], config=cfg, B=3, seed=11)
    b, ib = bootstrap_predict(X, P, X[:9], config=cfg, B=3, seed=11, batched=False)
    assert a.shape == b.shape == (3, 9, 7)
    np.testing.assert_array_equal(ia["best_epochs"], ib["best_epochs"])
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a[0], a[1]), "replicas differ (own resample, own init)"
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-6)


def test_each_replica_stops_on_its_own_out_of_bag_rows():
    X, P = _data()
    models, info = fit_bootstrap(X, P, config=MoEConfig(hidden_size=8, max_epochs=60, patience=5, lr=0.05), B=6,
                                 seed=0)
    assert len(models) == 1 and models[0].replicas == 6
    assert len(set(info["best_epochs"].tolist())) > 1, "replicas stop at different epochs"
    # Each replica's standardiser was fitted on its own in-bag rows, weighted by counts.
    m = models[0]
    np.testing.assert_allclose(m.x_mean[3].numpy(), np.average(X, axis=0, weights=info["counts"][3]), rtol=1e-5)


def test_bootstrap_summary_percentiles_and_std():
    rng = np.random.default_rng(0)
    P_boot = rng.dirichlet(np.ones(7), size=(200, 3))
    s = bootstrap_summary(P_boot, 0.9)
    np.testing.assert_allclose(s["mean"], P_boot.mean(0))
    np.testing.assert_allclose(s["std"], P_boot.std(0, ddof=1))
    np.testing.assert_allclose(s["low"], np.percentile(P_boot, 5, axis=0))
    np.testing.assert_allclose(s["high"], np.percentile(P_boot, 95, axis=0))
    assert (s["low"] <= s["mean"]).all() and (s["mean"] <= s["high"]).all()
    with pytest.raises(ValueError):
        bootstrap_summary(P_boot[0], 0.9)


def test_bootstrap_evaluate_coverage_and_width():
    rng = np.random.default_rng(1)
    P_boot = rng.dirichlet(np.ones(7) * 5, size=(100, 4))
    P_true = P_boot.mean(0)
    P_true[0] = np.eye(7)[0]  # far outside the replica spread in most buckets
    ev = bootstrap_evaluate(P_boot, P_true, 0.95)
    s = bootstrap_summary(P_boot, 0.95)
    inside = (P_true >= s["low"]) & (P_true <= s["high"])
    assert ev["coverage"] == pytest.approx(inside.mean()) and ev["coverage"] < 1.0
    assert ev["mean_interval_width"] == pytest.approx((s["high"] - s["low"]).mean())
    assert ev["rps"] == pytest.approx(distribution_metrics(P_true, s["mean"])["rps"])
