"""MoE model: shapes, exact top-k mixture, top-1 gradient fix, zero-init trap, replica axis."""
import numpy as np
import pytest
import torch

from tests.synthetic import softmax_linear_data
from wordle_moe.config import MoEConfig
from wordle_moe.model import MoEModel


def _data(n=30, d=6, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.2, loc=5, spread=3)


def _np_softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("gate", ["linear", "mlp"])
def test_forward_intermediates_shapes_and_sums(gate):
    X, _ = _data()
    m = MoEModel(6, MoEConfig(num_experts=3, top_k=2, hidden_size=8, gate=gate), replicas=2).eval()
    m.fit_standardizer(X)
    out = m(X, return_intermediate=True)
    assert out["gate_scores"].shape == (2, 30, 3)
    assert out["top_k_scores"].shape == out["top_k_indices"].shape == (2, 30, 2)
    assert out["expert_outputs"].shape == (2, 30, 3, 7)
    assert out["final_output"].shape == (2, 30, 7) and out["load_balance_loss"].shape == (2,)
    torch.testing.assert_close(out["final_output"].sum(-1), torch.ones(2, 30))
    torch.testing.assert_close(out["gates"].sum(-1), torch.ones(2, 30))
    assert ((out["gates"] > 0).sum(-1) == 2).all()
    torch.testing.assert_close(m(X), out["final_output"])


@pytest.mark.parametrize("k", [1, 2])
def test_value_equals_exact_topk_procedure(k):
    """softmax -> top-k -> renormalise -> sparse gates, recomputed in numpy from the logits."""
    X, _ = _data()
    m = MoEModel(6, MoEConfig(num_experts=3, top_k=k, hidden_size=8), replicas=1).eval()
    m.fit_standardizer(X)
    out = {k2: v.detach().numpy()[0] for k2, v in m(X, return_intermediate=True).items() if v.dim() > 1}
    p = _np_softmax(out["gate_logits"])
    top = np.argsort(-p, axis=1)[:, :k]
    gates = np.zeros_like(p)
    chosen = np.take_along_axis(p, top, 1)
    np.put_along_axis(gates, top, chosen / chosen.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(out["gates"], gates, rtol=1e-5, atol=1e-7)
    want = np.einsum("ne,nec->nc", gates, out["expert_outputs"])
    np.testing.assert_allclose(out["final_output"], want, rtol=1e-5, atol=1e-7)


def test_top1_gate_gets_gradient_from_main_loss():
    """Trap: top-1 renormalised weight is constant 1. The straight-through path gives the gate a gradient."""
    X, P = _data()
    m = MoEModel(6, MoEConfig(num_experts=3, top_k=1, hidden_size=8, dropout=0.0, shared_base=False), replicas=1)
    m.fit_standardizer(X)
    loss = -(torch.as_tensor(P, dtype=torch.float32) * torch.log(m(X)[0])).sum(-1).mean()
    loss.backward()
    fixed = m.gate_w.grad.abs().sum().item()
    assert fixed > 1e-3
    # Without the fix the exact top-1 path carries no gate gradient (p/p = 1: only float rounding).
    m.zero_grad()
    m.straight_through = False
    loss = -(torch.as_tensor(P, dtype=torch.float32) * torch.log(m(X)[0])).sum(-1).mean()
    loss.backward()
    assert m.gate_w.grad is None or m.gate_w.grad.abs().sum().item() < 1e-4 * fixed


def test_zero_initialised_gate_ties_and_collapses_but_ours_does_not():
    X, _ = _data(n=40)
    m = MoEModel(6, MoEConfig(num_experts=3, top_k=1, hidden_size=8), replicas=1).eval()
    m.fit_standardizer(X)
    ours = m(X, return_intermediate=True)["top_k_indices"][0, :, 0]
    assert len(torch.unique(ours)) >= 2, "our init routes rows to several experts"
    with torch.no_grad():
        m.gate_w.zero_()
        m.gate_b.zero_()
    out = m(X, return_intermediate=True)
    torch.testing.assert_close(out["gate_scores"], torch.full((1, 40, 3), 1 / 3))   # every logit tied
    assert (out["top_k_indices"] == 0).all(), "ties all go to expert 0: routing collapses"


def test_replica_r_equals_single_model_with_the_same_replica_id_and_seeds_share_no_replica():
    cfg = MoEConfig(num_experts=2, hidden_size=8, seed=5, shared_base=False)
    batched = MoEModel(6, cfg, replicas=3)
    single = MoEModel(6, cfg, replicas=1, replica_ids=[2])
    for name, p in single.named_parameters():
        torch.testing.assert_close(getattr(batched, name)[2:3], p)
    assert not torch.equal(batched.expert_w1[0], batched.expert_w1[1])
    # seed 6 shares no initial weights with seed 5 (the old seed + r scheme shared B - 1 replicas)
    other = MoEModel(6, cfg.replace(seed=6), replicas=3)
    for i in range(3):
        for j in range(3):
            assert not torch.equal(other.expert_w1[i], batched.expert_w1[j])


def test_weighted_standardiser_and_raw_inputs():
    X, _ = _data()
    w = np.zeros((2, 30))
    w[0, :10] = 1
    w[1] = np.arange(30)
    m = MoEModel(6, MoEConfig(hidden_size=4), replicas=2).fit_standardizer(X, w)
    np.testing.assert_allclose(m.x_mean[0].numpy(), X[:10].mean(0), rtol=1e-5)
    np.testing.assert_allclose(m.x_std[0].numpy(), X[:10].std(0), rtol=1e-4)
    np.testing.assert_allclose(m.x_mean[1].numpy(), np.average(X, axis=0, weights=w[1]), rtol=1e-5)
    with pytest.raises(ValueError, match="features"):
        m(X[:, :5])


def test_freeze_experts_leaves_only_router_trainable():
    m = MoEModel(6, MoEConfig(hidden_size=4, shared_base=False), replicas=1).freeze_experts()
    assert not m.expert_w1.requires_grad and m.gate_w.requires_grad
    assert all(p.requires_grad for p in m.router_parameter_list())


def test_constant_column_stays_unscaled_in_every_bootstrap_replica():
    """Regression: float32 E[x²]−E[x]² gave a column of ones std ≈ 2e-4 (not 0) in most bootstrap
    replicas, so a word with 0 there (in_answer_list) was standardised to z ≈ −1600 and collapsed."""
    from wordle_moe.bootstrap import resample_counts
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=(359, 3)), np.ones(359)])
    counts = resample_counts(359, 50, seed=0)
    m = MoEModel(4, MoEConfig(hidden_size=4), replicas=50).fit_standardizer(X, counts)
    np.testing.assert_array_equal(m.x_std[:, 3].numpy(), 1.0)   # constant on every resample: unscaled
    np.testing.assert_allclose(m.x_mean[:, 3].numpy(), 1.0)
    np.testing.assert_allclose(m.x_std[:, 0].numpy(),
                               [np.sqrt(np.cov(X[:, 0], aweights=c, bias=True)) for c in counts], rtol=1e-5)
    x_new = np.array([[0.0, 0.0, 0.0, 0.0]])
    z = m.standardise(x_new)
    torch.testing.assert_close(z[:, 0, 3], torch.full((50,), -1.0))


