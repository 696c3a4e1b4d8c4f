"""Wordle MoE workbench: the configuration knobs and the public API.

Three ways to set the knobs: set one at run time (``moe_booststrap.TOP_K = 2``); edit this file and call
``moe_booststrap.reload()`` (it re-reads the file: knobs set at run time are reset); or apply a run's
configuration, ``moe_booststrap.apply_run("moe_bootstrap_output/run_manifest.json")``. Every function here reads
the knobs when it is called, and ``MoEDistributionRegressor()`` when it is built (arguments given to it win).
The engine functions re-exported as they are (``load_model``, ``save_model``, ``evaluate``, ``intermediates``,
``predict_proba``) take no knob. Each knob's type, rule and meaning is declared once, in ``wordle_moe/config.py``.
The engine lives in the ``wordle_moe`` package; the expert-grouping analysis in ``analysis``.

Command line (also installed as ``wordle-moe``; the code is in ``wordle_moe/cli.py``)::

    python moe_booststrap.py predict eerie --date 2023-03-01
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any


def main(argv: list[str] | None = None, prog: str = "wordle-moe") -> int:
    """The command line (``wordle-moe``, ``python moe_booststrap.py``); ``--retrain`` trains with this module's knobs."""
    import importlib

    from wordle_moe.cli import main as cli_main

    # read when --retrain asks, from the module (imported now if this file runs as a script)
    return cli_main(argv, prog=prog, config=lambda: importlib.import_module("moe_booststrap").config())


if __name__ == "__main__":  # the command line needs none of the imports below: answer from the saved model fast
    sys.exit(main(prog="moe_booststrap.py"))

import numpy as np
import pandas as pd

from wordle_moe.config import ConfigError, MoEConfig
from wordle_moe.data import DataError, cleaning_log, load_wordle_data, target_matrix
from wordle_moe.dataset import WordleDataset, load_dataset
from wordle_moe.features import KEY_FEATURES, build_features, feature_columns, load_feature_table
from wordle_moe.metrics import distribution_metrics
from wordle_moe.paths import PRED_COLUMNS, TRY_COLUMNS

# --- Configuration knobs ------------------------------------------------------------------------
NUM_EXPERTS = 2
TOP_K = 1
HIDDEN_SIZE = 64
AUX_LOSS_WEIGHT = 1e-3
EXPERT_DIVERSITY_COEF = 0.0          # 0: experts differ only where the data supports it (converged training)
EXPERT_OUTPUT_DIVERSITY_COEF = 0.0   # 0: no push apart beyond the data's (0.1 cost ~15% cross-validated RPS)
EXPERT_JS_DIVERGENCE_COEF = 0.0
ROUTER = "topk"              # topk | noisy_topk | expert_choice | reputation | aux_free_bias
GATE = "linear"              # linear | mlp (MLP with LayerNorm)
ACTIVATION = "tanh"          # gelu | relu | swish | tanh (tanh + DROPOUT 0.3: best inner-CV RPS, see README)
DROPOUT = 0.3
N_WEIGHTING = "none"         # weight words by reported results: none | sqrt | log | linear
LR = 1e-2
WD = 1e-3
MAX_EPOCHS = 600             # full-batch: one epoch is one optimizer step
PATIENCE = 60
ROUTER_ONLY_EPOCHS = 0       # > 0 adds a router-only phase with the experts frozen
EXPERT_SKIP = False          # True: each expert adds a linear (softmax-regression) path to its MLP
SKIP_L2 = 0.0                # ridge penalty on the skip path's weights
SKIP_ZERO_MLP = False        # start each expert's MLP output at zero, so experts start linear
SKIP_INIT = "zero"           # zero | softmax_regression: with EXPERT_SKIP, every expert starts as the linear model
GATE_INIT = "difficulty"     # difficulty: the gate starts as a split of a ridge fit of expected tries | random
GATE_INIT_SCALE = 2.0        # logit slope of that split per standard deviation of the difficulty score
EXPERT_INIT = "group_mean"   # group_mean: experts start at their group's mean distribution | dense | random
GATE_LR_SCALE = 0.05         # the gate learns at LR·GATE_LR_SCALE: the grouping stays near the data's split
EXPERT_ORDER = "difficulty"  # after training, expert 0 = the group with the fewest expected tries | none
DIVERSITY_SCOPE = "routed"   # routed: diversity terms use each expert's mean over its own words | all
INPUT_CLIP = 5.0             # standardised inputs clipped to ±INPUT_CLIP: bounds extrapolation to unseen words
ROUTING_CE_COEF = 0.0        # > 0: extra gate gradient towards the expert with the lower cross-entropy
BIAS_UPDATE_RATE = 1e-3      # aux_free_bias router: per-step bias update
SEED = 0
BOOTSTRAP_B = 200
BOOTSTRAP_CI = 0.95
HOLDOUT_WORD = "eerie"
HOLDOUT_DATE = "2023-03-01"
# converged, penalised training (docs/model.md)
TRAINING = "converged"       # converged: each replica fits its penalised objective to convergence | early_stopping
SHARED_BASE = True           # experts = one shared linear base + penalised deviations (at 0: softmax regression)
EXPERT_MLP = False           # with SHARED_BASE: each expert adds its MLP, penalised like the deviations
BASE_L2 = 1e-2               # ridge on the shared base (PENALTY_CV >= 2: the inner CV leaves it only if clearly worse)
DELTA_L2 = 0.1               # ridge on each expert's deviation from the base (inner CV when PENALTY_CV >= 2)
GATE_L2 = 0.0                # ridge on the gate's weights
PENALTY_CV = 5               # inner folds on the training rows choosing BASE_L2, DELTA_L2, INPUT_CLIP; 0: as set
CONVERGE_TOL = 1e-6          # a replica stops once its objective changes by < tol (relative) over 20 steps

