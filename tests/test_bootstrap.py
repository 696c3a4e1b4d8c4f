"""Bootstrap: batched replicas equal the sequential reference; summary and evaluation maths."""
import numpy as np
import pytest

from tests.synthetic import softmax_linear_data
from wordle_moe.bootstrap import (
    bootstrap_evaluate,
    bootstrap_predict,
    bootstrap_summary,
    fit_bootstrap,
    oob_weights,
    resample_counts,
)
from wordle_moe.config import MoEConfig
from wordle_moe.metrics import distribution_metrics


def _data(n=40, d=5, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.4)


def test_resample_counts_come_from_one_spawned_stream_per_replica():
    """Replica r's resample = SeedSequence(seed).spawn(B)[r] (purpose key 0): independent of B, and runs
    with seeds s and s+1 share no resample (the old default_rng(seed + r) scheme shared B - 1)."""
    c = resample_counts(30, 4, seed=7)
    assert c.shape == (4, 30) and (c.sum(1) == 30).all()
    child = np.random.SeedSequence(7).spawn(4)[2]
    want = np.random.default_rng(np.random.SeedSequence(7, spawn_key=child.spawn_key + (0,)))
    np.testing.assert_array_equal(c[2], want.multinomial(30, np.full(30, 1 / 30)))
    np.testing.assert_array_equal(resample_counts(30, 200, seed=7)[:4], c)          # same in a batch of 200
    other = resample_counts(30, 4, seed=8)
    assert not any(np.array_equal(a, b) for a in c for b in other)


EARLY = dict(training="early_stopping", shared_base=False)   # the early-stopping path with MLP experts


@pytest.mark.parametrize("router", ["topk", "reputation"])
def test_batched_equals_sequential_replica_by_replica(router):
    """Replica r of the batched model == an R=1 run with seed+r and the same resample.

    Tolerance 1e-5: float32 batched vs single matmuls differ in summation order only.
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


@pytest.mark.parametrize("router", ["topk", "noisy_topk"])
def test_batched_equals_sequential_with_dropout_and_router_noise(router):
    """Per-replica dropout and noise streams: batched == sequential replica by replica WITH dropout > 0."""
    X, P = _data()
    cfg = MoEConfig(dropout=0.3, hidden_size=8, num_experts=3, max_epochs=30, patience=6, router=router, **EARLY)
    a, ia = bootstrap_predict(X, P, X[:9], config=cfg, B=3, seed=4)
    b, ib = bootstrap_predict(X, P, X[:9], config=cfg, B=3, seed=4, batched=False)
    np.testing.assert_array_equal(ia["best_epochs"], ib["best_epochs"])
    np.testing.assert_allclose(a, b, atol=1e-5)
    c, _ = bootstrap_predict(X, P, X[:9], config=cfg.replace(dropout=0.0), B=3, seed=4)
    assert np.abs(a - c).max() > 1e-3, "dropout really is on"


def test_replica_is_the_same_in_a_batch_of_2_and_of_200():
    """Replica r does not depend on B: other replicas pad the batch to more rows and stop at other epochs."""
    X, P = _data()
    cfg = MoEConfig(dropout=0.3, hidden_size=4, num_experts=2, max_epochs=25, patience=4, **EARLY)
    small, si = bootstrap_predict(X, P, X[:6], config=cfg, B=2, seed=3)
    big, bi = bootstrap_predict(X, P, X[:6], config=cfg, B=200, seed=3)
    assert len(set(bi["best_epochs"].tolist())) > 1, "replicas of the big batch stop at different epochs"
    np.testing.assert_array_equal(bi["best_epochs"][:2], si["best_epochs"])
    np.testing.assert_allclose(big[:2], small, atol=1e-5)


def test_converged_replica_is_the_same_in_a_batch_of_2_and_of_200():
    """Converged training: replica r converges at its own step and equals itself in a batch of 200."""
    X, P = _data()
    # CONVERGE_TOL=1e-4: every replica converges (at 1e-6 on these 40 rows 196 of 200 ran out of steps), at
    # steps 100..300 (with MAX_EPOCHS=400, whose faster-decaying rate left one replica unconverged), so the test
    # compares converged replicas and costs a third of the steps
    cfg = MoEConfig(num_experts=2, max_epochs=600, penalty_cv=0, delta_l2=0.01, gate_lr_scale=1.0, converge_tol=1e-4)
    small, si = bootstrap_predict(X, P, X[:6], config=cfg, B=2, seed=3)
    big, bi = bootstrap_predict(X, P, X[:6], config=cfg, B=200, seed=3)
    assert len(set(bi["best_epochs"].tolist())) > 5, "replicas of the big batch converge at different steps"
    assert (bi["best_epochs"] < cfg.max_epochs).all(), "every replica converged before running out of steps"
    np.testing.assert_array_equal(bi["best_epochs"][:2], si["best_epochs"])
    np.testing.assert_allclose(big[:2], small, atol=1e-5)


def test_runs_with_neighbouring_seeds_share_no_replica():
    X, P = _data()
    cfg = MoEConfig(hidden_size=4, max_epochs=5, patience=5)
    a, _ = bootstrap_predict(X, P, X[:6], config=cfg, B=4, seed=10)
    b, _ = bootstrap_predict(X, P, X[:6], config=cfg, B=4, seed=11)
    gaps = np.abs(a[:, None] - b[None]).max(axis=(-1, -2))     # (4, 4) every pair of replicas
    assert gaps.min() > 1e-3


def test_oob_weights_mark_out_of_bag_rows_and_fall_back_to_all_rows():
    counts = np.array([[0, 2, 1, 0], [1, 1, 1, 1], [4, 0, 0, 0]])
    np.testing.assert_array_equal(oob_weights(counts), [[1, 0, 0, 1], [1, 1, 1, 1], [0, 1, 1, 1]])


def test_each_replica_stops_on_its_own_out_of_bag_rows():
    X, P = _data()
    models, info = fit_bootstrap(X, P, config=MoEConfig(hidden_size=8, max_epochs=60, patience=5, lr=0.05, **EARLY), B=6,
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


def test_folds_in_one_batch_equal_a_bootstrap_per_fold():
    """fit_bootstrap_folds: replicas f·B .. f·B+B−1 are fold f's bootstrap, replica for replica, with the ridge
    strengths chosen by the inner CV on that fold's rows (nested)."""
    from sklearn.model_selection import KFold

    from wordle_moe.bootstrap import fit_bootstrap_folds, predict_bootstrap
    from wordle_moe.training import predict_replicas

    X, P = _data(n=48)
    cfg = MoEConfig(max_epochs=120, penalty_cv=2, seed=3)
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    B = 3
    model = fit_bootstrap_folds(X, P, folds, config=cfg, B=B, seed=3)
    assert model.replicas == 3 * B and model.replica_ids == [0, 1, 2] * 3
    joint = predict_replicas(model, X)
    for f, (tr, _) in enumerate(folds):
        alone, info = fit_bootstrap(X[tr], P[tr], config=cfg, B=B, seed=3)
        np.testing.assert_allclose(joint[f * B:(f + 1) * B], predict_bootstrap(alone, X), atol=2e-5)
        chosen = info["config"]
        assert model.penalty_base[f * B].item() == pytest.approx(chosen.base_l2)
        assert model.penalty_delta[f * B].item() == pytest.approx(chosen.delta_l2)
    with pytest.raises(ValueError, match="N_WEIGHTING"):
        fit_bootstrap_folds(X, P, folds, config=cfg.replace(n_weighting="sqrt"), B=B, seed=3,
                            n_reported=np.ones(len(X)))
