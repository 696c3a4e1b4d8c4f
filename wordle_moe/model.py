"""The mixture-of-experts model, batched over R replicas (R=1: one model; R=B: the bootstrap).

Every parameter and buffer has a leading replica axis R, so B bootstrap replicas train as ONE
model with one optimizer step. Replica r owns its random streams (``streams.py``: initial weights,
dropout masks, router noise, all derived from (seed, replica id) only), so it equals a sequential
R=1 run with the same seed and replica id, whatever B and whichever replicas train beside it.

    raw x (n, d) ─ standardise (per-replica buffers) ─┬─ gate (linear | MLP+LayerNorm) ─ router ─ gates (R,n,E)
                                                      └─ E experts: Linear─act─dropout─Linear─softmax (R,n,E,7)
    with EXPERT_SKIP each expert's logits gain a linear skip path:  softmax(z·W_skip + MLP(z))
    with SHARED_BASE (default) expert e = softmax(z·(W_base + Δ_e) + b_base + δ_e [+ MLP_e(z)]): every expert
    shares one linear base and deviates from it by penalised Δ_e, δ_e, so at Δ = 0 the MoE IS softmax regression
    final_output = Σ_i gates_i · expert_i        (rows sum to 1)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import MoEConfig
from .losses import EPS, buckets_outer, softmax_small
from .paths import N_BUCKETS
from .routers import make_router, overridden_rows
from .streams import DROPOUT, INIT, leading_rows, numpy_stream, torch_stream

ACTIVATION_FNS = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu, "tanh": torch.tanh}
EXPERT_PARAMS = ("expert_w1", "expert_b1", "expert_w2", "expert_b2")
SKIP_PARAM = "expert_skip_w"   # (E, d, 7) per replica; the MLP's output bias expert_b2 is its intercept
BASE_PARAMS = ("base_w", "base_b")  # SHARED_BASE: (d, 7), (7,) per replica; SKIP_PARAM is then Δ_e, expert_b2 δ_e
STD_FLOOR = 1e-8   # a feature with a smaller (float64) std on a replica's rows is constant there


def _uniform(gen: torch.Generator, shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    """nn.Linear's default init U(−1/√fan_in, 1/√fan_in), drawn from ``gen``."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


def init_replica(config: MoEConfig, d: int, replica: int = 0) -> dict[str, torch.Tensor]:
    """Initial parameters of ONE replica, drawn in a fixed order from its INIT stream (config.seed, replica).

    The gate is NOT zero-initialised: zero weights tie every logit, top-k then picks expert 0 for
    every row and the routing collapses (tests/test_model.py shows it).
    """
    g = torch_stream(config.seed, replica, INIT)
    E, H, C = config.num_experts, config.hidden_size, N_BUCKETS
    p = {
        "expert_w1": _uniform(g, (E, d, H), d), "expert_b1": _uniform(g, (E, H), d),
        "expert_w2": _uniform(g, (E, H, C), H), "expert_b2": _uniform(g, (E, C), H),
    }
    if config.expert_skip:
        # zero start: the GLM part grows from the data; no generator draw, so every other parameter
        # is drawn exactly as without the skip path
        p[SKIP_PARAM] = torch.zeros(E, d, C)
        if config.skip_zero_mlp:
            # residual-branch start: the MLP's output layer at 0, so each expert starts as softmax(b2)
            # and the nonlinear part only grows where the GLM leaves signal (w1 still random: no tie)
            p["expert_w2"] = torch.zeros(E, H, C)
    if config.shared_base:
        # every expert starts AS the shared base (Δ = 0, δ = 0): experts differ only where the data moves them;
        # no generator draw, so the gate below is drawn exactly as without the base
        p.update(base_w=torch.zeros(d, C), base_b=torch.zeros(C), expert_b2=torch.zeros(E, C))
        p[SKIP_PARAM] = torch.zeros(E, d, C)
        if config.expert_mlp:
            p["expert_w2"] = torch.zeros(E, H, C)   # the nonlinear deviation grows from 0, penalised like Δ
        else:
            for name in ("expert_w1", "expert_b1", "expert_w2"):
                del p[name]
    if config.gate == "linear":
        p.update(gate_w=_uniform(g, (d, E), d), gate_b=_uniform(g, (E,), d))
    else:
        p.update(gate_w=_uniform(g, (d, H), d), gate_b=_uniform(g, (H,), d),
                 gate_ln_w=torch.ones(H), gate_ln_b=torch.zeros(H),
                 gate_w2=_uniform(g, (H, E), H), gate_b2=_uniform(g, (E,), H))
    return p


