"""Routers: noisy top-k load estimate, expert-choice capacity and batch independence, reputation dynamics."""
import numpy as np
import pytest
import torch

from tests.synthetic import softmax_linear_data
from wordle_moe.config import MoEConfig
from wordle_moe.model import MoEModel
from wordle_moe.routers import (
    AuxFreeBiasRouter,
    ExpertChoiceRouter,
    NoisyTopKRouter,
    ReputationRouter,
    TopKRouter,
    topk_gates,
)


def _data(n=40, d=5, seed=0):
    return softmax_linear_data(n, d, seed, scale=0.3)


def test_topk_gates_renormalise_over_chosen():
    probs = torch.tensor([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]])
    gates, top, idx = topk_gates(probs, 2)
    torch.testing.assert_close(gates, torch.tensor([[[0.625, 0.375, 0.0], [1 / 9, 0.0, 8 / 9]]]))
    assert idx[0, 0].tolist() == [0, 1] and top[0, 1, 0].item() == pytest.approx(0.8)
    out = TopKRouter(3, 1)(probs.log(), None, torch.ones(1, 2))
    torch.testing.assert_close(out["gates"], torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]]]))


def test_noisy_topk_load_estimate_matches_monte_carlo():
    """Φ((clean − threshold)/σ) with the threshold from the OTHER noisy logits equals the selection frequency."""
    torch.manual_seed(0)
    E, k, n, sims = 4, 2, 6, 4000
    # The simulations run as 4000 replicas of one router (same logits, independent noise draws).
    router = NoisyTopKRouter(E, k, n_features=3, replicas=sims).train()
    z = torch.randn(1, n, 3).expand(sims, n, 3)
    logits = torch.randn(1, n, E).expand(sims, n, E)
    out = router(logits, z, torch.ones(sims, n))
    freq = out["dispatch"].sum(1).mean(0)
    # Each draw's load is an unbiased estimate of the expected number of rows sent to each expert.
    torch.testing.assert_close(out["load"].mean(0), freq, atol=0.08, rtol=0.05)


def test_noisy_topk_noise_only_in_training_and_learned():
    X, P = _data()
    m = MoEModel(5, MoEConfig(router="noisy_topk", num_experts=3, top_k=1, hidden_size=8), replicas=1)
    m.fit_standardizer(X)
    m.eval()
    torch.testing.assert_close(m(X), m(X))
    m.train()
    out = m(X, return_intermediate=True)
    (out["load_balance_loss"].sum() + out["final_output"].sum()).backward()
    assert m.router.noise_w.grad.abs().sum() > 0, "the noise scale is learned through the load loss"
    # training adds noise: selections differ from the clean gate's top-1 on some rows, and between steps
    with torch.no_grad():
        again = m(X, return_intermediate=True)
    clean = out["gate_scores"].argmax(-1)
    assert (out["top_k_indices"][..., 0] != clean).any(), "noise changes which expert is selected"
    assert (out["top_k_indices"] != again["top_k_indices"]).any(), "fresh noise at every training step"
    with torch.no_grad():
        m.eval()
        ev = m(X, return_intermediate=True)
    torch.testing.assert_close(ev["top_k_indices"][..., 0], ev["gate_scores"].argmax(-1))


def test_noisy_topk_draws_standard_normal_noise_from_each_replicas_own_stream():
    from wordle_moe.streams import NOISE, torch_stream
    r = NoisyTopKRouter(3, 1, n_features=2, replicas=2,
                        noise_streams=[torch_stream(0, 0, NOISE), torch_stream(0, 1, NOISE)])
    w = torch.ones(2, 4000)
    w[1, 3000:] = 0                                        # replica 1: 3000 real rows, then padding
    eps = r.standard_normal(torch.zeros(2, 4000, 3), w, None)
    assert abs(eps[0].mean().item()) < 0.05 and abs(eps[0].std().item() - 1) < 0.05
    assert (eps[1, 3000:] == 0).all(), "padding rows draw nothing"
    torch.testing.assert_close(eps[1, :3000], torch.randn((3000, 3), generator=torch_stream(0, 1, NOISE)))


@pytest.mark.parametrize("router,buffers", [("reputation", ["reputation", "load_ema", "usage", "steps", "margin_ema"]),
                                            ("aux_free_bias", ["bias"])])
def test_router_state_is_saved_and_reloaded_with_the_model(router, buffers):
    X, P = _data()
    from wordle_moe.training import train_moe
    cfg = MoEConfig(router=router, num_experts=3, top_k=1, hidden_size=8, max_epochs=15, patience=15,
                    dropout=0.0, gate_init="random", bias_update_rate=0.05)
    model, _ = train_moe(X[:30], P[:30], X[30:], P[30:], config=cfg)
    state = model.state_dict()
    for b in buffers:
        assert f"router.{b}" in state and state[f"router.{b}"].abs().sum() > 0, b
    fresh = MoEModel(5, cfg, replicas=1)
    fresh.load_state_dict(state)
    for b in buffers:
        torch.testing.assert_close(getattr(fresh.router, b), getattr(model.router, b))
    fresh.eval()
    model.eval()
    torch.testing.assert_close(fresh(X), model(X))