def test_out_of_range_inputs_are_clipped_to_input_clip():
    """A row far outside the training range predicts like one at ±INPUT_CLIP σ (bounded extrapolation)."""
    X, _ = _data()
    m = MoEModel(6, MoEConfig(hidden_size=8, input_clip=5.0, shared_base=False), replicas=2).eval()
    m.fit_standardizer(X)
    mean, std = m.x_mean[0].numpy(), m.x_std[0].numpy()
    far = (mean + np.array([1e3, -1e3, 0, 0, 0, 0]) * std)[None]
    edge = (mean + np.array([5.0, -5.0, 0, 0, 0, 0]) * std)[None]
    z = m.standardise(far)
    assert z.abs().max().item() == pytest.approx(5.0)
    with torch.no_grad():
        torch.testing.assert_close(m(far)[0], m(edge)[0], rtol=1e-4, atol=1e-5)
        m.config.input_clip = 0.0   # 0 disables the clip: extrapolation is linear again
        assert not torch.allclose(m(far)[0], m(edge)[0], atol=1e-3)


@pytest.mark.parametrize("activation", ["gelu", "relu", "swish", "tanh"])
def test_dropout_training_step_backpropagates_for_every_activation(activation):
    """The dropout mask is applied in place after gelu/swish only (relu/tanh backward reads its output)."""
    X, P = _data()
    m = MoEModel(6, MoEConfig(hidden_size=8, dropout=0.5, activation=activation, shared_base=False), replicas=2).train()
    m.fit_standardizer(X)
    y = m(X)
    (-(torch.as_tensor(P, dtype=torch.float32) * torch.log(y)).sum(-1).mean()).backward()
    assert m.expert_w1.grad.abs().sum() > 0 and torch.isfinite(m.expert_w1.grad).all()
    torch.testing.assert_close(y.sum(-1), torch.ones(2, 30))
    h = torch.rand(2 * 2, 30, 8) + 1.0    # nonzero everywhere, so only the mask makes zeros
    kept = (m._dropout_(h.clone()) != 0).float().mean().item()
    assert 0.4 < kept < 0.6, "about half the hidden units dropped at DROPOUT=0.5"


