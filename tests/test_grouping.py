"""Difficulty start of the gate and experts, difficulty order of the experts: maths against numpy, relabelling."""
import numpy as np
import pytest
import torch

from tests.synthetic import softmax_linear_data
from wordle_moe import grouping
from wordle_moe.config import ConfigError, MoEConfig
from wordle_moe.model import MoEModel
from wordle_moe.training import fit_replicas, train_moe

TRIES = np.arange(1, 8)


def _data(n=60, d=5, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.5)


def _model(X, w, **knobs):
    cfg = MoEConfig(hidden_size=8, dropout=0.0, **knobs)
    return MoEModel(X.shape[1], cfg, replicas=len(w)).fit_standardizer(X, w)


def test_weighted_quantiles_match_the_cumulative_weight_definition():
    rng = np.random.default_rng(0)
    u, w = rng.normal(size=(3, 25)), rng.integers(0, 4, size=(3, 25)).astype(float)
    got = grouping.weighted_quantiles(torch.as_tensor(u), torch.as_tensor(w), torch.tensor([0.25, 0.5])).numpy()
    for r in range(3):
        o = np.argsort(u[r])
        cum = np.cumsum(w[r][o]) / w[r].sum()
        mid = grouping.weighted_quantiles(torch.as_tensor(u), torch.as_tensor(w), torch.tensor([0.25, 0.5]),
                                          midpoint=True).numpy()
        for j, q in enumerate([0.25, 0.5]):
            k = np.searchsorted(cum, q)
            assert got[r, j] == u[r][o][k]
            above = u[r][o][k + 1:][w[r][o][k + 1:] > 0]
            assert mid[r, j] == pytest.approx(0.5 * (u[r][o][k] + above[0]))


def test_difficulty_scores_are_a_weighted_ridge_fit_of_expected_tries():
    X, P = _data()
    rng = np.random.default_rng(1)
    w = rng.integers(0, 3, size=(2, 60)).astype(float)
    z = torch.as_tensor(np.stack([X, X + 0.1 * rng.normal(size=X.shape)]))
    coef, u = grouping.difficulty_scores(z, torch.as_tensor(P), torch.as_tensor(w))
    y = P @ TRIES
    for r in range(2):
        W = w[r]
        zc = z[r].numpy() - np.average(z[r].numpy(), axis=0, weights=W)
        beta = np.linalg.solve(zc.T @ (W[:, None] * zc) + grouping.RIDGE_SHARE * W.sum() * np.eye(5),
                               zc.T @ (W * (y - np.average(y, weights=W))))
        score = zc @ beta
        sd = np.sqrt(np.average(score ** 2, weights=W))
        np.testing.assert_allclose(u[r].numpy(), score / sd, rtol=1e-8)
        np.testing.assert_allclose(coef[r].numpy(), beta / sd, rtol=1e-8)
        assert np.corrcoef(score[W > 0], y[W > 0])[0, 1] > 0.5, "the score tracks difficulty"


@pytest.mark.parametrize("E", [2, 3])
def test_difficulty_gate_start_splits_the_replicas_own_rows_at_quantiles_easy_first(E):
    X, P = _data(n=90)
    w = np.stack([np.ones(90), np.random.default_rng(2).multinomial(90, np.full(90, 1 / 90))]).astype(float)
    m = _model(X, w, num_experts=E, top_k=1)
    grouping.init_gate_by_difficulty(m, X, P, w)
    m.eval()
    with torch.no_grad():
        z = m.standardise(X)
        labels = m(X, return_intermediate=True)["top_k_indices"][..., 0].numpy()
    _, u = grouping.difficulty_scores(z, torch.as_tensor(P), torch.as_tensor(w))
    t = grouping.weighted_quantiles(u, torch.as_tensor(w), torch.arange(1, E, dtype=torch.float64) / E,
                                    midpoint=True).numpy()
    for r in range(2):
        want = (u[r].numpy()[:, None] > t[r][None]).sum(1)        # bin index of each row's score
        np.testing.assert_array_equal(labels[r], want)
        share = np.bincount(labels[r], weights=w[r], minlength=E) / w[r].sum()
        np.testing.assert_allclose(share, 1 / E, atol=0.1)
        tries = [np.average(P[labels[r] == e] @ TRIES, weights=w[r][labels[r] == e]) for e in range(E)]
        assert np.all(np.diff(tries) > 0), "expert 0 starts with the easiest words"