def test_expert_choice_respects_capacity_in_training():
    torch.manual_seed(1)
    router = ExpertChoiceRouter(num_experts=3, top_k=1, capacity_factor=1.0).train()
    w = torch.ones(2, 12)
    w[1, :3] = 0  # replica 1 has 9 rows of positive weight
    out = router(torch.randn(2, 12, 3), None, w)
    per_expert = out["chosen"].sum(dim=1)
    assert (per_expert[0] == 4).all() and (per_expert[1] == 3).all()      # ceil(1.0 * n * k / E)
    assert not out["chosen"][1, :3].any(), "zero-weight rows never take capacity"
    torch.testing.assert_close(out["gates"].sum(-1), torch.ones(2, 12))


def test_expert_choice_inference_is_independent_of_batch_mates():
    X, P = _data()
    m = MoEModel(5, MoEConfig(router="expert_choice", num_experts=3, top_k=1, hidden_size=8, dropout=0.0,
                                    shared_base=False),
                 replicas=1)
    m.fit_standardizer(X)
    m.train()
    y_full = m(X)[0]
    y_part = m(X[:7])[0]
    assert not torch.allclose(y_full[:7], y_part), "training: a row's routing depends on its batch"
    m.eval()
    torch.testing.assert_close(m(X)[0][:7], m(X[:7])[0])
    torch.testing.assert_close(m(X)[0][3], m(X[3:4])[0][0])


def test_reputation_scores_follow_formula_over_simulated_steps():
    beta, gamma, rho, lam, b0, delta = 0.5, 0.3, 0.8, 0.9, 0.2, 0.5
    r = ReputationRouter(num_experts=2, top_k=1, replicas=1, reputation_beta=beta, reputation_gamma=gamma,
                         reputation_ema=rho, reputation_decay=lam, exploration_bonus=b0, exploration_decay=delta)
    target = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0]]).repeat(4, 1)
    good = torch.tensor([0.9] + [0.1 / 6] * 6)
    bad = torch.tensor([0.2] + [0.8 / 6] * 6)
    outs = torch.stack([good, bad]).expand(4, 2, 7).unsqueeze(0)        # expert 0 better on every row
    dispatch = torch.tensor([[1.0, 0], [1, 0], [1, 0], [0, 1]]).unsqueeze(0)  # loads 3/4 and 1/4
    R, L, U = np.zeros(2), np.full(2, 0.5), np.zeros(2)
    q = -np.array([-np.log(0.9), -np.log(0.2)])
    q = q - q.mean()
    load = np.array([0.75, 0.25])
    probs = torch.tensor([[[0.6, 0.4]]])
    # the step's gate probabilities: gaps 0.2, 0.4, 0.1, 0.8 -> weighted (lower) median 0.2
    gate_scores = torch.tensor([[[0.6, 0.4], [0.7, 0.3], [0.55, 0.45], [0.9, 0.1]]])
    assert r.incentive_scale().item() == 0.0, "no incentive before the first training step"
    M = 0.0
    for t in range(1, 4):
        r.update_state(dispatch, outs, target, torch.ones(1, 4), gate_scores=gate_scores)
        R = rho * R + (1 - rho) * q
        R = R.mean() + lam * (R - R.mean())
        L = rho * L + (1 - rho) * load
        U = U + load
        M = rho * M + (1 - rho) * 0.2
        scale = M / (1 - rho ** t)                      # bias-corrected EMA of the median gate gap = 0.2
        assert scale == pytest.approx(0.2)
        bonus = b0 * delta ** t / (1 + U)
        want = probs[0, 0].numpy() + scale * (beta * R - gamma * L + bonus)
        np.testing.assert_allclose(r.scores(probs)[0, 0].numpy(), want, rtol=1e-5)
    assert r.reputation[0, 0] > r.reputation[0, 1] and r.load_ema[0, 0] > r.load_ema[0, 1]
    # Decay toward the mean: with no new evidence the spread of R shrinks by λ each step.
    spread = (r.reputation[0, 0] - r.reputation[0, 1]).item()
    r.update_state(torch.zeros(1, 4, 2), outs, target, torch.ones(1, 4), gate_scores=gate_scores)
    assert (r.reputation[0, 0] - r.reputation[0, 1]).item() == pytest.approx(lam * spread, rel=1e-5)


def test_gate_margin_is_the_weighted_median_gap_between_kth_and_next():
    from wordle_moe.routers import gate_margin
    probs = torch.tensor([[[0.5, 0.3, 0.2], [0.4, 0.35, 0.25], [0.6, 0.3, 0.1]]])
    w = torch.tensor([[1.0, 1.0, 5.0]])
    # k=1 gaps 0.2, 0.05, 0.3 (weight 5 on the last) -> weighted median 0.3; k=2 gaps 0.1, 0.1, 0.2 -> 0.2
    assert gate_margin(probs, 1, w).item() == pytest.approx(0.3)
    assert gate_margin(probs, 2, w).item() == pytest.approx(0.2)
    assert gate_margin(probs, 3, w).item() == 0.0


