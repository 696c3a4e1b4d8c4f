"""Parallel-coordinates view of the experts: at each bucket, how the experts rank by mean predicted share."""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.stats import rankdata

from analysis.style import BUCKET_TICKS, expert_colors, new_figure


def mean_expert_outputs(expert_outputs: np.ndarray, gates: np.ndarray | None = None) -> np.ndarray:
    """(E,7) mean output of each expert: plain mean over words of (n,E,7), or a gate-weighted mean when
    ``gates`` (n,E) are given (an expert with zero total weight falls back to its plain mean)."""
    out = np.asarray(expert_outputs, dtype=float)
    if out.ndim == 2:
        return out
    if out.ndim != 3:
        raise ValueError(f"expert_outputs must be (n, E, 7) or (E, 7); got {out.shape}")
    plain = out.mean(axis=0)
    if gates is None:
        return plain
    g = np.asarray(gates, dtype=float)
    tot = g.sum(axis=0)
    weighted = np.einsum("ne,nek->ek", g, out) / np.where(tot > 0, tot, 1.0)[:, None]
    return np.where((tot > 0)[:, None], weighted, plain)


def expert_rank_summary(mean_outputs: np.ndarray) -> dict[str, np.ndarray]:
    """Ranks of the experts within each bucket (1 = largest mean share; ties share the average rank) and
    the summaries of §7.7: peak_positions (bucket index of each expert's largest share), avg_rank (mean rank
    over the 7 buckets), rank_stability (std of the rank over the buckets: 0 = same rank everywhere),
    rank_distances (E×E Euclidean distance between rank vectors; max sqrt(7·(E-1)²))."""
    m = np.asarray(mean_outputs, dtype=float)
    ranks = rankdata(-m, axis=0, method="average")  # rank experts within each bucket (column)
    diff = ranks[:, None, :] - ranks[None, :, :]
    return {
        "ranks": ranks,
        "mean_outputs": m,
        "peak_positions": m.argmax(axis=1),
        "avg_rank": ranks.mean(axis=1),
        "rank_stability": ranks.std(axis=1, ddof=0),
        "rank_distances": np.sqrt((diff ** 2).sum(axis=2)),
    }


def plot_expert_parallel_coordinates(expert_outputs: np.ndarray | Mapping[str, np.ndarray],
                                     gates: np.ndarray | None = None, title: str | None = None):
    """Top: each expert's rank at each of the 7 buckets (parallel coordinates; crossing lines = experts swap
    order), with its mean predicted share (%) beneath; bottom: the rank-distance matrix and the rank
    stability / average rank. Accepts (n,E,7), (E,7) or an intermediates dict. Returns (fig, summary dict)."""
    import seaborn as sns

    if isinstance(expert_outputs, Mapping):
        gates = expert_outputs.get("gates") if gates is None else gates
        expert_outputs = expert_outputs["expert_outputs"]
    s = expert_rank_summary(mean_expert_outputs(expert_outputs, gates))
    E = s["ranks"].shape[0]
    colors = expert_colors(E)
    x = np.arange(s["ranks"].shape[1])
    fig, axes = new_figure(2, 2, figsize=(13, 9.5), gridspec_kw={"height_ratios": [1, 1]})
    ax_rank, ax_share = axes[0]
    ax_dist, ax_stab = axes[1]
    jitter = (np.arange(E) - (E - 1) / 2) * 0.04  # separate overlapping lines of tied experts
    for e in range(E):
        ax_rank.plot(x, s["ranks"][e] + jitter[e], marker="o", lw=2.2, color=colors[e],
                     label=f"expert {e} (peak at {BUCKET_TICKS[s['peak_positions'][e]]})")
        ax_share.plot(x, 100 * s["mean_outputs"][e], marker="o", lw=2, color=colors[e], label=f"expert {e}")
    ax_rank.set_ylim(E + 0.5, 0.5)
    ax_rank.set_yticks(np.arange(1, E + 1))
    ax_rank.set_xticks(x, BUCKET_TICKS)
    ax_rank.set_xlabel("tries needed (bucket)")
    ax_rank.set_ylabel("rank among experts (1 = largest share)")
    ax_rank.set_title("Expert ranks per bucket (parallel coordinates)")
    ax_rank.legend(fontsize=9)
    ax_share.set_xticks(x, BUCKET_TICKS)
    ax_share.set_xlabel("tries needed (bucket)")
    ax_share.set_ylabel("mean predicted share of players (%)")
    ax_share.set_title("Each expert's mean output")
    ax_share.legend(fontsize=9)
    labels = [f"expert {e}" for e in range(E)]
    sns.heatmap(s["rank_distances"], annot=True, fmt=".2f", cmap="viridis", square=True, ax=ax_dist,
                xticklabels=labels, yticklabels=labels,
                cbar_kws={"label": "Euclidean distance of rank vectors (rank units)"},
                vmin=0, vmax=max(np.sqrt(7 * (E - 1) ** 2), 1e-9))
    ax_dist.set_title("Rank distance between experts")
    width = 0.38
    xe = np.arange(E)
    ax_stab.bar(xe - width / 2, s["rank_stability"], width, color=colors, edgecolor="k",
                label="rank std over buckets (0 = same rank everywhere)")
    ax_stab.bar(xe + width / 2, s["avg_rank"], width, color=colors, alpha=0.45, hatch="//", edgecolor="k",
                label="average rank over buckets")
    ax_stab.set_xticks(xe, labels)
    ax_stab.set_ylabel("rank units")
    ax_stab.set_ylim(0, 1.35 * max(float(s["avg_rank"].max()), 1.0))
    ax_stab.set_title("Rank stability and average rank")
    ax_stab.legend(fontsize=9)
    fig.suptitle(title or "How the experts' predicted distributions differ", fontsize=14, fontweight="bold")
    fig.tight_layout()
    summary = {k: s[k] for k in ("peak_positions", "avg_rank", "rank_stability", "rank_distances", "ranks",
                                 "mean_outputs")}
    return fig, summary
