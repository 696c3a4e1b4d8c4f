"""How many experts the data supports, and whether the grouping is learned or imposed by the gate's start.

Run:  .venv/bin/python benchmarks/expert_count.py [--cv 5] [--B 10]
On the MCM words, with the shipped defaults: held-out RPS (bootstrap mean, penalties chosen inside each fold's
training words) for E = 1..4 experts, and for the default beside its gate kept fixed at its start and two freely
learning controls (same start at the full rate; random start). Prints both tables and writes
benchmarks/results/expert_count.json (the numbers docs/model.md quotes).
"""
from __future__ import annotations

import argparse
import time

from common import machine_info, publish


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=int, default=5, help="outer folds (default 5)")
    parser.add_argument("--B", type=int, default=10, help="bootstrap replicas per fold (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import pandas as pd
    import torch

    from wordle_moe import agreement as stability
    from wordle_moe.config import MoEConfig
    from wordle_moe.dataset import load_dataset

    torch.set_num_threads(1)
    ds = load_dataset()
    start = time.perf_counter()
    kw = {"cv": args.cv, "B": args.B, "seed": args.seed}
    counts = stability.expert_count_comparison(ds.X, ds.P, MoEConfig(), **kw)
    origin = stability.gate_origin_comparison(ds.X, ds.P, MoEConfig(), **kw)
    cols = ["procedure", "rps", "rps_se", "rps_diff_vs_first", "rps_diff_se", "beats_first", "ari_between_replicas",
            "ari_with_start", "min_group_share", "deviation_norm", "same_word_tries_gap"]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(counts[cols].to_string(index=False))
        print(origin[cols].to_string(index=False))
    return publish("expert_count", {
        "command": f"python benchmarks/expert_count.py --cv {args.cv} --B {args.B}", "cv": args.cv, "B": args.B,
        "expert_count": counts.to_dict(orient="records"), "gate_origin": origin.to_dict(orient="records"),
        "seconds": time.perf_counter() - start, "machine": machine_info()})


if __name__ == "__main__":
    main()
