"""Routers: gate logits -> sparse mixing weights over experts, batched over replicas.

Every router is an ``nn.Module`` called as ``router(logits, z, w, idx=None)`` with gate logits (R, n, E),
standardised inputs z (R, n, d), row weights w (R, n) and optionally the replica indices ``idx`` the
rows belong to (the trainer drops stopped replicas), returning a dict:

- ``gate_scores``   (R, n, E) full softmax of the (clean) gate logits
- ``top_k_scores``  (R, n, k) softmax probabilities of the chosen experts (before renormalising)
- ``top_k_indices`` (R, n, k) chosen experts
- ``gates``         (R, n, E) sparse mixing weights, rows sum to 1
- ``dispatch``      (R, n, E) 0/1 selection mask (used for load statistics)
- ``load_balance_loss`` (R,)

Routers do not mix; the model does (and adds the top-1 straight-through path, see model.py).
Stateful routers (reputation, aux_free_bias) expose ``update_state(dispatch, expert_outputs, target, w, idx)``,
called by the trainer under no_grad after each training step and never at inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import EPS, softmax_small, switch_load_balance
from .streams import NOISE, leading_rows, torch_stream


def topk_gates(probs: torch.Tensor, k: int, select_by: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k then renormalise: (gates (R,n,E) rows sum 1, top-k probs (R,n,k), indices (R,n,k)).

    ``select_by`` (same shape as probs) chooses the experts when it differs from the mixing
    probabilities (noisy logits, reputation scores); the weights always come from ``probs``.
    """
    idx = (probs if select_by is None else select_by).topk(k, dim=-1).indices
    top = probs.gather(-1, idx)
    renorm = top / top.sum(dim=-1, keepdim=True).clamp_min(EPS)
    gates = torch.zeros_like(probs).scatter(-1, idx, renorm)
    return gates, top, idx


def _dispatch(idx: torch.Tensor, E: int) -> torch.Tensor:
    """0/1 mask (R, n, E) of the experts listed in idx (R, n, k)."""
    return F.one_hot(idx, E).sum(dim=-2).clamp_max(1).float()


def overridden_rows(gate_scores: torch.Tensor, dispatch: torch.Tensor, k: int) -> torch.Tensor:
    """(R, n) bool: rows whose selected experts differ from the gate's own top-k (the router overrode the gate).

    The override rate of a router is the weighted mean of this mask; 0 for plain top-k by construction.
    """
    own = _dispatch(gate_scores.topk(k, dim=-1).indices, gate_scores.shape[-1])
    return (own != (dispatch > 0).float()).any(dim=-1)