GRID_NUM_EXPERTS = [2, 3, 4]
GRID_TOP_K = [1, 2]
GRID_HIDDEN_SIZE = [64, 128]
GRID_AUX_COEF = [5e-4, 1e-3, 2e-3]
GRID_DIVERSITY_COEF = [1e-4, 5e-4, 1e-3, 2e-3, 5e-3]

# The engine's heavier functions are re-exported lazily (module __getattr__ below): the command line, which runs
# this file, starts without scikit-learn. Re-exported as they are (they take explicit arguments, no knob):
_ENGINE = {"load_model": "wordle_moe.persistence", "save_model": "wordle_moe.persistence",
           "evaluate": "wordle_moe.training", "intermediates": "wordle_moe.training",
           "predict_proba": "wordle_moe.training"}
if TYPE_CHECKING:  # the lazy re-exports, named for readers and type checkers
    from wordle_moe.estimator import MoEDistributionRegressor
    from wordle_moe.persistence import load_model, save_model
    from wordle_moe.training import evaluate, intermediates, predict_proba

__all__ = [
    "apply_run", "ConfigError", "DataError", "KEY_FEATURES", "MoEConfig", "MoEDistributionRegressor", "PRED_COLUMNS",
    "TRY_COLUMNS", "WordleDataset", "bootstrap_evaluate", "bootstrap_predict", "bootstrap_summary",
    "build_features", "cleaning_log", "config", "distribution_metrics", "evaluate", "feature_columns",
    "intermediates", "load_dataset", "load_feature_table", "load_model", "load_wordle_data", "main", "predict_proba",
    "predict_word", "reload", "save_model", "target_matrix", "train_moe",
]


