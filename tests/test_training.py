"""train_moe: validation before training, determinism, early stopping restore, history, helpers."""
import numpy as np
import pandas as pd
import pytest
import torch

from tests.synthetic import softmax_linear_data
from wordle_moe.config import ConfigError, MoEConfig
from wordle_moe.losses import soft_cross_entropy
from wordle_moe.training import evaluate, intermediates, predict_proba, train_moe

FAST = dict(hidden_size=8, max_epochs=25, patience=5)
EARLY = dict(training="early_stopping", shared_base=False)   # the early-stopping path with MLP experts


def _data(n=50, d=6, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.3, loc=1, spread=2)


def test_invalid_knob_fails_before_training():
    X, P = _data()
    with pytest.raises(ConfigError, match="TOP_K"):
        train_moe(X, P, X, P, num_experts=2, top_k=3)
    with pytest.raises(ConfigError, match="AUX_LOSS_WEIGHT"):
        train_moe(X, P, X, P, aux_loss_weight=-1.0)
    with pytest.raises(ConfigError, match="UNKNOWN_KNOB"):
        train_moe(X, P, X, P, unknown_knob=1)
    with pytest.raises(ValueError, match="P_train"):
        train_moe(X, P[:, :6], X, P)


def test_two_runs_with_one_seed_are_identical_and_seeds_differ():
    X, P = _data()
    a, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=3, **FAST, **EARLY)
    b, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=3, **FAST, **EARLY)
    c, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=4, **FAST, **EARLY)
    np.testing.assert_array_equal(predict_proba(a, X), predict_proba(b, X))
    assert not np.allclose(predict_proba(a, X), predict_proba(c, X))


def test_converged_default_draws_nothing_at_random():
    """The converged default starts from the data alone (base at the mean, Δ = 0, the gate's difficulty split),
    so its fit does not depend on SEED: two seeds give the same model."""
    X, P = _data()
    a, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=3, penalty_cv=0)
    c, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=4, penalty_cv=0)
    np.testing.assert_array_equal(predict_proba(a, X), predict_proba(c, X))


def test_history_columns_csv_and_best_weights_restored(tmp_path):
    X, P = _data()
    model, info = train_moe(X[:40], P[:40], X[40:], P[40:], output_dir=tmp_path, num_experts=3,
                            lr=0.05, max_epochs=60, patience=8, hidden_size=8)
    h = info["history"]
    for col in ["epoch", "total_loss", "main_loss", "lb_loss", "div", "out_div", "js", "z_loss", "val_loss",
                "routing_prob_expert_0", "routing_prob_expert_1", "routing_prob_expert_2"]:
        assert col in h.columns
    np.testing.assert_allclose(h[[f"routing_prob_expert_{i}" for i in range(3)]].sum(axis=1), 1.0, rtol=1e-5)
    on_disk = pd.read_csv(tmp_path / "moe_loss_log.csv")
    assert list(on_disk.columns) == list(h.columns) and len(on_disk) == len(h)
    best = info["best_epoch"]
    assert h["val_loss"].min() == pytest.approx(h.loc[h.epoch == best, "val_loss"].item())
    # The returned weights are those of the best epoch, not the last one.
    model.eval()
    with torch.no_grad():
        val = soft_cross_entropy(model(X[40:]), torch.as_tensor(P[40:], dtype=torch.float32),
                                 torch.ones(1, 10)).item()
    assert val == pytest.approx(h["val_loss"].min(), rel=1e-5)
    if len(h) > best:  # stopped by patience
        assert len(h) == best + 8
    # total = weighted sum of the logged terms
    cfg = info["config"]
    want = (h.main_loss + cfg.aux_loss_weight * h.lb_loss + cfg.expert_diversity_coef * h["div"]
            + cfg.expert_output_diversity_coef * h.out_div + cfg.expert_js_divergence_coef * h.js)
    np.testing.assert_allclose(h.total_loss, want, rtol=1e-5)


def test_zero_weight_rows_are_ignored():
    """sample_weight 0 on a row = training without that row (dropout 0: identical streams)."""
    X, P = _data()
    w = np.ones(40)
    w[30:] = 0
    a, _ = train_moe(X[:40], P[:40], X[40:], P[40:], sample_weight=w, dropout=0.0, **FAST)
    b, _ = train_moe(X[:30], P[:30], X[40:], P[40:], dropout=0.0, **FAST)
    np.testing.assert_allclose(predict_proba(a, X), predict_proba(b, X), atol=1e-5)


def test_n_weighting_changes_the_fit():
    X, P = _data()
    n_rep = np.linspace(100, 10000, 40)
    a, _ = train_moe(X[:40], P[:40], X[40:], P[40:], n_reported=n_rep, n_weighting="linear", **FAST)
    b, _ = train_moe(X[:40], P[:40], X[40:], P[40:], n_reported=n_rep, n_weighting="none", **FAST)
    assert not np.allclose(predict_proba(a, X), predict_proba(b, X))