class TopKRouter(nn.Module):
    """Exact procedure of the design notes: softmax -> top-k -> renormalise -> sparse gates."""

    gates_at_top_k = True   # gates are the renormalised probabilities at top_k_indices, 0 elsewhere (model.py reads it)

    def __init__(self, num_experts: int, top_k: int, **_: object) -> None:
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k

    def selection_scores(self, probs: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor | None:
        """What the top-k is taken over: the gate probabilities themselves (subclasses add incentives)."""
        return None

    def forward(self, logits: torch.Tensor, z: torch.Tensor, w: torch.Tensor,
                idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        probs = softmax_small(logits)
        select_by = self.selection_scores(probs.detach(), idx)
        gates, top, chosen = topk_gates(probs, self.top_k, select_by=select_by)
        dispatch = _dispatch(chosen, self.num_experts)
        return dict(gate_scores=probs, top_k_scores=top, top_k_indices=chosen, gates=gates, dispatch=dispatch,
                    load_balance_loss=switch_load_balance(probs, dispatch, w))


def cv_squared(x: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation along the last axis (Shazeer's balance measure) -> (R,)."""
    if x.shape[-1] < 2:
        return x.new_zeros(x.shape[:-1])
    return x.var(dim=-1) / (x.mean(dim=-1) ** 2 + 1e-10)


class NoisyTopKRouter(nn.Module):
    """Shazeer et al. 2017 noisy top-k gating with learned noise and importance + load losses.

    H(x) = x·W_g + ε·softplus(x·W_noise) (noise only in training); top-k over H; weights are
    softmax(H) over the chosen k. Load of expert i = Σ_rows P(H_i beats the threshold) where the
    threshold is the k-th largest of the OTHER noisy logits (the (k+1)-th of all when i is inside
    the top-k, else the k-th) — noisy logits compared with noisy logits, like with like.
    """

    gates_at_top_k = True

    def __init__(self, num_experts: int, top_k: int, n_features: int, replicas: int,
                 noise_streams: list[torch.Generator] | None = None, **_: object) -> None:
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k
        # Zero init: softplus(0) ≈ 0.69 noise std everywhere at the start, learned afterwards.
        self.noise_w = nn.Parameter(torch.zeros(replicas, n_features, num_experts))
        # One torch generator per replica (None: the global generator, e.g. for Monte-Carlo tests).
        self.noise_streams = noise_streams

    def standard_normal(self, logits: torch.Tensor, w: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """ε ~ N(0, 1) shaped like logits (R, n, E); replica r's draws come from its own stream and only
        for its real rows (padding rows get 0), so they do not depend on B or on its batch mates."""
        if self.noise_streams is None:
            return torch.randn_like(logits)
        eps = torch.zeros_like(logits)
        ids = range(logits.shape[0]) if idx is None else idx.tolist()
        for i, (r, m) in enumerate(zip(ids, leading_rows(w))):
            eps[i, :m] = torch.randn((m, logits.shape[-1]), generator=self.noise_streams[r])
        return eps

    def noise_std(self, z: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Learned noise standard deviation softplus(z·W_noise) (+0.01 floor), (R, n, E)."""
        w = self.noise_w if idx is None else self.noise_w[idx]
        return F.softplus(torch.bmm(z, w)) + 1e-2

    def forward(self, logits: torch.Tensor, z: torch.Tensor, w: torch.Tensor,
                idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        E, k = self.num_experts, self.top_k
        std = self.noise_std(z, idx)
        noisy = logits + self.standard_normal(logits, w, idx) * std if self.training else logits
        probs_clean = logits.softmax(dim=-1)
        # Softmax over the chosen noisy logits == softmax(noisy) renormalised over the top-k.
        gates, top, idx = topk_gates(noisy.softmax(dim=-1), k, select_by=noisy)
        dispatch = _dispatch(idx, E)
        importance = (gates * w.unsqueeze(-1)).sum(dim=1)
        if k < E:
            top_vals = noisy.topk(k + 1, dim=-1).values
            thr_in = top_vals[..., k:k + 1]        # (k+1)-th largest: threshold for experts inside top-k
            thr_out = top_vals[..., k - 1:k]      # k-th largest: threshold for experts outside
            threshold = torch.where(dispatch.bool(), thr_in, thr_out)
            normal = torch.distributions.Normal(0.0, 1.0)
            p_in = normal.cdf((logits - threshold) / std)
            load = (p_in * w.unsqueeze(-1)).sum(dim=1)
        else:
            load = importance
        lb = cv_squared(importance) + cv_squared(load)
        return dict(gate_scores=probs_clean, top_k_scores=probs_clean.gather(-1, idx), top_k_indices=idx,
                    gates=gates, dispatch=dispatch, load_balance_loss=lb, load=load, importance=importance)


class ExpertChoiceRouter(nn.Module):
    """Zhou et al. 2022 expert-choice routing in training; token-choice top-k at inference.

    Training: each expert takes its top-``capacity`` rows by gate probability, capacity =
    ceil(capacity_factor·n·k/E) with n = rows of positive weight (per replica). Mixing weights are
    the gate probabilities of the experts that took the row, renormalised; a row no expert took
    falls back to its token-choice top-k gates so every output stays a distribution.
    Inference rule (documented, so no row depends on its batch): in eval mode every row is routed by token-choice
    top-k on its own gate probabilities, so a word's prediction never depends on its batch mates.
    """

    def __init__(self, num_experts: int, top_k: int, capacity_factor: float = 1.0, **_: object) -> None:
        super().__init__()
        self.num_experts, self.top_k, self.capacity_factor = num_experts, top_k, capacity_factor

    def capacity(self, w: torch.Tensor) -> torch.Tensor:
        """Rows per expert for each replica, (R,) long."""
        n_eff = (w > 0).sum(dim=1).float()
        cap = torch.ceil(self.capacity_factor * n_eff * self.top_k / self.num_experts)
        return cap.clamp(min=1).minimum(n_eff.clamp(min=1)).long()

    def forward(self, logits: torch.Tensor, z: torch.Tensor, w: torch.Tensor,
                idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        E, k = self.num_experts, self.top_k
        probs = logits.softmax(dim=-1)
        tc_gates, top, idx = topk_gates(probs, k)
        if not self.training:
            dispatch = _dispatch(idx, E)
            return dict(gate_scores=probs, top_k_scores=top, top_k_indices=idx, gates=tc_gates, dispatch=dispatch,
                        load_balance_loss=switch_load_balance(probs, dispatch, w))
        # Rank rows within each expert column; rows of weight 0 (out of bag) rank last.
        score = torch.where(w.unsqueeze(-1) > 0, probs.detach(), torch.full_like(probs, -1.0))
        order = score.argsort(dim=1, descending=True, stable=True)
        ranks = torch.empty_like(order).scatter_(1, order, torch.arange(score.shape[1]).view(1, -1, 1)
                                                 .expand_as(order).contiguous())
        chosen = (ranks < self.capacity(w).view(-1, 1, 1)) & (w.unsqueeze(-1) > 0)
        picked = probs * chosen
        total = picked.sum(dim=-1, keepdim=True)
        ec_gates = picked / total.clamp_min(EPS)
        orphan = total <= 0
        gates = torch.where(orphan, tc_gates, ec_gates)
        dispatch = torch.where(orphan, _dispatch(idx, E), chosen.float())
        return dict(gate_scores=probs, top_k_scores=top, top_k_indices=idx, gates=gates, dispatch=dispatch,
                    load_balance_loss=switch_load_balance(probs, dispatch, w), chosen=chosen)


def gate_margin(probs: torch.Tensor, k: int, w: torch.Tensor) -> torch.Tensor:
    """Weighted median over rows of the gap between the k-th and (k+1)-th largest gate probability, (R,).

    The spread of the gate: an incentive smaller than a row's gap cannot change that row's selection.
    With k = E nothing can be overridden and the gap is 0.
    """
    E = probs.shape[-1]
    if k >= E:
        return probs.new_zeros(probs.shape[0])
    top = probs.topk(k + 1, dim=-1).values
    gap = top[..., k - 1] - top[..., k]                                     # (R, n)
    order = gap.argsort(dim=1)
    sg, sw = gap.gather(1, order), w.gather(1, order)
    cum = sw.cumsum(dim=1) / sw.sum(dim=1, keepdim=True).clamp_min(EPS)
    pos = (cum < 0.5).sum(dim=1, keepdim=True).clamp_max(gap.shape[1] - 1)
    return sg.gather(1, pos).squeeze(1)


class ReputationRouter(TopKRouter):
    """Reputation-based dynamic expert selection with adaptive incentives.

    score_i(x, t) = g_i(x) + s(t)·(β·R_i(t) − γ·L_i(t) + bonus_i(t)), with g = softmax gate probabilities.
    The k highest scores choose the experts; the mixing weights are g renormalised over them.
    s(t) scales the incentives to the spread of the gate: the bias-corrected EMA over training steps of
    the median gap between the k-th and (k+1)-th gate probability (``gate_margin``). Unscaled, a load
    term γ·ΔL ~ 0.4 dwarfs typical gate gaps (~0.1) and the incentives, not the gate, chose the expert
    of almost every word; scaled, an incentive of size 1 flips only rows whose gap is below the median,
    so the router balances load at the margin while the gate decides most words. s(t) is state (a
    buffer learnt in training), so at inference a word's selection never depends on its batch mates.
    State (buffers, one row per replica, updated under no_grad after each training step only):
      R_i  ← ρ·R_i + (1−ρ)·q_i for experts that received rows, q_i = −CE of expert i's own output on
             its rows minus the mean of that over the experts that received rows (centred quality);
             then R ← mean(R) + λ·(R − mean(R)): decay toward the mean against rich-get-richer.
      L_i  ← ρ·L_i + (1−ρ)·load_i, load_i = share of the step's (row, slot) dispatches.
      bonus_i(t) = b·δ^t / (1 + U_i), U_i = cumulative load share: an exploration bonus that decays
             with steps and favours rarely used experts.
    (ρ = REPUTATION_EMA, λ = REPUTATION_DECAY, b = EXPLORATION_BONUS, δ = EXPLORATION_DECAY.)
    """

    def __init__(self, num_experts: int, top_k: int, replicas: int, reputation_beta: float = 0.5,
                 reputation_gamma: float = 0.5, reputation_ema: float = 0.9, reputation_decay: float = 0.99,
                 exploration_bonus: float = 0.1, exploration_decay: float = 0.98, **_: object) -> None:
        super().__init__(num_experts, top_k)
        self.beta, self.gamma, self.ema = reputation_beta, reputation_gamma, reputation_ema
        self.decay, self.bonus0, self.bonus_decay = reputation_decay, exploration_bonus, exploration_decay
        self.register_buffer("reputation", torch.zeros(replicas, num_experts))
        self.register_buffer("load_ema", torch.full((replicas, num_experts), 1.0 / num_experts))
        self.register_buffer("usage", torch.zeros(replicas, num_experts))
        self.register_buffer("steps", torch.zeros(replicas))
        self.register_buffer("margin_ema", torch.zeros(replicas))     # EMA of gate_margin (bias-corrected in use)

    def _state(self, name: str, idx: torch.Tensor | None) -> torch.Tensor:
        b = getattr(self, name)
        return b if idx is None else b[idx]

    def bonus(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Exploration bonus (R, E): b·δ^t / (1 + cumulative load share)."""
        steps, usage = self._state("steps", idx), self._state("usage", idx)
        return self.bonus0 * self.bonus_decay ** steps.unsqueeze(-1) / (1.0 + usage)

    def incentive_scale(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """s(t) (R,): bias-corrected EMA of the gate margin; 0 before the first training step."""
        steps = self._state("steps", idx)
        debias = 1.0 - self.ema ** steps
        return torch.where(steps > 0, self._state("margin_ema", idx) / debias.clamp_min(EPS), torch.zeros_like(steps))

    def incentives(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Unscaled incentives (R, E) = β·R − γ·L + bonus."""
        return (self.beta * self._state("reputation", idx) - self.gamma * self._state("load_ema", idx)
                + self.bonus(idx))

    def scores(self, probs: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Selection scores (R, n, E) = g + s·(β·R − γ·L + bonus)."""
        adj = self.incentive_scale(idx).unsqueeze(-1) * self.incentives(idx)
        return probs + adj.unsqueeze(1)

    def selection_scores(self, probs: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        return self.scores(probs, idx)

    @torch.no_grad()
    def update_state(self, dispatch: torch.Tensor, expert_outputs: torch.Tensor, target: torch.Tensor,
                     w: torch.Tensor, idx: torch.Tensor | None = None, gate_scores: torch.Tensor | None = None) -> None:
        """One training step's update of R, L, usage, the margin EMA and t for the replicas in ``idx`` (all if None).

        dispatch (R', n, E), expert_outputs (R', n, E, 7), target (n, 7) or (R', n, 7), w (R', n),
        gate_scores (R', n, E) the step's gate probabilities (None: the margin EMA is not updated),
        where R' = len(idx); replicas outside idx (stopped ones) keep their state.
        """
        if gate_scores is not None:
            i = torch.arange(self.reputation.shape[0]) if idx is None else idx
            margin = gate_margin(gate_scores, self.top_k, w)
            self.margin_ema[i] = self.ema * self.margin_ema[i] + (1 - self.ema) * margin
        idx = torch.arange(self.reputation.shape[0]) if idx is None else idx
        if target.dim() == 2:
            target = target.unsqueeze(0)
        wd = dispatch * w.unsqueeze(-1)                          # (R', n, E)
        rows = wd.sum(dim=1)                                     # (R', E)
        load = rows / rows.sum(dim=-1, keepdim=True).clamp_min(EPS)
        ce = -(target.unsqueeze(2) * torch.log(expert_outputs.clamp_min(EPS))).sum(dim=-1)  # (R', n, E)
        got = rows > 0
        quality = -(ce * wd).sum(dim=1) / rows.clamp_min(EPS)
        centre = (quality * got).sum(dim=-1, keepdim=True) / got.sum(dim=-1, keepdim=True).clamp_min(1)
        q = quality - centre
        old_rep = self.reputation[idx]
        rep = torch.where(got, self.ema * old_rep + (1 - self.ema) * q, old_rep)
        rep = rep.mean(dim=-1, keepdim=True) + self.decay * (rep - rep.mean(dim=-1, keepdim=True))
        self.reputation[idx] = rep
        self.load_ema[idx] = self.ema * self.load_ema[idx] + (1 - self.ema) * load
        self.usage[idx] = self.usage[idx] + load
        self.steps[idx] = self.steps[idx] + 1


class AuxFreeBiasRouter(TopKRouter):
    """Auxiliary-loss-free load balancing (Wang et al. 2024, DeepSeek-V3), the closest relative of ``reputation``.

    A per-expert bias b_i, updated outside the gradient after each training step by
    b_i ← b_i + u·sign(mean load − load_i), is added to the gate probabilities ONLY when selecting the
    top-k; the mixing weights are the gate probabilities renormalised over the selected experts.
    Selected with MoEConfig(router="aux_free_bias"); u = BIAS_UPDATE_RATE.
    """

    def __init__(self, num_experts: int, top_k: int, replicas: int, bias_update_rate: float = 1e-3,
                 **_: object) -> None:
        super().__init__(num_experts, top_k)
        self.rate = bias_update_rate
        self.register_buffer("bias", torch.zeros(replicas, num_experts))

    def selection_scores(self, probs: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Gate probabilities plus the per-expert bias (selection only; mixing uses the probabilities)."""
        bias = self.bias if idx is None else self.bias[idx]
        return probs + bias.unsqueeze(1)

    @torch.no_grad()
    def update_state(self, dispatch: torch.Tensor, expert_outputs: torch.Tensor, target: torch.Tensor,
                     w: torch.Tensor, idx: torch.Tensor | None = None, **_: object) -> None:
        """b_i += u·sign(mean load − load_i) for the replicas in idx (all if None)."""
        idx = torch.arange(self.bias.shape[0]) if idx is None else idx
        load = (dispatch * w.unsqueeze(-1)).sum(dim=1)
        self.bias[idx] = self.bias[idx] + self.rate * torch.sign(load.mean(dim=-1, keepdim=True) - load)


ROUTER_CLASSES = {"topk": TopKRouter, "noisy_topk": NoisyTopKRouter, "expert_choice": ExpertChoiceRouter,
                  "reputation": ReputationRouter, "aux_free_bias": AuxFreeBiasRouter}


def make_router(config: object, n_features: int, replicas: int, replica_ids: list[int] | None = None) -> nn.Module:
    """The router named by config.router, built from the config's knobs; replica i draws its router noise
    from the NOISE stream of (config.seed, replica_ids[i])."""
    kwargs = {f: getattr(config, f) for f in ("capacity_factor", "reputation_beta", "reputation_gamma",
                                              "reputation_ema", "reputation_decay", "exploration_bonus",
                                              "exploration_decay", "bias_update_rate")}
    ids = list(range(replicas)) if replica_ids is None else list(replica_ids)
    streams = [torch_stream(config.seed, i, NOISE) for i in ids] if config.router == "noisy_topk" else None
    return ROUTER_CLASSES[config.router](num_experts=config.num_experts, top_k=config.top_k,
                                         n_features=n_features, replicas=replicas, noise_streams=streams, **kwargs)


__all__ = ["gate_margin", "overridden_rows", "topk_gates", "TopKRouter", "NoisyTopKRouter", "ExpertChoiceRouter",
           "ReputationRouter", "AuxFreeBiasRouter",
           "make_router", "cv_squared", "ROUTER_CLASSES"]