def test_expert_skip_with_zero_mlp_output_is_softmax_regression_per_expert():
    """EXPERT_SKIP: with the MLP's second layer at zero each expert is exactly softmax(z·W_skip), per replica."""
    X, _ = _data()
    m = MoEModel(6, MoEConfig(num_experts=3, top_k=2, hidden_size=8, expert_skip=True, shared_base=False), replicas=2).eval()
    m.fit_standardizer(X)
    assert m.expert_skip_w.shape == (2, 3, 6, 7)
    torch.testing.assert_close(m.expert_skip_w, torch.zeros(2, 3, 6, 7))  # zero start: the MLP alone
    with torch.no_grad():
        m.expert_skip_w.copy_(torch.randn(2, 3, 6, 7, generator=torch.Generator().manual_seed(1)))
        m.expert_w2.zero_()
        m.expert_b2.zero_()
    with torch.no_grad():
        out = m(X, return_intermediate=True)
    z = np.clip((X[None] - m.x_mean.numpy()[:, None]) / m.x_std.numpy()[:, None], -5, 5)   # (R, n, d)
    want = _np_softmax(np.einsum("rnd,redc->rnec", z, m.expert_skip_w.detach().numpy()))
    assert out["expert_outputs"].shape == (2, 30, 3, 7)
    np.testing.assert_allclose(out["expert_outputs"].numpy(), want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out["final_output"].sum(-1), torch.ones(2, 30))
    # the skip weights are expert parameters (frozen with the experts, in the diversity vector)
    assert any(p is m.expert_skip_w for p in m.expert_parameter_list())
    assert m.expert_parameters_flat().shape == (2, 3, 6 * 8 + 8 + 8 * 7 + 7 + 6 * 7)


def test_expert_skip_off_keeps_default_parameters_and_outputs():
    """Default path unchanged: no skip parameter, and the other parameters/outputs equal an EXPERT_SKIP model's MLP."""
    X, _ = _data()
    plain = MoEModel(6, MoEConfig(num_experts=2, hidden_size=8, shared_base=False), replicas=1).eval()
    skip = MoEModel(6, MoEConfig(num_experts=2, hidden_size=8, expert_skip=True, shared_base=False), replicas=1).eval()
    assert not hasattr(plain, "expert_skip_w")
    assert set(dict(skip.named_parameters())) - set(dict(plain.named_parameters())) == {"expert_skip_w"}
    for name, p in plain.named_parameters():
        torch.testing.assert_close(p, getattr(skip, name))
    for mdl in (plain, skip):
        mdl.fit_standardizer(X)
    with torch.no_grad():
        torch.testing.assert_close(plain(X), skip(X))   # zero skip weights: identical mixture
    torch.testing.assert_close(plain.skip_penalty(), torch.zeros(1))


