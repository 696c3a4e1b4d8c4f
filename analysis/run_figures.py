"""Figures of the run itself (not the expert grouping): training history and the holdout word's interval."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.style import BUCKET_TICKS, expert_colors, new_figure

LOSS_TERMS = [("total_loss", "total"), ("main_loss", "main (soft-label CE)"), ("val_loss", "validation CE")]
AUX_TERMS = [("lb_loss", "load balance"), ("div", "parameter cosine"), ("out_div", "output cosine"),
             ("js", "− JS divergence")]


def plot_training_history(history: pd.DataFrame, best_epoch: int | None = None, title: str | None = None):
    """Three panels: main/total/validation loss, the auxiliary terms (unweighted), and each expert's mean
    routing probability per epoch on the full 0-100% axis; a dotted line marks the restored best epoch."""
    fig, axes = new_figure(1, 3, figsize=(17, 4.6))
    ep = history["epoch"].to_numpy()
    for col, label in LOSS_TERMS:
        if col in history:
            seen = history[col].notna().to_numpy()   # converged training logs the held-out loss every 20 steps
            axes[0].plot(ep[seen], history[col].to_numpy()[seen], lw=1.8, label=label)
    axes[0].set_ylabel("cross-entropy (nats)")
    axes[0].set_title("Losses")
    for col, label in AUX_TERMS:
        if col in history:
            axes[1].plot(ep, history[col], lw=1.5, label=label)
    axes[1].set_ylabel("term value (unweighted)")
    axes[1].set_title("Auxiliary terms")
    probs = [c for c in history.columns if c.startswith("routing_prob_expert_")]
    for e, (c, color) in enumerate(zip(probs, expert_colors(len(probs)))):
        axes[2].plot(ep, 100 * history[c], lw=1.8, color=color, label=f"expert {e}")
    # the whole 0-100% range: an autoscaled axis turns a ±0.75 pp drift of a 50/50 split into a cliff
    axes[2].set_ylim(0, 100)
    axes[2].set_ylabel("mean routing probability (%, full range)")
    axes[2].set_title("Expert routing share")
    for ax in axes:
        ax.set_xlabel("epoch (one full-batch step)")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="k", ls=":", lw=1.2, label=f"best epoch ({best_epoch})")
        ax.legend(fontsize=8)
    fig.suptitle(title or "MoE training history", fontsize=14, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_holdout_bar_ci(holdout: pd.DataFrame, observed: np.ndarray | None = None, title: str | None = None):
    """Bars = bootstrap mean share per bucket (%); thin grey bars = the predictive interval (``pred_low``/``pred_high``,
    where the word's observed share is expected to fall) when the table has it; black = the interval of the mean."""
    fig, ax = new_figure(figsize=(8.5, 4.8))
    x = np.arange(len(holdout))
    mean, low, high = (100 * holdout[k].to_numpy(float) for k in ("mean", "low", "high"))
    ci = float(holdout["ci_level"].iloc[0])
    ax.bar(x, mean, color=expert_colors(1)[0], alpha=0.8, label="bootstrap mean")
    if {"pred_low", "pred_high"} <= set(holdout.columns):
        p_low, p_high = (100 * holdout[k].to_numpy(float) for k in ("pred_low", "pred_high"))
        ax.errorbar(x - 0.18, mean, yerr=[mean - p_low, p_high - mean], fmt="none", ecolor="0.55", capsize=4, lw=3,
                    label=f"{ci:.0%} predictive interval (where the observed share falls)")
    ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="none", ecolor="k", capsize=5, lw=1.5,
                label=f"{ci:.0%} interval of the mean (bootstrap percentiles)")
    for xi, m in zip(x, mean):
        ax.text(xi + 0.1, m + 0.4, f"{m:.1f}", ha="left", va="bottom", fontsize=9)  # right of the error bar
    if observed is not None and np.all(np.isfinite(observed)):
        ax.plot(x, 100 * np.asarray(observed), "D", color="crimson", label="observed")
    ax.set_xticks(x, BUCKET_TICKS)
    ax.set_xlabel("tries needed (bucket)")
    ax.set_ylabel("share of players (%)")
    word = str(holdout["word"].iloc[0]).upper()
    B = int(holdout["bootstrap_B"].iloc[0]) if "bootstrap_B" in holdout else None
    ax.set_title(title or f"{word} on {holdout['date'].iloc[0]}: predicted distribution (B={B})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_holdout_violin(P_word: np.ndarray, word: str, date: str | None = None, title: str | None = None):
    """Violin per bucket of the B bootstrap replicas' predicted share (%) for one word."""
    import seaborn as sns

    P_word = np.asarray(P_word, dtype=float)
    long = pd.DataFrame(100 * P_word, columns=BUCKET_TICKS).melt(var_name="bucket", value_name="share")
    fig, ax = new_figure(figsize=(8.5, 4.8))
    sns.violinplot(data=long, x="bucket", y="share", hue="bucket", legend=False, ax=ax, inner="quartile",
                   cut=0, density_norm="width", palette="crest")
    ax.set_xlabel("tries needed (bucket)")
    ax.set_ylabel("predicted share of players (%)")
    when = f" on {date}" if date else ""
    ax.set_title(title or f"{word.upper()}{when}: spread of {len(P_word)} bootstrap replicas")
    fig.tight_layout()
    return fig
