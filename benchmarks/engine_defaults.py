"""Benchmark: are the engine's default knobs what tuning on training words alone would choose?

Nested cross-validation for the default structure (2 experts, top-1, hidden 64): in each outer fold an inner
K-fold over the outer TRAINING words scores every candidate knob set; the candidate with the lowest inner RPS
is refitted on the outer training words and scored on the outer test fold, which no choice ever saw. Prints,
per outer fold, the inner RPS of every candidate and the pick, and the outer RPS of the picked candidates;
writes benchmarks/results/engine_defaults.json.

    python benchmarks/engine_defaults.py [--outer 5] [--inner 5]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import KFold

ROOT = Path(__file__).resolve().parent.parent

from common import machine_info, publish  # noqa: E402

from wordle_moe.config import MoEConfig  # noqa: E402
from wordle_moe.metrics import rps  # noqa: E402
from wordle_moe.training import predict_proba, train_moe  # noqa: E402

PREVIOUS = dict(activation="tanh", dropout=0.3, gate_init="random", expert_init="random", gate_lr_scale=1.0,
                input_clip=5.0, expert_output_diversity_coef=0.1, expert_js_divergence_coef=0.05)
CANDIDATES = {
    "defaults": {},
    "previous engine (random gate, clip 5, diversity 0.1/0.05)": PREVIOUS,
    "defaults with diversity 0.1/0.05": dict(expert_output_diversity_coef=0.1, expert_js_divergence_coef=0.05),
    "defaults with random gate start": dict(gate_init="random", gate_lr_scale=1.0),
    "defaults with gelu, dropout 0.1": dict(activation="gelu", dropout=0.1),
    "defaults with input clip 3": dict(input_clip=3.0),
}


def fold_rps(X: np.ndarray, P: np.ndarray, tr: np.ndarray, te: np.ndarray, cfg: MoEConfig, seed: int) -> float:
    """Mean RPS on te of one model fitted on tr (20% of tr held out, seeded, for early stopping)."""
    inner = np.random.default_rng(seed).permutation(tr)
    va, fit = inner[: len(tr) // 5], inner[len(tr) // 5:]
    model, _ = train_moe(X[fit], P[fit], X[va], P[va], config=cfg.replace(seed=seed))
    return float(rps(P[te], predict_proba(model, X[te])).mean())


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outer", type=int, default=5)
    ap.add_argument("--inner", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from wordle_moe.dataset import load_dataset

    ds = load_dataset()
    X, P = ds.X, ds.P
    configs = {name: MoEConfig().replace(**knobs).validate() for name, knobs in CANDIDATES.items()}
    folds, picked_rps, default_rps = [], [], []
    for k, (tr, te) in enumerate(KFold(args.outer, shuffle=True, random_state=0).split(X)):
        inner_splits = list(KFold(args.inner, shuffle=True, random_state=100 + k).split(tr))
        inner = {name: float(np.mean([fold_rps(X, P, tr[a], tr[b], cfg, j) for j, (a, b) in enumerate(inner_splits)]))
                 for name, cfg in configs.items()}
        pick = min(inner, key=inner.get)
        picked_rps.append(fold_rps(X, P, tr, te, configs[pick], k))
        default_rps.append(fold_rps(X, P, tr, te, configs["defaults"], k))
        folds.append({"outer_fold": k, "inner_rps": {n: round(v, 5) for n, v in inner.items()}, "picked": pick})
        print(folds[-1], flush=True)

    def mean_se(v: list[float]) -> list[float]:
        return [round(float(np.mean(v)), 5), round(float(np.std(v, ddof=1) / np.sqrt(len(v))), 5)]

    result = {
        "structure": "NUM_EXPERTS=2, TOP_K=1, HIDDEN_SIZE=64 (fixed); candidates differ in engine knobs only",
        "candidates": {n: c for n, c in CANDIDATES.items()},
        "folds": folds,
        "times_picked": {n: sum(f["picked"] == n for f in folds) for n in CANDIDATES},
        "outer_rps_of_picked_mean_se": mean_se(picked_rps),
        "outer_rps_of_defaults_mean_se": mean_se(default_rps),
        "note": "inner folds use the outer training words only; the outer test fold scores the choice",
    }
    return publish("engine_defaults", {**result, **machine_info()})


if __name__ == "__main__":
    main()
