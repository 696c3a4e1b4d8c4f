"""Each loss term against an independent numpy/scipy computation, including its sign."""
import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from wordle_moe import losses
from wordle_moe.config import MoEConfig


def _dist(rng, shape):
    a = rng.random(shape) + 0.05
    return a / a.sum(axis=-1, keepdims=True)


def _t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def test_soft_cross_entropy_matches_numpy_with_row_weights():
    rng = np.random.default_rng(0)
    Q, P, w = _dist(rng, (2, 5, 7)), _dist(rng, (5, 7)), rng.random((2, 5))
    got = losses.soft_cross_entropy(_t(Q), _t(P), _t(w)).numpy()
    ce = -(P[None] * np.log(Q)).sum(-1)
    np.testing.assert_allclose(got, (ce * w).sum(1) / w.sum(1), rtol=1e-10)


@pytest.mark.parametrize("scheme,fn", [("none", lambda n: np.ones_like(n)), ("sqrt", np.sqrt),
                                       ("log", np.log1p), ("linear", lambda n: n)])
def test_n_weights_schemes_scaled_to_mean_one(scheme, fn):
    n = np.array([100.0, 400.0, 2500.0])
    w = losses.n_weights(n, scheme, 3)
    np.testing.assert_allclose(w, fn(n) / fn(n).mean())
    assert w.mean() == pytest.approx(1.0)


def test_switch_load_balance_matches_formula_and_is_one_when_balanced():
    rng = np.random.default_rng(1)
    probs = _dist(rng, (1, 6, 3))
    idx = probs.argmax(-1)
    dispatch = np.eye(3)[idx]
    got = losses.switch_load_balance(_t(probs), _t(dispatch), torch.ones(1, 6, dtype=torch.float64)).item()
    f = dispatch[0].mean(0)
    assert got == pytest.approx(3 * (f * probs[0].mean(0)).sum())
    uniform = np.full((1, 4, 2), 0.5)
    disp = np.array([[[1, 0], [0, 1], [1, 0], [0, 1]]], dtype=float)
    assert losses.switch_load_balance(_t(uniform), _t(disp), torch.ones(1, 4, dtype=torch.float64)).item() \
        == pytest.approx(1.0)


def _np_mean_pairwise_cos(V):
    E = len(V)
    sims = [V[i] @ V[j] / np.linalg.norm(V[i]) / np.linalg.norm(V[j]) for i, j in itertools.combinations(range(E), 2)]
    return np.mean(sims)


def test_parameter_diversity_is_mean_pairwise_cosine():
    rng = np.random.default_rng(2)
    V = rng.normal(size=(2, 4, 30))
    got = losses.parameter_diversity(_t(V)).numpy()
    np.testing.assert_allclose(got, [_np_mean_pairwise_cos(V[0]), _np_mean_pairwise_cos(V[1])], rtol=1e-10)


def test_output_diversity_and_js_against_scipy_and_sign():
    rng = np.random.default_rng(3)
    outs = _dist(rng, (1, 8, 3, 7))
    w = rng.random((1, 8))
    means = (outs[0] * w[0][:, None, None]).sum(0) / w.sum()
    got_cos = losses.output_diversity(_t(outs), _t(w)).item()
    assert got_cos == pytest.approx(_np_mean_pairwise_cos(means), rel=1e-9)
    got_js = losses.js_term(_t(outs), _t(w)).item()
    want = -np.mean([jensenshannon(means[i], means[j], base=2) ** 2 for i, j in itertools.combinations(range(3), 2)])
    assert got_js == pytest.approx(want, rel=1e-8)
    # Sign: experts that differ more give LOWER cosine and LOWER (more negative) JS terms.
    same = np.repeat(_dist(rng, (1, 8, 1, 7)), 3, axis=2)
    differ = np.zeros((1, 8, 3, 7))
    for e in range(3):
        differ[0, :, e, :] = 0.01
        differ[0, :, e, 2 * e] = 1.0
    differ /= differ.sum(-1, keepdims=True)
    ones = torch.ones(1, 8, dtype=torch.float64)
    assert losses.output_diversity(_t(differ), ones) < losses.output_diversity(_t(same), ones)
    assert losses.js_term(_t(differ), ones) < losses.js_term(_t(same), ones)
    assert losses.js_term(_t(same), ones).item() == pytest.approx(0.0, abs=1e-12)