def test_skip_l2_penalty_is_half_l2_norm_per_replica():
    m = MoEModel(4, MoEConfig(num_experts=2, hidden_size=4, expert_skip=True, skip_l2=0.1, shared_base=False), replicas=3)
    with torch.no_grad():
        m.expert_skip_w.copy_(torch.arange(3 * 2 * 4 * 7, dtype=torch.float32).view(3, 2, 4, 7) / 100)
    want = 0.05 * (m.expert_skip_w.detach().numpy() ** 2).reshape(3, -1).sum(1)
    np.testing.assert_allclose(m.skip_penalty().detach().numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(m.skip_penalty(torch.tensor([2])).detach().numpy(), want[2:], rtol=1e-5)


def test_skip_zero_mlp_starts_each_expert_at_softmax_of_its_bias():
    """SKIP_ZERO_MLP: output layer (and skip) start at 0, so expert e outputs softmax(b2_e) for every row."""
    X, _ = _data()
    m = MoEModel(6, MoEConfig(num_experts=2, hidden_size=8, expert_skip=True, skip_zero_mlp=True, shared_base=False),
                 replicas=2).eval()
    m.fit_standardizer(X)
    assert float(m.expert_w2.detach().abs().sum()) == 0.0 and float(m.expert_w1.detach().abs().sum()) > 0
    with torch.no_grad():
        out = m(X, return_intermediate=True)["expert_outputs"].numpy()   # (R, n, E, 7)
    want = _np_softmax(m.expert_b2.detach().numpy())                       # (R, E, 7)
    np.testing.assert_allclose(out, np.broadcast_to(want[:, None], out.shape), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("E,mlp", [(1, False), (3, False), (2, True)])
def test_shared_base_experts_match_numpy_and_are_stored_rows_innermost(E, mlp):
    """softmax(z·(W_base + Δ_e) + b_base + δ_e [+ tanh(z·W1_e + b1_e)·W2_e]) recomputed in numpy; the outputs are
    (R, n, E, 7) views of buckets-outer storage, and the mixture and the cross-entropy give what contiguous copies
    give."""
    from wordle_moe.losses import buckets_outer, soft_cross_entropy
    from wordle_moe.model import SKIP_PARAM

    X, P = _data()
    m = MoEModel(6, MoEConfig(num_experts=E, top_k=1, hidden_size=5, expert_mlp=mlp), replicas=2).eval()
    m.fit_standardizer(X)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():   # the start is Δ = δ = 0: draw every parameter so each expert differs
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    out = m(X, return_intermediate=True)
    z = m.standardise(X).numpy()
    pr = {k: v.detach().numpy() for k, v in m.named_parameters()}
    for r in range(2):
        for e in range(E):
            logits = z[r] @ pr["base_w"][r] + pr["base_b"][r]
            if E > 1:
                logits = logits + z[r] @ pr[SKIP_PARAM][r, e] + pr["expert_b2"][r, e]
            if mlp:
                logits = logits + np.tanh(z[r] @ pr["expert_w1"][r, e] + pr["expert_b1"][r, e]) @ pr["expert_w2"][r, e]
            np.testing.assert_allclose(out["expert_outputs"][r, :, e].detach().numpy(), _np_softmax(logits),
                                       rtol=1e-4, atol=1e-6)
    experts, y = out["expert_outputs"], out["final_output"]
    assert experts.shape == (2, 30, E, 7) and buckets_outer(experts) and buckets_outer(y)
    torch.testing.assert_close(y, torch.einsum("rne,rnec->rnc", out["gates"], experts.contiguous()))
    target, w = torch.as_tensor(P, dtype=torch.float32), torch.rand(2, 30, generator=g)
    torch.testing.assert_close(soft_cross_entropy(y, target, w), soft_cross_entropy(y.contiguous(), target, w))


@pytest.mark.parametrize("router", ["topk", "noisy_topk"])
def test_top1_chosen_expert_path_equals_the_dense_mixture_in_value_and_gradient(router):
    """Top-1 with one-hot gates: the gathered chosen expert and its straight-through gate gradient give what
    Σ_i gate_i·expert_i + (dense − sg dense) gives, for the experts' and the gate's parameters alike."""
    X, P = _data()
    target = torch.as_tensor(P, dtype=torch.float32)

    def run(fast: bool):
        m = MoEModel(6, MoEConfig(num_experts=3, top_k=1, router=router, seed=3), replicas=2)
        m.fit_standardizer(X).eval()   # eval: the noisy router draws no noise, both paths see the same gates
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        m.router.gates_at_top_k = fast
        y = m(X)
        (-(target * torch.log(y)).sum(-1).mean()).backward()
        return y.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}

    (y_fast, g_fast), (y_dense, g_dense) = run(True), run(False)
    torch.testing.assert_close(y_fast, y_dense, rtol=0, atol=0)
    assert {"gate_w", "base_w", "expert_skip_w"} <= set(g_fast) and set(g_fast) == set(g_dense)
    assert g_fast["gate_w"].abs().sum() > 0
    for k in g_fast:
        torch.testing.assert_close(g_fast[k], g_dense[k], rtol=1e-4, atol=1e-7)
