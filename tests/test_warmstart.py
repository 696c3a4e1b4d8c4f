"""Warm start of the experts' skip path: the batched L-BFGS solves each replica's softmax regression exactly."""
import numpy as np
import pytest
import torch

from wordle_moe.baselines import SoftmaxRegression
from wordle_moe.config import ConfigError, MoEConfig
from wordle_moe.model import MoEModel
from wordle_moe.training import fit_replicas
from wordle_moe.warmstart import softmax_regressions, warm_start_skip_path


def problem(n=80, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X @ rng.normal(size=(d, 7))
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return X, P


def test_each_replica_matches_the_single_softmax_regression():
    X, P = problem()
    rng = np.random.default_rng(1)
    weight = rng.integers(0, 3, size=(3, len(X))).astype(float)  # bootstrap-like counts, some rows absent
    Z = np.stack([X, 2 * X + 1, X])  # replicas may see differently scaled inputs
    W, b = softmax_regressions(Z, P, weight, alpha=1e-2)
    assert W.shape == (3, 4, 7) and b.shape == (3, 7)
    for r in range(3):
        ref = SoftmaxRegression(alpha=1e-2).fit(Z[r], P, sample_weight=weight[r])
        ours = np.exp(Z[r] @ W[r] + b[r])
        ours /= ours.sum(1, keepdims=True)
        np.testing.assert_allclose(ours, ref.predict(Z[r]), atol=2e-6)


def test_warm_started_experts_start_as_the_linear_model():
    X, P = problem(seed=2)
    cfg = MoEConfig(num_experts=2, expert_skip=True, dropout=0.0, input_clip=0.0, shared_base=False).validate()
    model = MoEModel(X.shape[1], cfg, replicas=2)
    counts = np.ones((2, len(X)))
    model.fit_standardizer(X, counts)
    warm_start_skip_path(model, X, P, counts)
    model.eval()
    with torch.no_grad():
        experts = model(X.astype(np.float32), return_intermediate=True)["expert_outputs"].numpy()  # (R, n, E, 7)
    Z = (X - X.mean(0)) / X.std(0)
    ref = SoftmaxRegression(alpha=1e-2).fit(Z, P).predict(Z)
    for r in range(2):
        for e in range(2):
            np.testing.assert_allclose(experts[r, :, e], ref, atol=1e-5)


def test_knob_needs_the_skip_path_and_training_uses_it():
    with pytest.raises(ConfigError, match="SKIP_INIT"):
        MoEConfig(skip_init="softmax_regression").validate()
    with pytest.raises(ConfigError, match="SKIP_INIT"):
        MoEConfig(expert_skip=True, skip_init="lbfgs").validate()
    X, P = problem(seed=3)
    cfg = MoEConfig(num_experts=2, expert_skip=True, skip_init="softmax_regression", max_epochs=1, patience=1,
                    shared_base=False,
                    lr=1e-12).validate()
    model, _ = fit_replicas(X, P, X, P, cfg, train_weight=np.ones((1, len(X))), val_weight=np.ones((1, len(X))))
    # after one step at a negligible learning rate the skip weights are still the L-BFGS solution
    Z = model.standardise(X.astype(np.float32)).double().numpy()
    W, _ = softmax_regressions(Z, P, np.ones((1, len(X))))
    np.testing.assert_allclose(model.expert_skip_w.detach().numpy()[0, 0], W[0], atol=1e-4)
    assert not np.allclose(W[0], 0)
