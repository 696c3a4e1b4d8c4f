"""One configuration object for the MoE, validated before any training starts.

Field names are the lower-case forms of the knobs in ``moe_booststrap.py``;
validation errors name the knob (upper case) so users know what to edit.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROUTERS = ("topk", "noisy_topk", "expert_choice", "reputation", "aux_free_bias")
ACTIVATIONS = ("gelu", "relu", "swish", "tanh")
GATES = ("linear", "mlp")
N_WEIGHTINGS = ("none", "sqrt", "log", "linear")
GATE_INITS = ("difficulty", "random")
EXPERT_ORDERS = ("difficulty", "none")
EXPERT_INITS = ("group_mean", "dense", "random")
SKIP_INITS = ("zero", "softmax_regression")
TRAININGS = ("converged", "early_stopping")
DIVERSITY_SCOPES = ("routed", "all")   # rows the output-diversity and JS terms average each expert over


class ConfigError(ValueError):
    """A knob has an invalid value; the message names the knob."""


@dataclass
class MoEConfig:
    """Every hyper-parameter of one MoE training run."""

    num_experts: int = 2
    top_k: int = 1
    hidden_size: int = 64
    router: str = "topk"
    gate: str = "linear"            # gating network: linear, or MLP with LayerNorm
    activation: str = "tanh"        # tanh + dropout 0.3: best inner-CV RPS of the activations tried
    dropout: float = 0.3
    aux_loss_weight: float = 1e-3
    expert_diversity_coef: float = 0.0            # 0: experts differ only where the data moves them (5e-4 before)
    expert_output_diversity_coef: float = 0.0     # 0 (was 0.02): no push apart beyond the data's; 0.1 cost ~15% RPS
    expert_js_divergence_coef: float = 0.0        # 0 (was 0.01), as above
    z_loss_coef: float = 0.0
    n_weighting: str = "none"       # weight rows by reported results: none|sqrt|log|linear
    lr: float = 1e-2
    wd: float = 1e-3
    max_epochs: int = 600           # full-batch steps: one epoch is one optimizer step
    patience: int = 60
    router_only_epochs: int = 0     # optional phase 2: experts frozen, router trained
    val_fraction: float = 0.2
    seed: int = 0
    capacity_factor: float = 1.0    # expert_choice: rows per expert = capacity_factor * n * k / E
    reputation_beta: float = 0.5
    reputation_gamma: float = 0.5
    reputation_ema: float = 0.9
    reputation_decay: float = 0.99
    exploration_bonus: float = 0.1
    exploration_decay: float = 0.98
    bias_update_rate: float = 1e-3  # aux_free_bias: step u of b_i += u·sign(mean load − load_i) per training step
    routing_ce_coef: float = 0.0    # > 0: value-neutral gate gradient ROUTING_CE_COEF·Σ_i p_i·CE(expert_i)
    gate_init: str = "difficulty"   # linear gate starts as a split of a ridge difficulty score (grouping.py) | random
    gate_init_scale: float = 2.0    # GATE_INIT="difficulty": logit slope per standardised difficulty unit
    expert_init: str = "group_mean"  # output bias at the log mean target of the starting group | dense | random
    gate_lr_scale: float = 0.05     # the gate's learning rate = LR·GATE_LR_SCALE (< 1: the grouping moves slowly)
    expert_order: str = "difficulty"  # relabel experts by the expected tries of their routed output | none
    diversity_scope: str = "routed"  # out_div/JS on each expert's gate-weighted mean over ITS words ("all": every row)
    input_clip: float = 5.0         # standardised inputs clipped to ±INPUT_CLIP (0 = no clip): bounds extrapolation
    expert_skip: bool = False       # each expert = softmax(Linear_skip(x) + MLP(x)): a GLM with a nonlinear residual
    skip_zero_mlp: bool = False     # with EXPERT_SKIP: start the MLP's output layer at 0 (each expert starts linear)
    skip_l2: float = 0.0            # ridge penalty SKIP_L2/2·||W_skip||² per expert (not AdamW's weight decay)
    skip_init: str = "zero"         # with EXPERT_SKIP: "softmax_regression" starts every expert as the linear model
    bootstrap_b: int = 200
    bootstrap_ci: float = 0.95
    # converged, penalised training (training.py, docs/model.md)
    training: str = "converged"     # converged: each replica fits its penalised objective to convergence | early_stopping
    shared_base: bool = True        # expert e = softmax(z·(W_base + Δ_e) + b_base + δ_e): at Δ = 0 softmax regression
    expert_mlp: bool = False        # with SHARED_BASE: each expert adds its MLP (output layer penalised like Δ)
    base_l2: float = 1e-2           # ridge on the shared base's weights (PENALTY_CV >= 2: inner CV's prior, 1-SE rule)
    delta_l2: float = 0.1           # ridge on every expert's deviation Δ_e, δ_e (inner CV picks it when PENALTY_CV >= 2)
    gate_l2: float = 0.0            # ridge on the gate's weights (> 0 pulls a slow gate to a flat split: ARI 0.2)
    penalty_cv: int = 5             # inner folds on the training rows choosing BASE_L2, DELTA_L2, INPUT_CLIP (0: as set)
    converge_tol: float = 1e-6      # a replica stops once its objective changes < tol (relative) over 20 steps

    def validate(self) -> MoEConfig:
        """Raise ConfigError naming the first invalid knob; return self when all are valid."""
        checks = [
            ("NUM_EXPERTS", isinstance(self.num_experts, int) and self.num_experts >= 1, "must be an integer >= 1"),
            ("TOP_K", isinstance(self.top_k, int) and 1 <= self.top_k <= self.num_experts,
             f"must be an integer in 1..NUM_EXPERTS ({self.num_experts})"),
            ("HIDDEN_SIZE", isinstance(self.hidden_size, int) and self.hidden_size >= 1, "must be an integer >= 1"),
            ("ROUTER", self.router in ROUTERS, f"must be one of {ROUTERS}"),
            ("GATE", self.gate in GATES, f"must be one of {GATES}"),
            ("ACTIVATION", self.activation in ACTIVATIONS, f"must be one of {ACTIVATIONS}"),
            ("N_WEIGHTING", self.n_weighting in N_WEIGHTINGS, f"must be one of {N_WEIGHTINGS}"),
            ("DROPOUT", 0.0 <= self.dropout < 1.0, "must be in [0, 1)"),
            ("LR", self.lr > 0, "must be > 0"),
            ("WD", self.wd >= 0, "must be >= 0"),
            ("MAX_EPOCHS", isinstance(self.max_epochs, int) and self.max_epochs >= 1, "must be an integer >= 1"),
            ("PATIENCE", isinstance(self.patience, int) and self.patience >= 1, "must be an integer >= 1"),
            ("ROUTER_ONLY_EPOCHS", isinstance(self.router_only_epochs, int) and self.router_only_epochs >= 0,
             "must be an integer >= 0"),
            ("VAL_FRACTION", 0.0 < self.val_fraction < 1.0, "must be in (0, 1)"),
            ("BOOTSTRAP_B", isinstance(self.bootstrap_b, int) and self.bootstrap_b >= 1, "must be an integer >= 1"),
            ("BOOTSTRAP_CI", 0.0 < self.bootstrap_ci < 1.0, "must be in (0, 1)"),
            ("CAPACITY_FACTOR", self.capacity_factor > 0, "must be > 0"),
            ("BIAS_UPDATE_RATE", isinstance(self.bias_update_rate, (int, float)) and 0 < self.bias_update_rate < 1,
             "must be in (0, 1) (the step added to a selection bias each training step)"),
            ("EXPERT_SKIP", self.expert_skip in (True, False), "must be True or False"),
            ("SKIP_ZERO_MLP", self.skip_zero_mlp in (True, False), "must be True or False"),
            ("SKIP_INIT", self.skip_init in SKIP_INITS and (self.skip_init == "zero" or self.expert_skip is True),
             f"must be one of {SKIP_INITS}; 'softmax_regression' needs EXPERT_SKIP=True"),
            ("GATE_INIT", self.gate_init in GATE_INITS, f"must be one of {GATE_INITS}"),
            ("GATE_INIT_SCALE", isinstance(self.gate_init_scale, (int, float)) and self.gate_init_scale > 0,
             "must be > 0 (logit slope of the difficulty split)"),
            ("EXPERT_INIT", self.expert_init in EXPERT_INITS, f"must be one of {EXPERT_INITS}"),
            ("GATE_LR_SCALE", isinstance(self.gate_lr_scale, (int, float)) and self.gate_lr_scale >= 0,
             "must be >= 0 (0 freezes the gate at its start)"),
            ("EXPERT_ORDER", self.expert_order in EXPERT_ORDERS, f"must be one of {EXPERT_ORDERS}"),
            ("DIVERSITY_SCOPE", self.diversity_scope in DIVERSITY_SCOPES, f"must be one of {DIVERSITY_SCOPES}"),
            ("INPUT_CLIP", isinstance(self.input_clip, (int, float)) and self.input_clip >= 0,
             "must be >= 0 (0 disables the clip of standardised inputs)"),
            ("TRAINING", self.training in TRAININGS, f"must be one of {TRAININGS}"),
            ("SHARED_BASE", self.shared_base in (True, False), "must be True or False"),
            ("EXPERT_MLP", self.expert_mlp in (True, False), "must be True or False"),
            ("PENALTY_CV", isinstance(self.penalty_cv, int) and (self.penalty_cv == 0 or self.penalty_cv >= 2),
             "must be 0 (use BASE_L2 and DELTA_L2 as set) or an integer >= 2 (inner folds)"),
            ("CONVERGE_TOL", isinstance(self.converge_tol, (int, float)) and self.converge_tol > 0, "must be > 0"),
            ("SHARED_BASE", not (self.shared_base is True and self.expert_skip is True),
             "must be False with EXPERT_SKIP=True (the skip path belongs to the MLP experts; the shared base already "
             "is a linear path)"),
        ]
        for knob in ("aux_loss_weight", "expert_diversity_coef", "expert_output_diversity_coef",
                     "expert_js_divergence_coef", "z_loss_coef", "reputation_beta", "reputation_gamma",
                     "exploration_bonus", "routing_ce_coef", "skip_l2", "base_l2", "delta_l2", "gate_l2"):
            checks.append((knob.upper(), getattr(self, knob) >= 0, "must be >= 0 (coefficients cannot be negative)"))
        for knob in ("reputation_ema", "reputation_decay", "exploration_decay"):
            checks.append((knob.upper(), 0.0 <= getattr(self, knob) <= 1.0, "must be in [0, 1]"))
        for knob, ok, rule in checks:
            if not ok:
                value = getattr(self, knob.lower())
                raise ConfigError(f"{knob}={value!r} is invalid: {rule}")
        return self

    def replace(self, **changes: Any) -> MoEConfig:
        """A copy with some fields changed (unknown names raise ConfigError)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown configuration knob(s): {sorted(k.upper() for k in unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MoEConfig:
        """Build from a mapping of knobs (upper or lower case); names that are not fields are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        picked = {k.lower(): v for k, v in values.items() if k.lower() in names}
        return cls(**picked)