def _mix(weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Σ_i weights_i · expert_i: (R, n, E) × (R, n, E, 7) -> (R, n, 7) (broadcast, not a tiny-batch bmm); with the
    experts stored buckets-outer the result is too."""
    if buckets_outer(experts):
        # (R, E, 1, n) × (R, E, 7, n) summed over E: rows innermost throughout
        return (weights.transpose(1, 2).contiguous().unsqueeze(2) * experts.permute(0, 2, 3, 1)).sum(dim=1).transpose(1, 2)
    return (weights.unsqueeze(-1) * experts).sum(dim=-2)


def _chosen_expert(experts: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Output of each row's chosen expert: (R, n, E, 7) stored buckets-outer, indices (R, n, 1) -> (R, n, 7), stored
    buckets-outer too. The top-1 mixture Σ_i gate_i · expert_i with one-hot gates, without the E-fold arithmetic."""
    R, n, _, C = experts.shape
    index = chosen.reshape(R, 1, 1, n).expand(R, 1, C, n)
    return experts.permute(0, 2, 3, 1).gather(1, index).squeeze(1).transpose(1, 2)


class _StraightThroughGate(torch.autograd.Function):
    """y unchanged; gradient w.r.t. the gate probabilities p: that of the dense mixture Σ_i p_i·sg(expert_i), i.e.
    Σ_c ∂L/∂y_c · expert_ic, computed with the rows innermost (the experts stored buckets-outer)."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, gate_scores: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(experts)
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        (experts,) = ctx.saved_tensors
        g = grad.transpose(1, 2).contiguous().unsqueeze(1)                     # (R, 1, 7, n)
        d_scores = (g * experts.permute(0, 2, 3, 1)).sum(dim=2).transpose(1, 2)  # (R, E, n) -> (R, n, E)
        return grad, d_scores, None


class MoEModel(nn.Module):
    """Gate + router + E experts, every tensor with a leading replica axis R."""

    def __init__(self, n_features: int, config: MoEConfig | None = None, replicas: int = 1,
                 replica_ids: list[int] | None = None) -> None:
        super().__init__()
        self.config = (config or MoEConfig()).validate()
        self.n_features, self.replicas = int(n_features), int(replicas)
        ids = list(replica_ids) if replica_ids is not None else list(range(self.replicas))
        if len(ids) != self.replicas:
            raise ValueError(f"got {len(ids)} replica ids for {self.replicas} replicas")
        self.replica_ids = [int(i) for i in ids]
        inits = [init_replica(self.config, self.n_features, i) for i in self.replica_ids]  # init only: cheap
        for name in inits[0]:
            self.register_parameter(name, nn.Parameter(torch.stack([p[name] for p in inits])))
        self.register_buffer("x_mean", torch.zeros(self.replicas, self.n_features))
        self.register_buffer("x_std", torch.ones(self.replicas, self.n_features))
        self.router = make_router(self.config, self.n_features, self.replicas, self.replica_ids)
        self.activation = ACTIVATION_FNS[self.config.activation]
        # Top-1 renormalised weights are constant 1: add the straight-through gate path (see forward).
        self.straight_through = self.config.top_k == 1
        # one dropout stream per replica: replica r's masks never depend on B or on its batch mates
        self.dropout_streams = [numpy_stream(self.config.seed, i, DROPOUT) for i in self.replica_ids]
        self.expert_param_names = EXPERT_PARAMS + ((SKIP_PARAM,) if self.config.expert_skip else ())
        if self.config.shared_base:
            mlp = ("expert_w1", "expert_b1", "expert_w2") if self.config.expert_mlp else ()
            self.expert_param_names = mlp + ("expert_b2", SKIP_PARAM)
        self.base_param_names = BASE_PARAMS if self.config.shared_base else ()
        # dropout acts on the experts' MLP only: without one (the shared-base default) no mask is ever drawn
        has_mlp = not self.config.shared_base or self.config.expert_mlp
        self.expert_dropout = has_mlp and self.config.dropout > 0
        # per-replica ridge strengths of the converged objective (the inner CV gives each replica its own)
        R = self.replicas
        self.penalty_base = torch.full((R,), float(self.config.base_l2))
        self.penalty_delta = torch.full((R,), float(self.config.delta_l2))
        self.penalty_gate = torch.full((R,), float(self.config.gate_l2))
        self.input_clip_r: torch.Tensor | None = None   # (R,) per-replica INPUT_CLIP when set (inner CV); else the config's
        self.gate_param_names = tuple(n for n in ("gate_w", "gate_b", "gate_ln_w", "gate_ln_b", "gate_w2", "gate_b2")
                                      if hasattr(self, n))

    # -- input handling -------------------------------------------------------------------------
    def fit_standardizer(self, X: Any, weight: Any | None = None) -> MoEModel:
        """Fit per-replica mean/std buffers on training rows (weighted by bootstrap counts).

        Computed in float64 with the centred (two-pass) variance: the float32 shortcut E[x²] − E[x]²
        left a constant column of ones with std ≈ 2e-4 instead of 0 in 199 of 200 bootstrap replicas,
        so a word with a different value there (in_answer_list = 0) was standardised to z ≈ −1600.
        A column whose std is below STD_FLOOR is constant on the replica's rows and left unscaled.
        """
        x = torch.as_tensor(np.asarray(X, dtype=np.float64))
        w = (torch.ones(self.replicas, x.shape[0], dtype=torch.float64) if weight is None
             else torch.as_tensor(np.asarray(weight, dtype=np.float64)))
        w = w.expand(self.replicas, -1) if w.dim() == 1 or w.shape[0] == 1 else w
        w = w / w.sum(dim=1, keepdim=True).clamp_min(EPS)
        mean = w @ x                                                     # (R, d)
        var = torch.einsum("rn,rnd->rd", w, (x.unsqueeze(0) - mean.unsqueeze(1)) ** 2)
        std = var.sqrt()
        self.x_mean.copy_(mean.float())
        self.x_std.copy_(torch.where(std > STD_FLOOR, std, torch.ones_like(std)).float())
        return self

    def standardise(self, x: Any, idx: torch.Tensor | None = None) -> torch.Tensor:
        """(x − mean) / std per replica, clipped to ±INPUT_CLIP: (R, n, d).

        The clip bounds extrapolation: a word 10σ outside the training range on some feature (or a
        feature that never varied in a replica's resample) is treated like one at the edge, so no
        replica's GELU experts are pushed into a linear regime they never saw (collapsed predictions).
        """
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.shape[-1] != self.n_features:
            raise ValueError(f"X has {x.shape[-1]} features, the model was built for {self.n_features}")
        mean, std = (self.x_mean, self.x_std) if idx is None else (self.x_mean[idx], self.x_std[idx])
        z = (x - mean.unsqueeze(1)) / std.unsqueeze(1)
        if self.input_clip_r is not None:   # per-replica clips (the inner CV's candidates; inf = none)
            c = (self.input_clip_r if idx is None else self.input_clip_r[idx]).view(-1, 1, 1)
            return torch.maximum(torch.minimum(z, c), -c)
        clip = self.config.input_clip
        return z.clamp(-clip, clip) if clip > 0 else z

    def _p(self, name: str, idx: torch.Tensor | None) -> torch.Tensor:
        """Parameter ``name``, restricted to the replicas in ``idx`` (all when None)."""
        p = getattr(self, name)
        return p if idx is None else p[idx]

    # -- sub-networks ---------------------------------------------------------------------------
    def gate_logits(self, z: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Gate logits (R, n, E) from standardised inputs."""
        h = torch.baddbmm(self._p("gate_b", idx).unsqueeze(1), z, self._p("gate_w", idx))
        if self.config.gate == "linear":
            return h
        h = F.layer_norm(h, h.shape[-1:]) * self._p("gate_ln_w", idx).unsqueeze(1) \
            + self._p("gate_ln_b", idx).unsqueeze(1)
        return torch.baddbmm(self._p("gate_b2", idx).unsqueeze(1), self.activation(h), self._p("gate_w2", idx))

    def _dropout_(self, h: torch.Tensor, rows: list[int] | None = None, idx: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """In-place dropout mask WITHOUT the 1/(1−p) scale (expert_outputs folds it into the next matmul).

        Replica r's keep mask for its first ``rows[r]`` rows (its positive-weight rows; padding rows
        beyond them carry weight 0 and keep 1) comes from its own numpy SFC64 stream, so the draws do
        not depend on how many rows other replicas pad the batch to. One generator call per replica:
        the random bytes are the cost, not the loop (torch's CPU bernoulli is several times slower on
        (R·E, n, H) tensors; SFC64 ~1.3x faster than PCG64); p is quantised to 1/65536.
        In place only after gelu/swish, whose backward needs the input, not this output (relu's and
        tanh's backward read their output, so they get an out-of-place multiply).
        """
        p = self.config.dropout
        if not self.training or p <= 0:
            return h
        E, H = self.config.num_experts, self.config.hidden_size
        R, n = h.shape[0] // E, h.shape[1]
        rows = [n] * R if rows is None else rows
        bits = np.empty((R, E, n, H), dtype=np.uint16)
        ids = range(R) if idx is None else idx.tolist()
        for i, r in enumerate(ids):
            m = rows[i]
            bits[i, :, :m] = np.frombuffer(self.dropout_streams[r].bytes(2 * E * m * H),
                                           dtype=np.uint16).reshape(E, m, H)
            if m < n:
                bits[i, :, m:] = np.iinfo(np.uint16).max      # padding rows: kept (their weight is 0)
        keep = torch.from_numpy(bits >= int(round(p * 65536))).view(h.shape).to(h.dtype)
        return h.mul_(keep) if self.config.activation in ("gelu", "swish") else h * keep

    def _hidden_pre(self, z: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """Every expert's first-layer pre-activations, (R·E, n, H) in an (R, E, n, H) layout."""
        R, n, d = z.shape
        E, H = self.config.num_experts, self.config.hidden_size
        # (R·E) batched matmuls in an (R, E, n, H) layout: only z (d columns) is copied E times, never h.
        ze = z.unsqueeze(1).expand(R, E, n, d).reshape(R * E, n, d)
        return torch.baddbmm(self._p("expert_b1", idx).reshape(R * E, 1, H), ze,
                             self._p("expert_w1", idx).reshape(R * E, d, H))

    def expert_outputs(self, z: torch.Tensor, idx: torch.Tensor | None = None,
                       rows: list[int] | None = None) -> torch.Tensor:
        """All E experts at once: [z·W_skip +] Linear → activation → dropout → Linear → softmax -> (R, n, E, 7).

        ``rows`` (one int per replica) bounds the rows whose dropout masks are drawn (default all n).
        """
        if self.config.shared_base:
            return self._shared_base_outputs(z, idx, rows)
        R, n, _ = z.shape
        E, H = self.config.num_experts, self.config.hidden_size
        h = self._dropout_(self.activation(self._hidden_pre(z, idx)), rows, idx)
        scale = 1.0 / (1.0 - self.config.dropout) if self.training and self.config.dropout > 0 else 1.0
        logits = torch.baddbmm(self._p("expert_b2", idx).reshape(R * E, 1, N_BUCKETS), h,
                               self._p("expert_w2", idx).reshape(R * E, H, N_BUCKETS), alpha=scale)
        logits = logits.view(R, E, n, N_BUCKETS)
        if self.config.expert_skip:
            # (R, 1, n, d) @ (R, E, d, 7): the GLM path of every expert, not touched by dropout
            logits = logits + torch.matmul(z.unsqueeze(1), self._p(SKIP_PARAM, idx))
        return softmax_small(logits).transpose(1, 2)

    def _shared_base_outputs(self, z: torch.Tensor, idx: torch.Tensor | None, rows: list[int] | None
                             ) -> torch.Tensor:
        """SHARED_BASE experts: softmax(z·(W_base + Δ_e) + b_base + δ_e [+ MLP_e(z)]) -> (R, n, E, 7).

        With one expert there is nothing to deviate from: the expert is the base (Δ, δ unused), so the model
        is exactly softmax regression.
        """
        R, n, d = z.shape
        E, C = self.config.num_experts, N_BUCKETS
        base_w, base_b = self._p("base_w", idx), self._p("base_b", idx)
        if E == 1:
            logits = torch.baddbmm(base_b.unsqueeze(2), base_w.transpose(1, 2), z.transpose(1, 2))   # (R, 7, n)
            return torch.softmax(logits, dim=1).unsqueeze(1).permute(0, 3, 1, 2)
        # every expert's weights W_base + Δ_e stacked, (R, E·7, d): ONE matmul gives all experts' logits, stored
        # buckets-outer (R, E, 7, n) (see buckets_outer; z is never copied per expert)
        w = (base_w.transpose(1, 2).unsqueeze(1) + self._p(SKIP_PARAM, idx).transpose(2, 3)).reshape(R, E * C, d)
        b = (base_b.unsqueeze(1) + self._p("expert_b2", idx)).reshape(R, E * C, 1)
        logits = torch.baddbmm(b, w, z.transpose(1, 2)).view(R, E, C, n)
        if self.config.expert_mlp:
            H = self.config.hidden_size
            h = self._dropout_(self.activation(self._hidden_pre(z, idx)), rows, idx)
            scale = 1.0 / (1.0 - self.config.dropout) if self.training and self.config.dropout > 0 else 1.0
            mlp = torch.bmm(h, self._p("expert_w2", idx).reshape(R * E, H, C)) * scale
            logits = logits + mlp.view(R, E, n, C).transpose(2, 3)
        # torch's softmax along a non-innermost axis is vectorised over the rows (along 7 innermost it is not)
        return torch.softmax(logits, dim=2).permute(0, 3, 1, 2)                                       # (R, n, E, 7)

    def penalty(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Ridge terms of the converged objective per replica, (R,): BASE_L2/2·||W_base||² + DELTA_L2/2·Σ_e
        (||Δ_e||² + ||δ_e||² [+ ||MLP_e output layer||²]) + GATE_L2/2·||gate weights||² (intercepts of the base
        and the gate unpenalised). With one expert only the base counts (Δ is unused)."""
        pick = (lambda t: t) if idx is None else (lambda t: t[idx])
        total = torch.zeros(self.replicas if idx is None else len(idx))
        if self.config.shared_base:
            total = total + 0.5 * pick(self.penalty_base) * self._p("base_w", idx).pow(2).sum(dim=(1, 2))
            if self.config.num_experts > 1:
                dev = self._p(SKIP_PARAM, idx).pow(2).sum(dim=(1, 2, 3)) + self._p("expert_b2", idx).pow(2).sum((1, 2))
                if self.config.expert_mlp:
                    dev = dev + self._p("expert_w2", idx).pow(2).sum(dim=(1, 2, 3))
                total = total + 0.5 * pick(self.penalty_delta) * dev
        gate = [n for n in ("gate_w", "gate_w2") if hasattr(self, n)]
        for name in gate:
            p = self._p(name, idx)
            total = total + 0.5 * pick(self.penalty_gate) * p.pow(2).sum(dim=tuple(range(1, p.dim())))
        return total

    def skip_penalty(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """SKIP_L2/2 · ||W_skip||² per replica, (R,) (zeros without the skip path): ridge on the GLM part."""
        if not self.config.expert_skip or self.config.skip_l2 <= 0:
            R = self.replicas if idx is None else len(idx)
            return torch.zeros(R)
        w = self._p(SKIP_PARAM, idx)
        return 0.5 * self.config.skip_l2 * w.pow(2).sum(dim=(1, 2, 3))

    def expert_parameters_flat(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Each expert's parameters flattened: (R, E, D), for the parameter-diversity loss."""
        E = self.config.num_experts
        parts = [self._p(n, idx) for n in self.expert_param_names]
        return torch.cat([p.reshape(p.shape[0], E, -1) for p in parts], dim=-1)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: Any, return_intermediate: bool = False, weight: torch.Tensor | None = None,
                idx: torch.Tensor | None = None, standardised: bool = False):
        """Mixture prediction (R, n, 7); with return_intermediate a dict of every routing quantity.

        x is (n, d) raw features shared by all replicas or (R, n, d) one row set per replica; with
        ``standardised`` it is already ``standardise``'s output (the trainer computes that once per fit: the
        standardiser and the clip do not change during training).
        ``weight`` (R, n) are row weights for the load statistics (bootstrap counts); default 1.
        ``idx`` restricts the computation to those replicas (the trainer skips stopped ones).
        """
        z = x if standardised else self.standardise(x, idx)
        if idx is not None and z.shape[0] == 1 and len(idx) > 1:
            z = z.expand(len(idx), -1, -1)
        R, n, _ = z.shape
        w = torch.ones(R, n) if weight is None else weight
        logits = self.gate_logits(z, idx)
        experts = self.expert_outputs(z, idx, leading_rows(w) if self.training and self.expert_dropout else None)
        routed = self.router(logits, z, w, idx) if idx is not None else self.router(logits, z, w)
        if self.straight_through and getattr(self.router, "gates_at_top_k", False) and buckets_outer(experts):
            # the same values and gradients as the general path below, without the E-fold arithmetic
            y = _chosen_expert(experts, routed["top_k_indices"])
            if torch.is_grad_enabled():
                y = _StraightThroughGate.apply(y, routed["gate_scores"], experts.detach())
        else:
            y = _mix(routed["gates"], experts)
            if self.straight_through and torch.is_grad_enabled():
                # Value: exactly the top-k mixture (the added terms cancel to 0). Gradient w.r.t. the gate:
                # that of the dense mixture Σ_i p_i·sg(out_i), so the top-1 router still learns which
                # expert fits each row. Experts get gradient only from the exact top-k path.
                dense = _mix(routed["gate_scores"], experts.detach())
                y = y + (dense - dense.detach())
        if not return_intermediate:
            return y
        out = dict(routed)
        out.update(gate_logits=logits, expert_outputs=experts, final_output=y)
        if not (self.training and torch.is_grad_enabled()):   # read by the analysis, never by a training step
            out.update(gate_top_k_indices=routed["gate_scores"].topk(self.config.top_k, dim=-1).indices,
                       overridden=overridden_rows(routed["gate_scores"], routed["dispatch"], self.config.top_k))
        return out

    # -- training helpers -----------------------------------------------------------------------
    def expert_parameter_list(self) -> list[nn.Parameter]:
        """The experts' parameters, the shared base included (what freeze_experts freezes)."""
        return [getattr(self, n) for n in self.expert_param_names + self.base_param_names]

    def router_parameter_list(self) -> list[nn.Parameter]:
        """Gate and router parameters (what the router-only phase trains)."""
        experts = {id(p) for p in self.expert_parameter_list()}
        return [p for p in self.parameters() if id(p) not in experts]

    def freeze_experts(self) -> MoEModel:
        """Stop gradients into the experts (phase 2: router-only training)."""
        for p in self.expert_parameter_list():
            p.requires_grad_(False)
        return self

    def unfreeze_experts(self) -> MoEModel:
        for p in self.expert_parameter_list():
            p.requires_grad_(True)
        return self

    def replica_state(self) -> dict[str, torch.Tensor]:
        """Detached copies of every parameter and buffer (all carry the replica axis first)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    @torch.no_grad()
    def load_replica_state(self, state: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> None:
        """Copy ``state`` into the model, only for replicas where ``mask`` (R,) is True (all if None)."""
        current = self.state_dict()
        for k, v in state.items():
            if mask is None:
                current[k].copy_(v)
            else:
                m = mask.view((-1,) + (1,) * (v.dim() - 1))
                current[k].copy_(torch.where(m, v, current[k]))