def test_router_only_phase_runs_after_the_joint_phase_and_keeps_experts_fixed():
    X, P = _data()
    cfg = MoEConfig(router_only_epochs=10, **FAST, **EARLY)
    model, info = train_moe(X[:40], P[:40], X[40:], P[40:], config=cfg)
    h = info["history"]
    joint_only, jinfo = train_moe(X[:40], P[:40], X[40:], P[40:], config=cfg.replace(router_only_epochs=0))
    n_joint = len(jinfo["history"])
    # the joint phase is exactly the run without phase 2, then 1..10 router-only epochs follow, numbered on
    assert h["phase"].tolist()[:n_joint] == ["joint"] * n_joint
    assert 1 <= (h["phase"] == "router_only").sum() <= 10 and (h["phase"].iloc[n_joint:] == "router_only").all()
    assert h["epoch"].tolist() == list(range(1, len(h) + 1))
    assert not model.expert_w1.requires_grad
    torch.testing.assert_close(model.expert_w1, joint_only.expert_w1)
    assert not torch.equal(model.gate_w, joint_only.gate_w) or info["best_epoch"] <= n_joint


def test_predict_intermediates_and_evaluate():
    X, P = _data()
    model, info = train_moe(X[:40], P[:40], X[40:], P[40:], num_experts=3, top_k=2, **FAST)
    it = intermediates(model, X[:7])
    assert it["gate_scores"].shape == (7, 3) and it["top_k_indices"].shape == (7, 2)
    assert it["expert_outputs"].shape == (7, 3, 7) and isinstance(it["load_balance_loss"], float)
    np.testing.assert_allclose(it["gates"].sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(it["final_output"], predict_proba(model, X[:7]), rtol=1e-5, atol=1e-7)
    P_pred, metrics = evaluate(model, X[40:], P[40:])
    assert P_pred.shape == (10, 7)
    assert {"mae_pp", "rps", "js", "kl", "r2"} <= set(metrics)
    from wordle_moe.metrics import rps
    cum_pred, cum_true = np.cumsum(P_pred, 1), np.cumsum(P[40:], 1)
    want = ((cum_pred - cum_true) ** 2)[:, :6].sum(1).mean() / 6          # RPS by hand
    assert metrics["rps"] == pytest.approx(want) == pytest.approx(rps(P[40:], P_pred).mean())
    assert metrics["mae_pp"] == pytest.approx(100 * np.abs(P_pred - P[40:]).mean())
    assert info["seconds"] > 0 and info["config"].top_k == 2


def test_learns_better_than_the_mean_distribution():
    X, P = _data(n=200)
    model, _ = train_moe(X[:160], P[:160], X[160:], P[160:], hidden_size=16, max_epochs=150, patience=20)
    _, m = evaluate(model, X[160:], P[160:])
    from wordle_moe.metrics import distribution_metrics
    base = distribution_metrics(P[160:], np.tile(P[:160].mean(0), (40, 1)))
    assert m["rps"] < 0.7 * base["rps"]


def test_one_linear_expert_reproduces_lbfgs_softmax_regression_with_the_same_penalty():
    """NUM_EXPERTS=1 under converged training IS softmax regression: predictions within 1e-3 and RPS within 1%
    of the L-BFGS peer (StandardScaler + SoftmaxRegression) fitted with alpha = BASE_L2."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from wordle_moe.baselines import SoftmaxRegression
    from wordle_moe.metrics import rps

    X, P = softmax_linear_data(120, 6, seed=5, scale=0.5)
    rng = np.random.default_rng(5)
    P = np.stack([rng.dirichlet(a) for a in 300 * P + 1e-3])   # observed shares scatter around the linear model
    for alpha in (1e-2, 0.1):
        model, info = train_moe(X, P, X, P, num_experts=1, top_k=1, base_l2=alpha, penalty_cv=0, input_clip=0.0,
                                max_epochs=3000, converge_tol=1e-7)   # the default 1e-6: within 1.1e-3 here
        ours = predict_proba(model, X)
        peer = make_pipeline(StandardScaler(), SoftmaxRegression(alpha=alpha)).fit(X, P).predict(X)
        assert np.abs(ours - peer).max() < 1e-3
        assert rps(P, ours).mean() == pytest.approx(rps(P, peer).mean(), rel=0.01)
        assert info["best_epoch"] < 3000, "stopped by the convergence test, not by the step cap"


def test_converged_training_reaches_a_stationary_point_of_the_penalised_objective():
    """After training, each replica's objective barely moves under further steps and its gradient is small."""
    from wordle_moe.losses import loss_terms

    X, P = softmax_linear_data(90, 5, seed=6, scale=0.6)
    w = np.random.default_rng(0).multinomial(90, np.full(90, 1 / 90), size=3).astype(float)
    from wordle_moe.training import fit_replicas

    cfg = MoEConfig(num_experts=2, top_k=2, gate_lr_scale=1.0, delta_l2=0.05, penalty_cv=0, max_epochs=4000)
    model, info = fit_replicas(X, P, X, P, cfg, train_weight=w, val_weight=w)
    assert (info["best_epochs"] < 4000).all()
    model.eval()
    out = model(X, return_intermediate=True, weight=torch.as_tensor(w, dtype=torch.float32))
    Pt = torch.as_tensor(P, dtype=torch.float32)
    wt = torch.as_tensor(w, dtype=torch.float32)
    obj = loss_terms(out, Pt, wt, wt, model.expert_parameters_flat(), cfg)["total_loss"] + model.penalty()
    grads = torch.autograd.grad(obj.sum(), [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    gnorm = torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None))
    assert float(gnorm) < 5e-3


def test_converged_experts_deviate_only_as_far_as_their_penalty_allows():
    """A huge DELTA_L2 keeps the experts copies of the base (softmax regression); a small one lets them differ."""
    X, P = softmax_linear_data(100, 5, seed=7, scale=0.8)
    tight, _ = train_moe(X, P, X, P, num_experts=2, top_k=2, delta_l2=1e4, penalty_cv=0, gate_lr_scale=1.0)
    loose, _ = train_moe(X, P, X, P, num_experts=2, top_k=2, delta_l2=1e-3, penalty_cv=0, gate_lr_scale=1.0)
    assert float(tight.expert_skip_w.detach().abs().max()) < 1e-3
    assert float(loose.expert_skip_w.detach().abs().max()) > 1e-2


def test_pick_penalties_prefers_the_prior_within_one_standard_error():
    import pandas as pd

    from wordle_moe.training import pick_penalties

    t = pd.DataFrame({"base_l2": [3e-3, 1e-2, 1e-2, 3e-2], "delta_l2": [3.0, 0.3, 30.0, 3.0],
                      "rps_mean": [2.70, 2.74, 2.75, 2.90], "rps_se": [0.06, 0.05, 0.05, 0.05]})
    assert pick_penalties(t, 1e-2) == 2          # within 2.70 + 0.06: base 0.01, then the larger DELTA_L2
    assert pick_penalties(t.assign(rps_se=0.01), 1e-2) == 0   # the data beats the prior clearly: its argmin
    assert pick_penalties(t, 3e-3) == 0


def test_penalties_are_chosen_by_inner_cv_on_the_given_rows_only():
    from wordle_moe.training import BASE_L2_GRID, DELTA_L2_GRID, select_penalties

    X, P = softmax_linear_data(60, 4, seed=8, scale=0.5)
    cfg, table = select_penalties(X, P, MoEConfig(penalty_cv=3, max_epochs=150))
    assert len(table) == 2 * len(BASE_L2_GRID) * len(DELTA_L2_GRID) and table["chosen"].sum() == 1
    assert set(table["input_clip"]) == {MoEConfig().input_clip, 0.0}   # the clip as set, or none
    best = table.loc[table["chosen"]].iloc[0]
    assert (cfg.base_l2, cfg.delta_l2, cfg.input_clip) == (best["base_l2"], best["delta_l2"], best["input_clip"])
    low = table["rps_mean"].idxmin()
    assert best["rps_mean"] <= table.loc[low, "rps_mean"] + table.loc[low, "rps_se"]   # one-standard-error rule
    # other rows -> possibly another choice, never an error; early stopping and PENALTY_CV=0 leave the config alone
    same, empty = select_penalties(X, P, MoEConfig(penalty_cv=0))
    assert same == MoEConfig(penalty_cv=0) and empty.empty
    one, t1 = select_penalties(X, P, MoEConfig(num_experts=1, top_k=1, max_epochs=150))
    assert len(t1) == 2 * len(BASE_L2_GRID)


def test_zero_weight_terms_are_logged_every_log_every_steps_and_leave_the_weights_unchanged():
    """log_every=1 logs the diversity terms at every step; the default logs them every CHECK_EVERY steps (NaN
    between) and trains bit for bit the same weights."""
    from wordle_moe.training import CHECK_EVERY, fit_replicas

    X, P = softmax_linear_data(40, 4, 0, scale=0.4)
    cfg = MoEConfig(max_epochs=60, penalty_cv=0)
    w = np.ones((2, 40))
    every, info_every = fit_replicas(X, P, X, P, cfg, train_weight=w, val_weight=w, log_every=1)
    sparse, info_sparse = fit_replicas(X, P, X, P, cfg, train_weight=w, val_weight=w)
    for name, p in every.named_parameters():
        assert torch.equal(p, dict(sparse.named_parameters())[name]), name
    h1, h2 = info_every["history"], info_sparse["history"]
    assert h1["js"].notna().all()
    logged = h2["js"].notna().to_numpy()
    np.testing.assert_array_equal(np.flatnonzero(logged), np.arange(0, len(h2), CHECK_EVERY))
    np.testing.assert_array_equal(h2.loc[logged, "js"].to_numpy(), h1.loc[logged, "js"].to_numpy())
    np.testing.assert_array_equal(h2["main_loss"].to_numpy(), h1["main_loss"].to_numpy())