def test_z_loss_and_single_expert_pairwise_terms():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(1, 5, 3))
    lse = np.log(np.exp(logits).sum(-1))
    assert losses.router_z_loss(_t(logits), torch.ones(1, 5, dtype=torch.float64)).item() == \
        pytest.approx((lse ** 2).mean())
    assert losses.parameter_diversity(_t(rng.normal(size=(1, 1, 4)))).item() == 0.0


def test_total_loss_combines_terms_with_config_coefficients():
    cfg = MoEConfig(aux_loss_weight=2.0, expert_diversity_coef=3.0, expert_output_diversity_coef=5.0,
                    expert_js_divergence_coef=7.0, z_loss_coef=11.0)
    terms = {k: torch.tensor([v]) for k, v in
             dict(main_loss=1.0, lb_loss=1.0, div=1.0, out_div=1.0, js=-1.0, z_loss=1.0).items()}
    assert losses.total_loss(terms, cfg).item() == pytest.approx(1 + 2 + 3 + 5 - 7 + 11)


def test_expected_routing_gradient_is_value_neutral_and_equals_expected_ce_gradient():
    """ROUTING_CE_COEF: the main loss keeps its value; the gate gains coef·∂/∂p Σ_i p_i·CE_i (row-weighted mean)."""
    rng = np.random.default_rng(5)
    R, n, E = 2, 6, 3
    logits = torch.tensor(rng.normal(size=(R, n, E)), requires_grad=True)
    experts = _t(_dist(rng, (R, n, E, 7)))
    P, w = _t(_dist(rng, (n, 7))), _t(rng.random((R, n)) + 0.5)
    p = logits.softmax(-1)
    y = (p.detach().unsqueeze(-1) * experts).sum(-2)            # any value: here the dense mixture, no gate grad
    out = {"final_output": y, "expert_outputs": experts, "gate_scores": p}
    y2 = losses.with_expected_routing_gradient(out, P, 0.5)
    torch.testing.assert_close(y2, y)                           # value unchanged
    losses.soft_cross_entropy(y2, P, w).sum().backward()
    got = logits.grad.clone()
    logits.grad = None
    ce = -(P.unsqueeze(0).unsqueeze(2) * torch.log(experts)).sum(-1)   # (R, n, E)
    want_loss = 0.5 * ((logits.softmax(-1) * ce).sum(-1) * w).sum(1) / w.sum(1)
    want_loss.sum().backward()
    torch.testing.assert_close(got, logits.grad)
    assert losses.with_expected_routing_gradient(out, P, 0.0) is y


def test_routed_expert_means_weight_each_expert_by_its_sparse_gate():
    rng = np.random.default_rng(3)
    out, w = _dist(rng, (2, 6, 3, 7)), rng.random((2, 6)) + 0.1
    gates = np.zeros((2, 6, 3))
    gates[:, :3, 0], gates[:, 3:, 1] = 1.0, 0.6
    gates[:, 3:, 2] = 0.4
    gates[1, :, 2] = 0.0                      # replica 1: expert 2 handles no row -> its all-row mean
    got = losses.routed_mean_outputs(_t(out), _t(w), _t(gates)).numpy()
    for r in range(2):
        for e in range(3):
            gw = gates[r, :, e] * w[r]
            want = (gw @ out[r, :, e]) / gw.sum() if gw.sum() > 0 else (w[r] @ out[r, :, e]) / w[r].sum()
            np.testing.assert_allclose(got[r, e], want, rtol=1e-10)
    np.testing.assert_allclose(losses.routed_mean_outputs(_t(out), _t(w)).numpy(),
                               np.einsum("rn,rnec->rec", w, out) / w.sum(1)[:, None, None], rtol=1e-10)


TYPICAL = torch.tensor([0.01, 0.06, 0.22, 0.33, 0.24, 0.11, 0.03])   # a typical observed distribution


def _loss(logits, gates, w, scope):
    """Mixture cross-entropy + out_div + JS of the experts' mean outputs under a DIVERSITY_SCOPE."""
    outs = torch.softmax(logits, dim=-1)
    g = losses.scope_gates({"gates": gates}, scope)
    means = losses.routed_mean_outputs(outs, w, g)
    ce = losses.soft_cross_entropy((gates.unsqueeze(-1) * outs).sum(2), TYPICAL.expand(w.shape[1], 7), w)
    return (ce + losses.mean_pairwise_cosine(means) + losses._js_of_means(means)).sum()


