"""Loss terms of the MoE, one small function each, all batched over replicas.

Shapes: ``R`` replicas, ``n`` rows, ``E`` experts, ``C = 7`` buckets. Every term returns one value
per replica, shape ``(R,)``; the trainer sums over replicas so that each replica's gradient comes
from its own loss only (replicas stay independent, exactly like separate runs).
Row weights ``w`` (R, n) carry bootstrap counts × sample weights (× N-weighting for the main loss);
a weight of 0 removes a row from every term.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .config import DIVERSITY_SCOPES

EPS = 1e-9


def n_weights(n_reported: np.ndarray | None, scheme: str, n: int) -> np.ndarray:
    """Per-row weights from the number of reported results (none|sqrt|log|linear), scaled to mean 1."""
    if scheme == "none" or n_reported is None:
        return np.ones(n)
    counts = np.asarray(n_reported, dtype=float)
    if counts.shape != (n,):
        raise ValueError(f"n_reported has shape {counts.shape}, expected ({n},)")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("n_reported must be finite and >= 0")
    if scheme == "sqrt":
        w = np.sqrt(counts)
    elif scheme == "log":
        w = np.log1p(counts)  # log1p: a word with 0 reports gets weight 0, not -inf
    elif scheme == "linear":
        w = counts
    else:
        raise ValueError(f"unknown N_WEIGHTING {scheme!r}")
    mean = w.mean()
    return w / mean if mean > 0 else np.ones(n)


def softmax_small(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over a short last axis (7 buckets, 2-4 experts), written out: 2-3x faster than torch's CPU kernel there."""
    e = (logits - logits.detach().amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def buckets_outer(t: torch.Tensor) -> bool:
    """Whether (..., n, [E,] 7) tensor ``t`` is stored buckets-outer, (..., [E,] 7, n): the layout of the shared-base
    experts' outputs. Reductions and broadcasts over an inner axis of 7 (or 2) are several times slower on CPU than
    the same arithmetic along the rows, so the training path keeps the rows innermost in memory."""
    if t.stride(-1) == 1:
        return False
    return t.permute(0, 2, 3, 1).is_contiguous() if t.dim() == 4 else t.dim() == 3 and t.transpose(1, 2).is_contiguous()


def _weighted_row_mean(values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the row axis (dim 1) of (R, n, ...) values; w is (R, n)."""
    shape = w.shape + (1,) * (values.dim() - 2)
    wv = w.reshape(shape)
    return (values * wv).sum(dim=1) / wv.sum(dim=1).clamp_min(EPS)


def soft_cross_entropy(pred: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted soft-label cross-entropy −Σ_c P_c log Q_c, averaged over rows per replica -> (R,)."""
    if target.dim() == 2:
        target = target.unsqueeze(0)
    if pred.dim() == 3 and buckets_outer(pred):   # the shared-base experts' mixture: sum over the 7, rows innermost
        ce = -(target.transpose(1, 2) * torch.log(pred.transpose(1, 2).clamp_min(EPS))).sum(dim=1)
    else:
        ce = -(target * torch.log(pred.clamp_min(EPS))).sum(dim=-1)  # (R, n)
    return _weighted_row_mean(ce, w)


def switch_load_balance(gate_probs: torch.Tensor, dispatch: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer balance E·Σ_i f_i·P_i over the full batch -> (R,).

    f_i = share of (row, slot) dispatches that go to expert i (no gradient: it is a count),
    P_i = mean gate probability of expert i. Equals 1 when perfectly balanced.
    """
    E = gate_probs.shape[-1]
    f = _weighted_row_mean(dispatch.float(), w)
    f = f / f.sum(dim=-1, keepdim=True).clamp_min(EPS)
    P = _weighted_row_mean(gate_probs, w)
    return E * (f.detach() * P).sum(dim=-1)


def _pairs(E: int) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(E, E, offset=1)
    return i, j


def mean_pairwise_cosine(vectors: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over expert pairs i<j of (R, E, D) vectors -> (R,); 0 when E = 1."""
    E = vectors.shape[1]
    if E < 2:
        return vectors.new_zeros(vectors.shape[0])
    unit = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(EPS)
    sim = unit @ unit.transpose(1, 2)  # (R, E, E)
    i, j = _pairs(E)
    return sim[:, i, j].mean(dim=-1)


def parameter_diversity(expert_params: torch.Tensor) -> torch.Tensor:
    """Mean pairwise cosine of the experts' flattened parameters (R, E, D) -> (R,); lower = more diverse."""
    return mean_pairwise_cosine(expert_params)


def routed_mean_outputs(expert_outputs: torch.Tensor, w: torch.Tensor,
                        gates: torch.Tensor | None = None) -> torch.Tensor:
    """Each expert's mean output distribution: (R, n, E, C) -> (R, E, C).

    With ``gates`` (R, n, E) (DIVERSITY_SCOPE="routed"): expert i's mean over the words it handles,
    weighted by sparse gate × row weight. An expert's output on a word routed elsewhere never reaches
    the prediction, so it must not count: an all-row mean lets the diversity terms be satisfied by
    absurd outputs there. The gates enter detached: these terms shape what experts predict, not
    where words go. Without gates (scope "all", the original design notes): the row-weighted mean
    over every row. An expert that handles no row gets its all-row mean (it has no routed output).
    """
    if gates is None:
        return _weighted_row_mean(expert_outputs, w)
    gw = gates.detach() * w.unsqueeze(-1)                                   # (R, n, E)
    mass = gw.sum(dim=1)                                                    # (R, E)
    routed = torch.einsum("rne,rnec->rec", gw, expert_outputs) / mass.clamp_min(EPS).unsqueeze(-1)
    return torch.where((mass > EPS).unsqueeze(-1), routed, _weighted_row_mean(expert_outputs, w))


def scope_gates(out: dict[str, Any], scope: str) -> torch.Tensor | None:
    """The gates that weight the experts' mean outputs under DIVERSITY_SCOPE (None for "all")."""
    if scope not in DIVERSITY_SCOPES:
        raise ValueError(f"DIVERSITY_SCOPE must be one of {DIVERSITY_SCOPES}, got {scope!r}")
    return out["gates"] if scope == "routed" else None


def output_diversity(expert_outputs: torch.Tensor, w: torch.Tensor, gates: torch.Tensor | None = None) -> torch.Tensor:
    """Mean pairwise cosine of the experts' mean output distributions -> (R,); lower = more diverse."""
    return mean_pairwise_cosine(routed_mean_outputs(expert_outputs, w, gates))


def _js_of_means(means: torch.Tensor) -> torch.Tensor:
    """−(mean pairwise JS divergence) of (R, E, C) expert mean distributions -> (R,)."""
    E = means.shape[1]
    if E < 2:
        return means.new_zeros(means.shape[0])
    i, j = _pairs(E)
    return -js_divergence_bits(means[:, i], means[:, j]).mean(dim=-1)


def js_divergence_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits along the last axis (= scipy jensenshannon(base=2)**2)."""
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * (torch.log(a.clamp_min(EPS)) - torch.log(b.clamp_min(EPS)))).sum(dim=-1)

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)) / math.log(2.0)


def js_term(expert_outputs: torch.Tensor, w: torch.Tensor, gates: torch.Tensor | None = None) -> torch.Tensor:
    """−(mean pairwise JS divergence) of the experts' mean output distributions -> (R,); lower = more diverse."""
    return _js_of_means(routed_mean_outputs(expert_outputs, w, gates))


def router_z_loss(logits: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Router z-loss (ST-MoE): weighted mean of logsumexp(gate logits)² -> (R,); keeps logits small."""
    return _weighted_row_mean(torch.logsumexp(logits, dim=-1) ** 2, w)


def with_expected_routing_gradient(out: dict[str, Any], target: torch.Tensor, coef: float) -> torch.Tensor:
    """final_output with the SAME value, plus a gate gradient of coef · Σ_i p_i · CE(expert_i) per row.

    The straight-through path of the top-1 model linearises the CE around the chosen expert, so it can
    favour routing a row to an expert that was never trained on it when that expert is sharp on the
    right bucket; near a gate tie (p ≈ 0.5) such a row then flips to an expert predicting 98% in one
    bucket (observed in bootstrap replicas for EERIE and in-bag words). The expected CE under the
    routing distribution (Jacobs et al. 1991) charges the gate the full CE of each expert instead.
    Value-neutral: y + Σ_i (p_i − sg p_i)·v_i with v_i = −sg(CE_i)·sg(y), and ∂CE/∂y · v_i = CE_i·Σ_c P_c.
    """
    y = out["final_output"]
    if coef <= 0 or not torch.is_grad_enabled():
        return y
    if target.dim() == 2:
        target = target.unsqueeze(0)
    experts = out["expert_outputs"].detach()
    ce = -(target.unsqueeze(2) * torch.log(experts.clamp_min(EPS))).sum(dim=-1)       # (R, n, E)
    p = out["gate_scores"]
    shift = ((p - p.detach()) * ce).sum(dim=-1, keepdim=True)                           # value 0
    return y - coef * shift * y.detach()


def loss_terms(out: dict[str, Any], target: torch.Tensor, w_main: torch.Tensor, w: torch.Tensor,
               expert_params: torch.Tensor | Callable[[], torch.Tensor], config: Any, diagnostics: bool = True
               ) -> dict[str, torch.Tensor]:
    """Every loss term plus their weighted total, each (R,).

    A term whose coefficient is 0 does not change training: it is computed for the loss log only, without a graph
    (the backward pass skips it; every value and weight stays bit for bit the same), and only with ``diagnostics``
    (else NaN): the trainer asks for it every few steps, as it costs ~15-20% of a step.
    """
    div_c, out_c, js_c, z_c = (config.expert_diversity_coef, config.expert_output_diversity_coef,
                               config.expert_js_divergence_coef, config.z_loss_coef)
    grad = torch.is_grad_enabled()
    nan = out["load_balance_loss"].detach().new_full(out["load_balance_loss"].shape, float("nan"))
    # shared by out_div and js: one pass, not two; routed (gate-weighted) or all-row means per DIVERSITY_SCOPE
    means = None
    if out_c != 0 or js_c != 0 or diagnostics:
        with torch.set_grad_enabled(grad and (out_c != 0 or js_c != 0)):
            gates = scope_gates(out, getattr(config, "diversity_scope", "routed"))
            means = routed_mean_outputs(out["expert_outputs"], w, gates)
    y = with_expected_routing_gradient(out, target, getattr(config, "routing_ce_coef", 0.0))
    terms = {"main_loss": soft_cross_entropy(y, target, w_main), "lb_loss": out["load_balance_loss"]}
    flat = expert_params if callable(expert_params) else (lambda: expert_params)   # built only when a term needs it
    for name, coef, term in (("div", div_c, lambda: parameter_diversity(flat())),
                             ("out_div", out_c, lambda: mean_pairwise_cosine(means)),
                             ("js", js_c, lambda: _js_of_means(means)),
                             ("z_loss", z_c, lambda: router_z_loss(out["gate_logits"], w))):
        if coef == 0 and not diagnostics:
            terms[name] = nan
            continue
        with torch.set_grad_enabled(grad and coef != 0):
            terms[name] = term()
    terms["total_loss"] = total_loss(terms, config)
    return terms


def total_loss(terms: dict[str, torch.Tensor], config: Any) -> torch.Tensor:
    """Loss = CE + AUX·lb + DIV·div + OUT_DIV·out_div + JS·js + Z·z_loss (a term with coefficient 0 adds nothing,
    even when it was not computed)."""
    total = terms["main_loss"] + config.aux_loss_weight * terms["lb_loss"]
    for name, coef in (("div", config.expert_diversity_coef), ("out_div", config.expert_output_diversity_coef),
                       ("js", config.expert_js_divergence_coef), ("z_loss", config.z_loss_coef)):
        if coef != 0:
            total = total + coef * terms[name]
    return total
