"""One configuration object for the MoE, validated before any training starts.

Field names are the lower-case forms of the knobs in ``moe_booststrap.py``;
validation errors name the knob (upper case) so users know what to edit.
"""
from __future__ import annotations

import ast
import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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


TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def parse_value(value: Any, kind: type) -> Any:
    """``value`` in type ``kind`` (bool, int, float, str) when it is an unambiguous spelling of one, else unchanged.

    Booleans: True/False, 1/0, or the words in TRUE_WORDS/FALSE_WORDS in any case (never the truthiness of a string:
    "false" is False). Integers and floats: from their text ("3", "1e-3"); an int where a float is wanted is kept.
    Lists: from their text ("[1, 2]").
    """
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        return value
    if kind is list:
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                return value
        return list(value) if isinstance(value, tuple) else value
    if isinstance(value, str) and kind in (int, float):
        text = value.strip()
        try:
            return int(text) if kind is int else float(text)
        except ValueError:
            return value
    return value


class ConfigError(ValueError):
    """A knob has an invalid value; the message names the knob."""


def knob(default: Any, help: str, *, choices: tuple[str, ...] | None = None, low: float | None = None,
         high: float | None = None, low_open: bool = False, high_open: bool = False) -> Any:
    """A MoEConfig field with its rule as metadata: one-line ``help``, allowed ``choices`` or the bounds
    [low, high] (``low_open``/``high_open``: the bound itself is excluded). validate() and the tables read it."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "low_open": low_open, "high_open": high_open}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


FIELD_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "list": list}


def field_type(f: dataclasses.Field) -> type:
    """The Python type of a knob field (bool, int, float, str or list), from its annotation."""
    return FIELD_TYPES[f.type if isinstance(f.type, str) else f.type.__name__]


def field_default(f: dataclasses.Field) -> Any:
    """A knob field's default value."""
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def rule(f: dataclasses.Field) -> str:
    """The field's rule in words, e.g. "an integer >= 1", "a number in (0, 1)", "one of ('topk', ...)"."""
    m, kind = f.metadata, field_type(f)
    if kind is bool:
        return "True or False"
    if kind is list:
        return "a non-empty list"
    if kind is str:
        return f"one of {' | '.join(m['choices'])}" if m["choices"] else "text"
    noun = "an integer" if kind is int else "a number"
    lo, hi = m["low"], m["high"]
    if lo is not None and hi is not None:
        return f"{noun} in {'(' if m['low_open'] else '['}{lo:g}, {hi:g}{')' if m['high_open'] else ']'}"
    if lo is not None:
        return f"{noun} {'above' if m['low_open'] else 'at least'} {lo:g}"  # no "=": papermill splits on it
    return noun


def _has_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real) and math.isfinite(value)
    if kind is list:
        return isinstance(value, (list, tuple)) and len(value) > 0
    return isinstance(value, kind)


def check_value(f: dataclasses.Field, value: Any) -> None:
    """Raise ConfigError naming the knob unless ``value`` has the field's type and keeps its rule (choices, bounds)."""
    m = f.metadata
    ok = _has_type(value, field_type(f))
    if ok and m["choices"]:
        ok = value in m["choices"]
    if ok and m["low"] is not None:
        ok = value > m["low"] if m["low_open"] else value >= m["low"]
    if ok and m["high"] is not None:
        ok = value < m["high"] if m["high_open"] else value <= m["high"]
    if not ok:
        raise ConfigError(f"{f.name.upper()}={value!r} is invalid: must be {rule(f)}")