def test_all_rows_scope_drives_unrouted_outputs_to_extremes_and_routed_scope_does_not():
    """Top-1, 2 experts: rows 0-19 go to expert 0, rows 20-39 to expert 1, every word has the same typical
    distribution. Minimising CE + diversity over the experts' outputs: the routed outputs are pinned by the
    CE, so with DIVERSITY_SCOPE="all" the terms are satisfied by an expert's outputs on the words routed to
    the OTHER expert (gate 0, never in the prediction), which run into one bucket; with "routed" those
    outputs get no gradient at all."""
    torch.manual_seed(0)
    n = 40
    gates = torch.zeros(1, n, 2)
    gates[0, :20, 0], gates[0, 20:, 1] = 1.0, 1.0
    w = torch.ones(1, n)
    start = torch.randn(1, n, 2, 7) * 0.1
    unrouted = gates == 0                                        # (1, n, 2): expert e on words it does not handle
    for scope in ("all", "routed"):
        logits = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([logits], lr=0.1)
        for _ in range(300):
            opt.zero_grad()
            _loss(logits, gates, w, scope).backward()
            if scope == "routed" and _ == 0:
                assert logits.grad[unrouted].abs().max().item() == 0.0, "routed scope: no reward off-route"
            opt.step()
        peak = torch.softmax(logits, -1).max(-1).values          # (1, n, 2) largest bucket share
        if scope == "all":
            assert peak[unrouted].min().item() > 0.9, "all rows: unrouted outputs pushed into one bucket"
        else:
            torch.testing.assert_close(logits.detach()[unrouted], start[unrouted])
            assert peak[unrouted].max().item() < 0.3


def test_loss_terms_use_the_configured_scope():
    rng = np.random.default_rng(5)
    outs = _t(_dist(rng, (1, 8, 2, 7))).float()
    gates = torch.zeros(1, 8, 2)
    gates[0, :4, 0], gates[0, 4:, 1] = 1.0, 1.0
    out = {"expert_outputs": outs, "gates": gates, "gate_scores": gates,
           "final_output": (gates.unsqueeze(-1) * outs).sum(2), "load_balance_loss": torch.zeros(1),
           "gate_logits": torch.zeros(1, 8, 2)}
    P, w = torch.full((8, 7), 1 / 7), torch.ones(1, 8)
    params = torch.randn(1, 2, 5)
    for scope, g in (("routed", gates), ("all", None)):
        terms = losses.loss_terms(out, P, w, w, params, MoEConfig(diversity_scope=scope))
        means = losses.routed_mean_outputs(outs, w, g)
        torch.testing.assert_close(terms["out_div"], losses.mean_pairwise_cosine(means))
        torch.testing.assert_close(terms["js"], losses._js_of_means(means))
    routed = losses.loss_terms(out, P, w, w, params, MoEConfig())["js"]
    every = losses.loss_terms(out, P, w, w, params, MoEConfig(diversity_scope="all"))["js"]
    assert not torch.allclose(routed, every)


def test_zero_weight_terms_are_logged_only_when_asked_and_never_change_the_total():
    """diagnostics=False leaves a term with coefficient 0 uncomputed (NaN) and the total bit for bit the same; a term
    with a coefficient is always computed and counted."""
    rng = np.random.default_rng(6)
    outs = _t(_dist(rng, (2, 8, 2, 7))).float()
    gates = torch.zeros(2, 8, 2)
    gates[:, :4, 0], gates[:, 4:, 1] = 1.0, 1.0
    out = {"expert_outputs": outs, "gates": gates, "gate_scores": gates,
           "final_output": (gates.unsqueeze(-1) * outs).sum(2), "load_balance_loss": torch.ones(2),
           "gate_logits": torch.randn(2, 8, 2)}
    P, w, params = torch.full((8, 7), 1 / 7), torch.ones(2, 8), torch.randn(2, 2, 5)
    cfg = MoEConfig(expert_js_divergence_coef=0.5)
    full = losses.loss_terms(out, P, w, w, params, cfg)
    slim = losses.loss_terms(out, P, w, w, params, cfg, diagnostics=False)
    for name in ("div", "out_div", "z_loss"):
        assert torch.isfinite(full[name]).all() and torch.isnan(slim[name]).all()
    torch.testing.assert_close(slim["js"], full["js"], rtol=0, atol=0)
    assert torch.equal(slim["total_loss"], full["total_loss"])
    want = full["main_loss"] + cfg.aux_loss_weight * full["lb_loss"] + 0.5 * full["js"]
    torch.testing.assert_close(full["total_loss"], want)