def test_experts_start_at_the_log_mean_distribution_of_their_starting_group():
    X, P = _data()
    w = np.ones((1, 60))
    m = _model(X, w)
    grouping.init_gate_by_difficulty(m, X, P, w)
    grouping.init_experts_at_group_means(m, X, P, w)
    with torch.no_grad():
        labels = m.eval()(X, return_intermediate=True)["top_k_indices"][0, :, 0].numpy()
    for e in range(2):
        np.testing.assert_allclose(m.expert_b2[0, e].detach().exp().numpy(), P[labels == e].mean(0), rtol=1e-5)


def test_permuting_experts_is_a_pure_relabelling():
    X, P = _data()
    for knobs in ({"num_experts": 3, "top_k": 2, "router": "reputation"}, {"num_experts": 3, "gate": "mlp"},
                  {"num_experts": 3, "expert_skip": True, "router": "noisy_topk", "shared_base": False}):
        m = _model(X, np.ones((2, 60)), **knobs).eval()
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
            before = m(X, return_intermediate=True)
        perm = torch.tensor([[2, 0, 1], [1, 2, 0]])
        grouping.permute_experts(m, perm)
        with torch.no_grad():
            after = m(X, return_intermediate=True)
        torch.testing.assert_close(after["final_output"], before["final_output"])
        for r in range(2):
            torch.testing.assert_close(after["gates"][r], before["gates"][r][:, perm[r]])
            torch.testing.assert_close(after["expert_outputs"][r], before["expert_outputs"][r][:, perm[r]])


def test_trained_experts_are_ordered_by_the_expected_tries_of_their_routed_output():
    X, P = _data(n=80)
    counts = np.random.default_rng(3).multinomial(80, np.full(80, 1 / 80), size=3).astype(float)
    cfg = MoEConfig(hidden_size=8, num_experts=3, top_k=1, max_epochs=40, patience=40, gate_init="random")
    model, _ = fit_replicas(X, P, X, P, cfg, train_weight=counts, val_weight=np.ones((3, 80)))
    tries = grouping.routed_expected_tries(model, X, counts).numpy()
    assert np.all(np.diff(tries, axis=1) > 0), tries
    unordered, _ = fit_replicas(X, P, X, P, cfg.replace(expert_order="none"), train_weight=counts,
                                val_weight=np.ones((3, 80)))
    np.testing.assert_allclose(np.sort(grouping.routed_expected_tries(unordered, X, counts).numpy(), axis=1),
                               tries, rtol=1e-5)


def test_history_routing_columns_follow_the_relabelled_experts():
    X, P = _data()
    model, info = train_moe(X[:48], P[:48], X[48:], P[48:], hidden_size=8, max_epochs=20, patience=20,
                            gate_init="random", dropout=0.0)
    with torch.no_grad():
        model.train()
        out = model(X[:48], return_intermediate=True)
    # the logged routing probabilities of the last epoch are those of the (relabelled) final model's
    # training forward one step earlier: compare orderings, not values
    last = info["history"].iloc[-1][["routing_prob_expert_0", "routing_prob_expert_1"]].to_numpy(float)
    now = out["gate_scores"][0].mean(0).numpy()
    assert np.argmax(last) == np.argmax(now)


def test_grouping_knobs_are_validated_by_name():
    for knob, value in (("gate_init", "zeros"), ("expert_order", "size"), ("expert_init", "x"),
                        ("gate_init_scale", 0.0), ("gate_lr_scale", -1.0)):
        with pytest.raises(ConfigError, match=knob.upper()):
            MoEConfig(**{knob: value}).validate()


def test_upcycled_moe_starts_as_the_dense_model_whatever_the_routing():
    X, P = _data()
    w = np.ones((2, 60))
    dense = _model(X, w, num_experts=1)
    moe = _model(X, w, num_experts=3, top_k=1, expert_skip=False)
    grouping.init_gate_by_difficulty(moe, X, P, w)
    grouping.upcycle_experts(moe, dense)
    with torch.no_grad():
        a, b = moe.eval()(X, return_intermediate=True), dense.eval()(X)
    assert len(set(a["top_k_indices"][..., 0].flatten().tolist())) == 3, "the gate still splits the words"
    torch.testing.assert_close(a["final_output"], b)
    for e in range(3):
        torch.testing.assert_close(a["expert_outputs"][:, :, e], b)
