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
    a, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=3, **FAST)
    b, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=3, **FAST)
    c, _ = train_moe(X[:40], P[:40], X[40:], P[40:], seed=4, **FAST)
    np.testing.assert_array_equal(predict_proba(a, X), predict_proba(b, X))
    assert not np.allclose(predict_proba(a, X), predict_proba(c, X))


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
    cfg = MoEConfig(router_only_epochs=10, **FAST)
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
