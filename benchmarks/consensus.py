"""Benchmark: cost of the grouping-stability analysis on the notebook's scale (B replicas × 359 words).

Times, on routing arrays shaped like a bootstrap's (no model training): the whole
``grouping_stability`` (pairwise ARI of all replica pairs, Hungarian label alignment, consensus,
random baseline), the word × word co-assignment matrix and the stability figure. Writes
benchmarks/results/consensus.json.

    python benchmarks/consensus.py [--replicas 200] [--words 359] [--experts 2] [--repeats 5]
"""
from __future__ import annotations

import argparse

import numpy as np
from common import machine_info, publish, timed  # noqa: E402


def synthetic_routing(R: int, n: int, E: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Top-1 gates (each replica keeps 80% of one shared grouping) and Dirichlet expert outputs."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, E, n)
    labels = np.where(rng.random((R, n)) < 0.8, truth, rng.integers(0, E, (R, n)))
    gates = (labels[..., None] == np.arange(E)).astype(float)
    return {"gates": gates, "expert_outputs": rng.dirichlet(np.ones(7), (R, n, E))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--words", type=int, default=359)
    parser.add_argument("--experts", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.stability import plot_assignment_stability
    from wordle_moe.agreement import co_assignment, grouping_stability

    routing = synthetic_routing(args.replicas, args.words, args.experts)
    best = {"grouping_stability": np.inf, "co_assignment": np.inf, "figure": np.inf}
    for _ in range(args.repeats):
        res, t = timed(lambda: grouping_stability(routing))
        best["grouping_stability"] = min(best["grouping_stability"], t)
        _, t = timed(lambda res=res: co_assignment(res.labels))
        best["co_assignment"] = min(best["co_assignment"], t)
        fig, t = timed(lambda res=res: plot_assignment_stability(res))
        plt.close(fig)
        best["figure"] = min(best["figure"], t)
    return publish("consensus", {
        "replicas": args.replicas, "words": args.words, "experts": args.experts, "repeats": args.repeats,
        **{f"{k}_seconds_best": round(v, 4) for k, v in best.items()},
        "mean_pairwise_ari": round(res.mean_ari, 4), "baseline_ari": round(res.baseline_ari, 4),
        "machine": machine_info(),
    })


if __name__ == "__main__":
    main()
