"""Parallel-coordinates view of the experts: at each bucket, how the experts rank by their routed mean output.

An expert's "mean output" is its gate-weighted mean over the words it handles (sparse Top-K gates): with
top-k < E its output on words routed elsewhere never enters a prediction, so it is not part of what the
expert predicts. The plain all-words mean is available only as a labelled diagnostic.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import rankdata

from analysis.style import BUCKET_TICKS, expert_colors, new_figure
from wordle_moe.agreement import routed_mean_outputs


def _mean_outputs(expert_outputs: np.ndarray, gates: np.ndarray | None = None) -> np.ndarray:
    """(E,7) mean output of each expert. With ``gates`` (n,E) — use the sparse Top-K gates — the gate-weighted
    mean over the words the expert handles (what it predicts where it is used); an expert whose gate is 0 on
    every word gets a NaN row. Without gates: the plain mean over ALL words (a diagnostic only: it includes
    words routed elsewhere, where the expert's output is never used)."""
    out = np.asarray(expert_outputs, dtype=float)
    if out.ndim == 2:
        return out
    if out.ndim != 3:
        raise ValueError(f"expert_outputs must be (n, E, 7) or (E, 7); got {out.shape}")
    if gates is None:
        return out.mean(axis=0)
    return routed_mean_outputs(out, np.asarray(gates, dtype=float))[0]


def expert_rank_summary(mean_outputs: np.ndarray) -> dict[str, np.ndarray]:
    """Ranks of the experts within each bucket (1 = largest mean share; ties share the average rank) and
    the summaries of the parallel-coordinates view: peak_positions (bucket index of each expert's largest
    share), avg_rank (mean rank over the 7 buckets), rank_stability (std of the rank over the buckets: 0 = same
    rank everywhere), rank_distances (E×E Euclidean distance between rank vectors; max sqrt(7·(E-1)²)).
    Experts with a NaN row (they handle no word) are left out of the ranking: NaN ranks, peak −1."""
    m = np.asarray(mean_outputs, dtype=float)
    live = np.isfinite(m).all(axis=1)
    ranks = np.full(m.shape, np.nan)
    if live.any():
        ranks[live] = rankdata(-m[live], axis=0, method="average")  # rank experts within each bucket (column)
    diff = ranks[:, None, :] - ranks[None, :, :]
    return {
        "ranks": ranks,
        "mean_outputs": m,
        "peak_positions": np.where(live, np.nan_to_num(m, nan=-np.inf).argmax(axis=1), -1),
        "avg_rank": ranks.mean(axis=1),
        "rank_stability": ranks.std(axis=1, ddof=0),
        "rank_distances": np.sqrt((diff ** 2).sum(axis=2)),
    }


def plot_expert_parallel_coordinates(expert_outputs: np.ndarray | Mapping[str, np.ndarray],
                                     gates: np.ndarray | None = None, title: str | None = None):
    """Top: each expert's rank at each of the 7 buckets (parallel coordinates; crossing lines = experts swap
    order), with its routed mean share (%) beside; bottom: the rank-distance matrix and the rank
    stability / average rank. Accepts an intermediates dict (its sparse ``gates`` are used), (n,E,7) with
    ``gates`` (n,E), or (E,7) means. (n,E,7) WITHOUT gates gives the all-words mean, drawn as a labelled
    diagnostic. Returns (fig, summary dict)."""
    import seaborn as sns

    if isinstance(expert_outputs, Mapping):
        gates = expert_outputs.get("gates") if gates is None else gates
        expert_outputs = expert_outputs["expert_outputs"]
    diagnostic = np.ndim(expert_outputs) == 3 and gates is None
    s = expert_rank_summary(_mean_outputs(expert_outputs, gates))
    E = s["ranks"].shape[0]
    live = np.isfinite(s["mean_outputs"]).all(axis=1)
    colors = expert_colors(E)
    x = np.arange(s["ranks"].shape[1])
    fig, axes = new_figure(2, 2, figsize=(13, 9.5), gridspec_kw={"height_ratios": [1, 1]})
    ax_rank, ax_share = axes[0]
    ax_dist, ax_stab = axes[1]
    jitter = (np.arange(E) - (E - 1) / 2) * 0.04  # separate overlapping lines of tied experts
    what = "mean over ALL words (diagnostic)" if diagnostic else "routed mean: gate-weighted over the words it handles"
    for e in range(E):
        if not live[e]:
            ax_rank.plot([], [], color=colors[e], label=f"expert {e} (handles no word: nothing to rank)")
            continue
        ax_rank.plot(x, s["ranks"][e] + jitter[e], marker="o", lw=2.2, color=colors[e],
                     label=f"expert {e} (peak at {BUCKET_TICKS[s['peak_positions'][e]]})")
        ax_share.plot(x, 100 * s["mean_outputs"][e], marker="o", lw=2, color=colors[e], label=f"expert {e}")
    n_live = max(int(live.sum()), 1)
    ax_rank.set_ylim(n_live + 0.5, 0.5)
    ax_rank.set_yticks(np.arange(1, n_live + 1))
    ax_rank.set_xticks(x, BUCKET_TICKS)
    ax_rank.set_xlabel("tries needed (bucket)")
    ax_rank.set_ylabel("rank among experts (1 = largest share)")
    ax_rank.set_title("Expert ranks per bucket (parallel coordinates)")
    ax_rank.legend(fontsize=9)
    ax_share.set_xticks(x, BUCKET_TICKS)
    ax_share.set_xlabel("tries needed (bucket)")
    ax_share.set_ylabel("predicted share of players (%)")
    ax_share.set_title("Each expert's " + ("mean output over ALL words — diagnostic, not what it predicts"
                                          if diagnostic else "routed mean output"), fontsize=11)
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
    ax_stab.set_ylim(0, 1.35 * max(float(np.nanmax(s["avg_rank"], initial=0.0)), 1.0))
    ax_stab.set_title("Rank stability and average rank")
    ax_stab.legend(fontsize=9)
    fig.suptitle(title or f"How the experts' predicted distributions differ ({what})", fontsize=14,
                 fontweight="bold")
    fig.tight_layout()
    summary = {k: s[k] for k in ("peak_positions", "avg_rank", "rank_stability", "rank_distances", "ranks",
                                 "mean_outputs")}
    return fig, summary