@dataclass
class MoEConfig:
    """Every hyper-parameter of one MoE training run: type, default, rule and meaning of each, in one table."""

    num_experts: int = knob(2, "number of experts", low=1)
    top_k: int = knob(1, "experts each word is routed to (1..NUM_EXPERTS)", low=1)
    hidden_size: int = knob(64, "hidden units of each expert's MLP", low=1)
    router: str = knob("topk", "routing rule", choices=ROUTERS)
    gate: str = knob("linear", "gating network: linear, or an MLP with LayerNorm", choices=GATES)
    activation: str = knob("tanh", "activation of the experts' hidden layer",
                           choices=ACTIVATIONS)
    dropout: float = knob(0.3, "dropout on the experts' hidden layer", low=0.0, high=1.0, high_open=True)
    aux_loss_weight: float = knob(1e-3, "weight of the load-balancing loss", low=0.0)
    expert_diversity_coef: float = knob(0.0, "weight of the expert-weight diversity loss", low=0.0)
    expert_output_diversity_coef: float = knob(0.0, "weight of the expert-output diversity loss", low=0.0)
    expert_js_divergence_coef: float = knob(0.0, "weight of the JS-divergence term between expert outputs", low=0.0)
    z_loss_coef: float = knob(0.0, "weight of the router z-loss", low=0.0)
    n_weighting: str = knob("none", "weight words by their reported results", choices=N_WEIGHTINGS)
    lr: float = knob(1e-2, "AdamW learning rate", low=0.0, low_open=True)
    wd: float = knob(1e-3, "AdamW weight decay", low=0.0)
    max_epochs: int = knob(600, "full-batch training steps at most (one epoch is one optimizer step)", low=1)
    patience: int = knob(60, "early stopping: steps without a better validation loss", low=1)
    router_only_epochs: int = knob(0, "above 0 adds a router-only phase with the experts frozen", low=0)
    val_fraction: float = knob(0.2, "share of the training rows held out for early stopping", low=0.0, high=1.0,
                               low_open=True, high_open=True)
    seed: int = knob(0, "random seed of every stream (splits, initial weights, dropout, resamples)")
    capacity_factor: float = knob(1.0, "expert_choice router: rows per expert are CAPACITY_FACTOR·n·k/E", low=0.0,
                                  low_open=True)
    reputation_beta: float = knob(0.5, "reputation router: weight of the reputation term", low=0.0)
    reputation_gamma: float = knob(0.5, "reputation router: weight of the load term", low=0.0)
    reputation_ema: float = knob(0.9, "reputation router: EMA factor of the reputation", low=0.0, high=1.0)
    reputation_decay: float = knob(0.99, "reputation router: decay of the reputation per step", low=0.0, high=1.0)
    exploration_bonus: float = knob(0.1, "reputation router: exploration bonus", low=0.0)
    exploration_decay: float = knob(0.98, "reputation router: decay of the exploration bonus", low=0.0, high=1.0)
    bias_update_rate: float = knob(1e-3, "aux_free_bias router: selection-bias step per training step",
                                   low=0.0, high=1.0, low_open=True, high_open=True)
    routing_ce_coef: float = knob(0.0, "above 0: extra gate gradient towards the lower cross-entropy expert",
                                  low=0.0)
    gate_init: str = knob("difficulty", "start of the linear gate: a split by difficulty",
                          choices=GATE_INITS)
    gate_init_scale: float = knob(2.0, "with GATE_INIT difficulty: logit slope per standard deviation of the score",
                                  low=0.0, low_open=True)
    expert_init: str = knob("group_mean", "start of the experts' outputs",
                            choices=EXPERT_INITS)
    gate_lr_scale: float = knob(0.05, "the gate learns at LR·GATE_LR_SCALE (0 freezes the gate at its start)",
                                low=0.0)
    expert_order: str = knob("difficulty", "relabel experts by expected tries after training",
                             choices=EXPERT_ORDERS)
    diversity_scope: str = knob("routed", "rows the diversity terms average each expert over",
                                choices=DIVERSITY_SCOPES)
    input_clip: float = knob(5.0, "standardised inputs clipped to ±INPUT_CLIP (0: no clip)",
                             low=0.0)
    expert_skip: bool = knob(False, "each expert adds a linear (softmax-regression) path to its MLP")
    skip_zero_mlp: bool = knob(False, "with EXPERT_SKIP: each expert's MLP output starts at zero")
    skip_l2: float = knob(0.0, "ridge penalty on the skip path's weights", low=0.0)
    skip_init: str = knob("zero", "with EXPERT_SKIP: softmax_regression starts experts linear",
                          choices=SKIP_INITS)
    bootstrap_b: int = knob(200, "bootstrap replicas (trained as one batched model)", low=1)
    bootstrap_ci: float = knob(0.95, "level of the bootstrap and predictive intervals", low=0.0, high=1.0,
                               low_open=True, high_open=True)

    # converged, penalised training (training.py, docs/model.md)
    training: str = knob("converged", "converged: each replica fits its penalised objective fully",
                         choices=TRAININGS)
    shared_base: bool = knob(True, "experts share a linear base plus penalised deviations (softmax regression at 0)")
    expert_mlp: bool = knob(False, "with SHARED_BASE: each expert adds its MLP as another penalised deviation")
    base_l2: float = knob(1e-2, "ridge on the shared base's weights (the inner CV's prior)", low=0.0)
    delta_l2: float = knob(0.1, "ridge on every expert's deviation from the shared base", low=0.0)
    gate_l2: float = knob(0.0, "ridge on the gate's weights", low=0.0)
    penalty_cv: int = knob(5, "inner folds on the training rows choosing the ridge strengths (0: as set)", low=0)
    converge_tol: float = knob(1e-6, "a replica stops once its objective changes less than this (relative)",
                               low=0.0, low_open=True)

    def validate(self) -> MoEConfig:
        """Raise ConfigError naming the first invalid knob (type, choices, bounds from the field metadata, then the
        rules that join two knobs); return self when all are valid."""
        for f in dataclasses.fields(self):
            check_value(f, getattr(self, f.name))
        if self.top_k > self.num_experts:
            raise ConfigError(f"TOP_K={self.top_k!r} is invalid: must be an integer in 1..NUM_EXPERTS ({self.num_experts})")
        if self.skip_init != "zero" and not self.expert_skip:
            raise ConfigError(f"SKIP_INIT={self.skip_init!r} is invalid: 'softmax_regression' needs EXPERT_SKIP=True")
        if self.penalty_cv == 1:
            raise ConfigError("PENALTY_CV=1 is invalid: must be 0 (use BASE_L2 and DELTA_L2 as set) or at least 2")
        if self.shared_base and self.expert_skip:
            raise ConfigError("SHARED_BASE=True is invalid with EXPERT_SKIP=True: the skip path belongs to the MLP "
                              "experts (set SHARED_BASE=False); the shared base already is a linear path")
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