def _knob_names() -> tuple[str, ...]:
    """The upper-case names this file assigns at top level, in order: the knobs (imported constants are not)."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    return tuple(t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                 if isinstance(t, ast.Name) and t.id.isupper() and not t.id.startswith("_"))


def knobs() -> dict[str, Any]:
    """The current values of every knob of this module, in file order (the notebook's parameters are these)."""
    return {name: globals()[name] for name in _knob_names()}


def config(**overrides: Any) -> MoEConfig:
    """The validated MoEConfig built from the knobs, with lower-case ``overrides`` applied."""
    return MoEConfig.from_mapping(knobs()).replace(**overrides).validate()


def reload():
    """Re-execute this file so edited knobs take effect everywhere; returns the module. It re-reads the file: knobs
    set at run time (or by ``apply_run``) go back to the values written in it."""
    import importlib

    return importlib.reload(sys.modules[__name__])


def apply_run(manifest: str | os.PathLike = "moe_bootstrap_output/run_manifest.json") -> dict[str, Any]:
    """Set the knobs to the configuration a run used (its ``run_manifest.json``, or the folder holding it); returns
    {knob: value} of the knobs that changed. Every value is checked first (ConfigError naming each unknown or
    invalid entry, nothing set); ``reload()`` returns to the values in this file."""
    import json
    from pathlib import Path

    from wordle_moe.parameters import run_knobs

    path = Path(manifest)
    path = path / "run_manifest.json" if path.is_dir() else path
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such run manifest (`make run` writes moe_bootstrap_output/run_manifest.json)"
                          ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable run manifest ({exc})") from None
    values = run_knobs(record, sys.modules[__name__], where=str(path))
    MoEConfig.from_mapping({**knobs(), **values}).validate()  # the combination too (TOP_K <= NUM_EXPERTS, ...)
    changed = {k: v for k, v in values.items() if globals()[k] != v}
    globals().update(values)
    return changed


def _config_and_rest(kwargs: dict[str, Any]) -> tuple[MoEConfig, dict[str, Any]]:
    """Split keyword arguments into the validated config (knob overrides) and the remaining arguments."""
    overrides = {k: v for k, v in kwargs.items() if k in MoEConfig.__dataclass_fields__}
    return config(**overrides), {k: v for k, v in kwargs.items() if k not in overrides}


def train_moe(X_train, P_train, X_val, P_val, **kwargs: Any):
    """Train one MoE with the current knobs (lower-case keyword arguments override them)."""
    from wordle_moe.training import train_moe as _train_moe

    cfg, rest = _config_and_rest(kwargs)
    return _train_moe(X_train, P_train, X_val, P_val, config=cfg, **rest)


def bootstrap_predict(X_train, P_train, X_pred, B: int | None = None, **kwargs: Any):
    """Train BOOTSTRAP_B (or ``B``) replicas as one batched model; returns (P_boot (B, n, 7), info)."""
    from wordle_moe.bootstrap import bootstrap_predict as _bootstrap_predict

    cfg, rest = _config_and_rest(kwargs)
    return _bootstrap_predict(X_train, P_train, X_pred, config=cfg, B=B or cfg.bootstrap_b, seed=cfg.seed, **rest)


def bootstrap_summary(P_boot: np.ndarray, ci_level: float | None = None) -> dict[str, np.ndarray]:
    """Mean, std and percentile interval (at BOOTSTRAP_CI unless given) of bootstrap predictions."""
    from wordle_moe.intervals import bootstrap_summary as _bootstrap_summary

    return _bootstrap_summary(P_boot, BOOTSTRAP_CI if ci_level is None else ci_level)


def bootstrap_evaluate(P_boot: np.ndarray, P_true: np.ndarray, ci_level: float | None = None) -> dict[str, Any]:
    """Metrics of the bootstrap mean, interval width and coverage (at BOOTSTRAP_CI unless given)."""
    from wordle_moe.bootstrap import bootstrap_evaluate as _bootstrap_evaluate

    return _bootstrap_evaluate(P_boot, P_true, BOOTSTRAP_CI if ci_level is None else ci_level)


def _knob_estimator() -> type:
    """MoEDistributionRegressor whose parameters left unset take the knobs in force when it is BUILT (not
    MoEConfig's defaults): after ``TOP_K = 2``, ``MoEDistributionRegressor()`` is top-2. Cloning keeps the values."""
    from wordle_moe.estimator import ESTIMATOR_ONLY
    from wordle_moe.estimator import MoEDistributionRegressor as Engine

    def __init__(self, **params: Any) -> None:
        knob_params = Engine.from_config(config()).get_params(deep=False)
        Engine.__init__(self, **{**knob_params, **ESTIMATOR_ONLY, **params})

    __init__.__signature__ = Engine.__init__.__signature__  # the parameters scikit-learn's get_params reads
    cls = type("MoEDistributionRegressor", (Engine,), {"__init__": __init__, "__module__": __name__,
                                                       "__doc__": _knob_estimator.__doc__})
    return cls


def __getattr__(name: str) -> Any:
    """The engine's re-exports, imported on first use (PEP 562) and kept."""
    import importlib

    if name == "MoEDistributionRegressor":
        value = _knob_estimator()
    elif name in _ENGINE:
        value = getattr(importlib.import_module(_ENGINE[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def predict_word(word: str, date: str | None = None, *, retrain: bool = False, B: int | None = None,
                 population: str | None = None, model_dir: str | None = None) -> pd.DataFrame:
    """Prediction for any five-letter word: one row per bucket (1..6, X) with mean, std, the predictive interval
    (pred_low, pred_high: where the observed share is expected to fall) and the bootstrap interval of the mean
    (mean_low, mean_high), as shares 0..1. Uses the saved ensemble of ``make run`` (``retrain=True``: trains
    BOOTSTRAP_B, or ``B``, replicas now with the current knobs). Notes (date used, warnings) go to stderr.
    """
    from wordle_moe import cli

    words = cli.check_words([word])
    if retrain:
        saved, notes = cli.retrain_ensemble(B, "all", config())
    else:
        saved, _, notes = cli.load_ensemble(model_dir)
    frame, more = cli.predict_frame(saved, words, cli.parse_dates([date], ["date"]), population=population)
    for note in notes + more:
        print(note, file=sys.stderr)
    return frame
