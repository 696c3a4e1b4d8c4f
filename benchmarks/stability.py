"""Benchmark: do the expert groupings reproduce, and are the bootstrap replicas sane?

For the default configuration (2 experts, top-1) and the 3-expert top-2 one it prints:
- ARI across resamples: models trained on B different bootstrap resamples (one batched fit), each routing
  all observed words; mean pairwise adjusted Rand index of their primary-expert partitions, beside the
  size-matched random baseline, and the group sizes;
- ARI across seeds: models trained with different seeds on the same words (one fixed 80/20 split);
- absurd replica predictions: share of replica predictions with more than 0.65 in one bucket, over
  every observed word and the holdout word (EERIE); the observed maximum share is 0.49;
- RPS: K-fold cross-validated RPS of the single model (mean ± standard error over folds) and of the
  bootstrap mean (B_cv replicas per fold, trained on the fold's training words only).
Writes benchmarks/results/stability.json.

    python benchmarks/stability.py [--resamples 50] [--seeds 5] [--folds 5] [--b-cv 20] [--structures]
                                   [--set KNOB=VALUE ...]

With --structures it also cross-validates a single expert (no routing) and every NUM_EXPERTS in {2,3,4} x TOP_K
in {1,2}, and reports each one's RPS relative to the best 2-expert configuration.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from common import machine_info, publish, timed  # noqa: E402

from wordle_moe.agreement import mean_pairwise_ari, primary_experts, random_baseline_ari, replica_routing  # noqa: E402
from wordle_moe.bootstrap import fit_bootstrap, predict_bootstrap  # noqa: E402
from wordle_moe.config import MoEConfig  # noqa: E402
from wordle_moe.metrics import rps  # noqa: E402
from wordle_moe.training import predict_proba, train_moe  # noqa: E402

ABSURD_SHARE = 0.65          # no observed word has more than 0.49 of its players in one bucket
CONFIGURATIONS = {"default (E=2, top-1)": {}, "E=3, top-2": {"num_experts": 3, "top_k": 2}}


def group_sizes(labels: np.ndarray, E: int) -> np.ndarray:
    """(R, E) number of words whose primary expert is each expert."""
    return np.stack([np.bincount(row, minlength=E) for row in labels])


def resample_stability(X: np.ndarray, P: np.ndarray, X_extra: np.ndarray, cfg: MoEConfig, B: int,
                       seed: int) -> dict[str, Any]:
    """B replicas on B bootstrap resamples (trained as one batched model), each routing every observed word."""
    (models, info), seconds = timed(lambda: fit_bootstrap(X, P, config=cfg, B=B, seed=seed))
    labels = primary_experts(replica_routing(models[0], X)["gates"])
    sizes = group_sizes(labels, cfg.num_experts)
    preds = predict_bootstrap(models, np.vstack([X, X_extra]))        # (B, n + extra, 7)
    return {
        "ari": mean_pairwise_ari(labels), "random_baseline_ari": random_baseline_ari(labels, repeats=5),
        "min_group_share": float(sizes.min(axis=1).mean() / len(X)),
        "min_group_share_worst_replica": float(sizes.min() / len(X)),
        "group_sizes_first_replicas": sizes[:4].tolist(),
        "absurd_share_observed": float((preds[:, :len(X)].max(-1) > ABSURD_SHARE).mean()),
        "absurd_share_holdout": float((preds[:, len(X):].max(-1) > ABSURD_SHARE).mean()),
        "max_bucket_share": float(preds.max()),
        "holdout_bootstrap_mean": np.round(preds[:, len(X):].mean(0)[0], 4).tolist(),
        "seconds": round(seconds, 1),
    }


def seed_stability(X: np.ndarray, P: np.ndarray, cfg: MoEConfig, seeds: int) -> dict[str, Any]:
    """Models with seeds 0..seeds−1 on the same words (a fixed 80/20 train/validation split)."""
    perm = np.random.default_rng(12345).permutation(len(X))
    va, tr = perm[: len(X) // 5], perm[len(X) // 5:]
    labels = []
    for s in range(seeds):
        model, _ = train_moe(X[tr], P[tr], X[va], P[va], config=cfg.replace(seed=s))
        labels.append(primary_experts(replica_routing(model, X)["gates"])[0])
    labels = np.stack(labels)
    return {"ari": mean_pairwise_ari(labels), "random_baseline_ari": random_baseline_ari(labels, repeats=5),
            "group_sizes": group_sizes(labels, cfg.num_experts).tolist()}


def cv_rps(X: np.ndarray, P: np.ndarray, cfg: MoEConfig, folds: int, b_cv: int, seed: int = 0) -> dict[str, Any]:
    """K-fold RPS (mean, standard error over folds) of the single model and of the bootstrap mean."""
    from sklearn.model_selection import KFold

    single, boot = [], []
    for k, (tr, te) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(X)):
        inner = np.random.default_rng(k).permutation(tr)
        va, fit = inner[: len(tr) // 5], inner[len(tr) // 5:]
        model, _ = train_moe(X[fit], P[fit], X[va], P[va], config=cfg.replace(seed=k))
        single.append(rps(P[te], predict_proba(model, X[te])).mean())
        if b_cv > 0:
            models, _ = fit_bootstrap(X[tr], P[tr], config=cfg, B=b_cv, seed=k)
            boot.append(rps(P[te], predict_bootstrap(models, X[te]).mean(0)).mean())

    def mean_se(v: list[float]) -> list[float]:
        return [round(float(np.mean(v)), 5), round(float(np.std(v, ddof=1) / np.sqrt(len(v))), 5)]

    out = {"single_rps_mean_se": mean_se(single)}
    if boot:
        out["bootstrap_mean_rps_mean_se"] = mean_se(boot)
    return out


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, P, X_holdout) of the observed words and EERIE on 2023-03-01."""
    from wordle_moe.dataset import load_dataset
    from wordle_moe.features import build_features

    ds = load_dataset()
    x_eerie = build_features(["eerie"], ["2023-03-01"])[ds.feature_names].to_numpy(float)
    return ds.X, ds.P, x_eerie


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """KNOB=VALUE strings -> lower-case MoEConfig overrides (values parsed as Python literals when possible)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key.lower()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.lower()] = value
    return out


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resamples", type=int, default=20, help="bootstrap resamples (replicas) compared")
    ap.add_argument("--seeds", type=int, default=5, help="seeds compared on the same words")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--b-cv", type=int, default=20, help="bootstrap replicas per fold for the bootstrap-mean RPS")
    ap.add_argument("--only", default=None, help="run one configuration (a key of CONFIGURATIONS)")
    ap.add_argument("--set", nargs="*", default=[], help="KNOB=VALUE overrides applied to every configuration")
    ap.add_argument("--name", default="stability", help="results file name (benchmarks/results/<name>.json)")
    ap.add_argument("--structures", action="store_true",
                    help="also the K-fold RPS of a single expert and of every NUM_EXPERTS in {2,3,4} x TOP_K in {1,2}")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X, P, x_holdout = load_data()
    overrides = parse_overrides(args.set)
    result: dict[str, Any] = {"data": f"{X.shape[0]} observed words x {X.shape[1]} features; holdout EERIE 2023-03-01",
                              "absurd_threshold": ABSURD_SHARE, "overrides": overrides,
                              "resamples": args.resamples, "seeds": args.seeds, "folds": args.folds,
                              "bootstrap_replicas_per_fold": args.b_cv}
    for name, knobs in CONFIGURATIONS.items():
        if args.only and name != args.only:
            continue
        cfg = MoEConfig().replace(**{**overrides, **knobs}).validate()
        result[name] = {
            "resamples": resample_stability(X, P, x_holdout, cfg, args.resamples, seed=0),
            "seeds": seed_stability(X, P, cfg, args.seeds),
            "cv": cv_rps(X, P, cfg, args.folds, args.b_cv),
        }
    if args.structures:
        rows = {}
        for E, k in [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]:   # E=1: the single-expert reference
            cfg = MoEConfig().replace(**{**overrides, "num_experts": E, "top_k": k}).validate()
            rows[f"E={E}, top-{k}"] = cv_rps(X, P, cfg, args.folds, args.b_cv)
            print(f"E={E}, top-{k}", rows[f"E={E}, top-{k}"], flush=True)
        best2 = min(v["bootstrap_mean_rps_mean_se" if args.b_cv else "single_rps_mean_se"][0]
                    for name, v in rows.items() if name.startswith("E=2"))
        key = "bootstrap_mean_rps_mean_se" if args.b_cv else "single_rps_mean_se"
        for v in rows.values():
            v["rps_vs_best_2_expert"] = round(v[key][0] / best2 - 1, 3)
        result["structures_cv"] = rows
    return publish(args.name, {**result, **machine_info()})


if __name__ == "__main__":
    main()