@dataclass
class RunKnobs:
    """The module's other knobs: the holdout word of the notebook and the grids of its full grid search."""

    holdout_word: str = knob("eerie", "five-letter word predicted with both intervals in the holdout section")
    holdout_date: str = knob("2023-03-01", "date (YYYY-MM-DD) of the holdout prediction")
    grid_num_experts: list = knob([2, 3, 4], "full grid search: NUM_EXPERTS values")
    grid_top_k: list = knob([1, 2], "full grid search: TOP_K values")
    grid_hidden_size: list = knob([64, 128], "full grid search: HIDDEN_SIZE values")
    grid_aux_coef: list = knob([5e-4, 1e-3, 2e-3], "full grid search: AUX_LOSS_WEIGHT values")
    grid_diversity_coef: list = knob([1e-4, 5e-4, 1e-3, 2e-3, 5e-3], "full grid: diversity coefs")


def knob_fields() -> dict[str, dataclasses.Field]:
    """{KNOB: field} of every knob of moe_booststrap.py: MoEConfig's fields that the module sets, then RunKnobs'."""
    return {f.name.upper(): f for cls in (MoEConfig, RunKnobs) for f in dataclasses.fields(cls)}


def parse_knob(name: str, value: Any) -> Any:
    """A knob's value as typed by a person or passed as text by papermill, in the knob's type (see parse_value)."""
    f = knob_fields().get(name.upper())
    return value if f is None else parse_value(value, field_type(f))
