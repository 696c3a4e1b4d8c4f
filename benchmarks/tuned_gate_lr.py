"""How fast the gate of the tuned top-2 configuration should learn, chosen without protocol B's test words.

The tuned configuration (``MOE_KNOBS`` in accuracy.py) trains at lr 1e-3, where the default slow gate
(GATE_LR_SCALE=0.05) barely moves. This scores GATE_LR_SCALE in {0.05, 0.3, 1} by 5-fold CV (seed 1) over the words
played before 2022-10-01 only, the protocol the rest of MOE_KNOBS was tuned by (bootstrap mean of 10 replicas).

Run: .venv/bin/python benchmarks/tuned_gate_lr.py   (writes benchmarks/results/tuned_gate_lr.json)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from accuracy import MOE_KNOBS
from common import machine_info, publish, timed
from sklearn.model_selection import KFold

from wordle_moe.dataset import load_dataset
from wordle_moe.estimator import MoEDistributionRegressor
from wordle_moe.metrics import distribution_metrics

CANDIDATES = (0.05, 0.3, 1.0)


def inner_cv_rps(X: np.ndarray, P: np.ndarray, gate_lr_scale: float, n_bootstrap: int = 10) -> list[float]:
    """Bootstrap-mean RPS of each of 5 folds for the tuned knobs at this gate learning-rate scale."""
    scores = []
    for train, test in KFold(5, shuffle=True, random_state=1).split(X):
        est = MoEDistributionRegressor(**{**MOE_KNOBS, "gate_lr_scale": gate_lr_scale}, n_bootstrap=n_bootstrap,
                                       random_state=0, calibration_cv=0).fit(X[train], P[train])
        scores.append(distribution_metrics(P[test], est.predict(X[test]))["rps"])
    return scores


def main() -> dict:
    import torch

    torch.set_num_threads(1)
    ds = load_dataset()
    pre = (ds.dates < pd.Timestamp("2022-10-01")).to_numpy()
    result: dict = {"n_words": int(pre.sum()), "folds": 5, "n_bootstrap": 10}
    for g in CANDIDATES:
        scores, seconds = timed(lambda g=g: inner_cv_rps(ds.X[pre], ds.P[pre], g))
        result[f"gate_lr_scale_{g}"] = {"rps_mean": round(float(np.mean(scores)), 6),
                                        "rps_se": round(float(np.std(scores) / np.sqrt(len(scores))), 6),
                                        "seconds": round(seconds, 1)}
    result["picked"] = min(CANDIDATES, key=lambda g: result[f"gate_lr_scale_{g}"]["rps_mean"])
    result.update(machine_info())
    return publish("tuned_gate_lr", result)


if __name__ == "__main__":
    main()