def test_scaled_reputation_incentives_override_the_gate_on_few_words(monkeypatch):
    """3 experts, top-2: incentives scaled to the gate margin override the gate's own top-k on < 10% of words;
    the same router with unscaled incentives (s = 1, the previous formula) overrides clearly more."""
    X, P = softmax_linear_data(120, 5, 3, scale=0.3)
    from wordle_moe.training import train_moe

    def override_rate():
        model, _ = train_moe(X[:100], P[:100], X[100:], P[100:], router="reputation", num_experts=3, top_k=2,
                             hidden_size=8, max_epochs=80, patience=80, dropout=0.0)
        model.eval()
        with torch.no_grad():
            out = model(X[:100], return_intermediate=True)
        own = torch.zeros(1, 100, 3).scatter(-1, out["gate_top_k_indices"], 1.0)
        torch.testing.assert_close(out["overridden"], (own != out["dispatch"]).any(-1))
        return out["overridden"].float().mean().item(), model

    scaled, model = override_rate()
    assert 0 < model.router.incentive_scale().item() < 1
    assert scaled < 0.1
    monkeypatch.setattr(ReputationRouter, "incentive_scale",
                        lambda self, idx=None: torch.ones(len(self._state("steps", idx))))
    unscaled, _ = override_rate()
    assert unscaled > scaled + 0.05, (unscaled, scaled)


def test_reputation_state_updates_only_in_training_steps_and_mixing_uses_gate():
    X, P = _data()
    from wordle_moe.training import train_moe
    model, _ = train_moe(X[:30], P[:30], X[30:], P[30:], router="reputation", num_experts=3, top_k=2,
                         hidden_size=8, max_epochs=5, patience=5)
    steps = model.router.steps.clone()
    model.eval()
    out = model(X, return_intermediate=True)
    assert torch.equal(model.router.steps, steps) and steps.item() == 5
    # mixing weights = softmax gate renormalised over the selected experts
    sel = out["gates"] > 0
    g = out["gate_scores"] * sel
    torch.testing.assert_close(out["gates"], g / g.sum(-1, keepdim=True))


@pytest.mark.parametrize("router", ["topk", "noisy_topk", "expert_choice", "reputation", "aux_free_bias"])
def test_every_router_trains_and_outputs_distributions(router):
    X, P = _data()
    from wordle_moe.training import predict_proba, train_moe
    model, info = train_moe(X[:30], P[:30], X[30:], P[30:], router=router, num_experts=3, top_k=1,
                            hidden_size=8, max_epochs=8, patience=4)
    pred = predict_proba(model, X)
    np.testing.assert_allclose(pred.sum(1), 1.0, rtol=1e-6)
    assert np.isfinite(info["history"]["total_loss"]).all()


def test_aux_free_bias_moves_toward_underloaded_expert_and_only_selects():
    r = AuxFreeBiasRouter(num_experts=3, top_k=1, replicas=1, bias_update_rate=0.1)
    dispatch = torch.tensor([[[1.0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]]])
    r.update_state(dispatch, None, None, torch.ones(1, 4))
    torch.testing.assert_close(r.bias, torch.tensor([[-0.1, 0.1, 0.1]]))   # mean load 4/3
    logits = torch.log(torch.tensor([[[0.45, 0.35, 0.20]]]))
    for _ in range(2):
        r.update_state(dispatch, None, None, torch.ones(1, 4))
    out = r(logits, None, torch.ones(1, 1))
    assert out["top_k_indices"].item() == 1, "bias changes WHICH expert is chosen"
    assert out["gates"][0, 0, 1].item() == pytest.approx(1.0), "weights still come from the gate"


def test_aux_free_bias_is_selectable_from_config_and_its_bias_is_updated_in_training():
    """MoEConfig(router="aux_free_bias") builds the router with BIAS_UPDATE_RATE; training moves the bias
    by exactly ±u per step (sign updates), toward the under-loaded expert, and it sums to ~0 for E=2."""
    X, P = _data()
    from wordle_moe.training import train_moe
    cfg = MoEConfig(router="aux_free_bias", bias_update_rate=0.01, num_experts=2, top_k=1, hidden_size=8,
                    max_epochs=6, patience=6, dropout=0.0, gate_init="random")   # random gate: unequal loads
    model, info = train_moe(X[:30], P[:30], X[30:], P[30:], config=cfg)
    assert isinstance(model.router, AuxFreeBiasRouter) and model.router.rate == 0.01
    bias = model.router.bias[0].numpy()
    steps = bias / 0.01
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)       # integer multiples of u
    assert np.abs(bias).max() <= 6 * 0.01 + 1e-6 and np.abs(bias).max() > 0
    np.testing.assert_allclose(bias.sum(), 0.0, atol=1e-6)               # E=2: one up, one down
    with pytest.raises(Exception, match="BIAS_UPDATE_RATE"):
        MoEConfig(router="aux_free_bias", bias_update_rate=0.0).validate()
