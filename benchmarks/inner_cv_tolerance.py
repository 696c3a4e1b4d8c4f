"""Does the inner CV of the ridge strengths choose the same values when its fits stop earlier (or use fewer folds)?

The inner-CV fits only rank the candidates, so they may stop at a looser tolerance than the fits that predict. On the
outer training sets of protocols A (5-fold × 3 repeats) and B, this compares the choice at PENALTY_TOL_FACTOR = 1
(the fits stop at CONVERGE_TOL, as before) with the shipped factor (10) and with 3 inner folds, and the CPU seconds.

    .venv/bin/python benchmarks/inner_cv_tolerance.py   ->  benchmarks/results/inner_cv_tolerance.json
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from wordle_moe import evaluation, training
from wordle_moe.config import MoEConfig
from wordle_moe.dataset import load_dataset

RESULTS = Path(__file__).parent / "results" / "inner_cv_tolerance.json"
VARIANTS = {"5 folds, factor 1 (before)": (5, 1.0), "5 folds, factor 10 (shipped)": (5, 10.0),
            "3 folds, factor 10": (3, 10.0)}


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset()
    splits = evaluation.protocol_splits("A", len(data.X))
    splits += [(len(splits), *evaluation.protocol_splits("B", len(data.X), data.dates)[0][1:])]
    choices = {k: [] for k in VARIANTS}
    cpu = dict.fromkeys(VARIANTS, 0.0)
    for fold, train, _ in splits:
        for name, (folds, factor) in VARIANTS.items():
            training.PENALTY_TOL_FACTOR = factor
            start = time.process_time()
            chosen, _ = training.select_penalties(data.X[train], data.P[train], MoEConfig(penalty_cv=folds),
                                                  n_reported=None)
            cpu[name] += time.process_time() - start
            choices[name].append([chosen.base_l2, chosen.delta_l2, chosen.input_clip])
        print(fold, {k: v[-1] for k, v in choices.items()}, flush=True)
    before = choices[next(iter(VARIANTS))]
    summary = {name: {"same_choice_as_before": sum(a == b for a, b in zip(c, before)), "outer_training_sets": len(c),
                      "cpu_seconds": round(cpu[name], 1)} for name, c in choices.items()}
    for name, row in summary.items():
        print(f"{name:30s} same choice {row['same_choice_as_before']}/{row['outer_training_sets']}  "
              f"CPU {row['cpu_seconds']} s")
    RESULTS.write_text(json.dumps({"command": "python benchmarks/inner_cv_tolerance.py", "summary": summary,
                                   "choices": choices}, indent=1))


if __name__ == "__main__":
    main()
