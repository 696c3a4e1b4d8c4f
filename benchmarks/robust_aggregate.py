"""Benchmark: is a robust replica aggregate (median, trimmed mean) better than the bootstrap mean on held-out words?

The bootstrap ensemble predicts a word by the mean of its replicas. When a few replicas extrapolate wildly (a word
unlike the training words), a median or trimmed mean would ignore them. It is kept only if held-out RPS does not
get worse. Folds: protocol B (words before 2022-10-01 train, later words test) and protocol A (5-fold CV, one
repeat); each fold trains ``--replicas`` replicas with the default configuration on its training words, and every
aggregate is scored per held-out word (RPS; ties broken by nothing: the same replicas feed every aggregate). Also
reported: RPS on the held-out words the disagreement check flags (replica std above the 99th percentile of the
training words', any bucket). Writes benchmarks/results/robust_aggregate.json.

    .venv/bin/python benchmarks/robust_aggregate.py [--replicas 30] [--quick]
"""
from __future__ import annotations

import argparse

import numpy as np
from common import machine_info, publish, timed  # noqa: E402

AGGREGATES = ("mean", "median", "trimmed_10", "trimmed_20")


def aggregate(P_boot: np.ndarray, how: str) -> np.ndarray:
    """(n, 7) replica aggregate, renormalised to sum 1 (a median or trimmed mean of shares need not)."""
    from scipy.stats import trim_mean

    if how == "mean":
        out = P_boot.mean(axis=0)
    elif how == "median":
        out = np.median(P_boot, axis=0)
    else:
        out = trim_mean(P_boot, int(how.split("_")[1]) / 100, axis=0)
    return out / out.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="few epochs (a smoke run, not a figure)")
    args = parser.parse_args(argv)

    import torch

    from wordle_moe.bootstrap import fit_bootstrap, predict_bootstrap
    from wordle_moe.config import MoEConfig
    from wordle_moe.dataset import load_dataset
    from wordle_moe.disagreement import disagreeing_rows, reference_stats
    from wordle_moe.evaluation import protocol_splits
    from wordle_moe.metrics import rps

    torch.set_num_threads(1)
    cfg = MoEConfig(max_epochs=40, patience=10) if args.quick else MoEConfig()
    data = load_dataset()
    folds = [("B", *protocol_splits("B", len(data.X), data.dates)[0][1:])]
    folds += [("A", tr, te) for _, tr, te in protocol_splits("A", len(data.X), n_repeats=1, random_state=0)]
    per_word = {k: {a: [] for a in AGGREGATES} for k in ("A", "B")}
    flagged = {k: {a: [] for a in AGGREGATES} for k in ("A", "B")}
    seconds = 0.0
    for protocol, tr, te in folds:
        (model,), t = timed(lambda tr=tr: fit_bootstrap(data.X[tr], data.P[tr], config=cfg, B=args.replicas,
                                                       n_reported=data.n_reported[tr])[0])
        seconds += t
        P_te = predict_bootstrap([model], data.X[te])
        stats = reference_stats(predict_bootstrap([model], data.X[tr]), data.X[tr])
        mask = disagreeing_rows(P_te, stats["std_threshold"])
        for a in AGGREGATES:
            score = rps(data.P[te], aggregate(P_te, a))
            per_word[protocol][a].append(score)
            flagged[protocol][a].append(score[mask])
    result: dict = {"replicas": args.replicas, "quick": args.quick, "config": "MoEConfig() defaults"
                    + (" with max_epochs=40, patience=10" if args.quick else "")}
    for protocol in ("B", "A"):
        scores = {a: np.concatenate(per_word[protocol][a]) for a in AGGREGATES}
        flag = {a: np.concatenate(flagged[protocol][a]) for a in AGGREGATES}
        mean_rps = {a: float(scores[a].mean()) for a in AGGREGATES}
        result[f"protocol_{protocol}_n_words"] = int(len(scores["mean"]))
        result[f"protocol_{protocol}_rps"] = {a: round(v, 7) for a, v in mean_rps.items()}
        result[f"protocol_{protocol}_rps_change_vs_mean_pct"] = {
            a: round(100 * (mean_rps[a] / mean_rps["mean"] - 1), 3) for a in AGGREGATES if a != "mean"}
        result[f"protocol_{protocol}_share_of_words_better_than_mean"] = {
            a: round(float((scores[a] < scores["mean"]).mean()), 3) for a in AGGREGATES if a != "mean"}
        result[f"protocol_{protocol}_flagged_words"] = int(len(flag["mean"]))
        if len(flag["mean"]):
            result[f"protocol_{protocol}_flagged_rps"] = {a: round(float(flag[a].mean()), 7) for a in AGGREGATES}
    best = {a: np.mean([result[f"protocol_{p}_rps"][a] for p in ("A", "B")]) for a in AGGREGATES}
    winner = min((a for a in AGGREGATES if a != "mean"), key=best.get)
    not_worse = all(result[f"protocol_{p}_rps"][winner] <= result[f"protocol_{p}_rps"]["mean"] for p in ("A", "B"))
    result["best_robust_aggregate"] = winner
    result["decision"] = (f"{winner} is not worse than the mean under both protocols: a candidate default" if not_worse
                          else f"keep the mean: the best robust aggregate ({winner}) is worse under at least one "
                               "protocol")
    result["training_seconds"] = round(seconds, 1)
    result["machine"] = machine_info()
    return publish("robust_aggregate", result)


if __name__ == "__main__":
    main()
