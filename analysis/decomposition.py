"""How the model builds one word's prediction: each expert's output, the gates, and their mixture."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.assignment import check_intermediates
from analysis.style import BUCKET_TICKS, expert_colors, new_figure

UNUSED_COLOR = "0.7"


def default_sample_words(words: Sequence[str], intermediates: Mapping[str, np.ndarray], n_samples: int = 4) -> list:
    """Deterministic, informative picks: for each expert in turn the word it is most strongly gated to
    (by the softmax), then the most evenly split word; distinct words, at most ``n_samples``."""
    scores = np.asarray(intermediates["gate_scores"], dtype=float)
    words = list(words)
    picks: list[int] = []
    for e in range(scores.shape[1]):
        for i in np.argsort(-scores[:, e], kind="stable"):
            if i not in picks:
                picks.append(int(i))
                break
    for i in np.argsort(scores.max(axis=1), kind="stable"):
        if i not in picks:
            picks.append(int(i))
            break
    return [words[i] for i in picks[:n_samples]]


def plot_sample_expert_decomposition(words: Sequence[str], P_true: np.ndarray | None,
                                     intermediates: Mapping[str, np.ndarray],
                                     sample_words: Sequence[str] | None = None, n_samples: int = 4):
    """One row per sample word: left, the observed distribution (grey bars), each expert's output (dashed, in
    colour only where its Top-K gate is > 0; grey dotted and labelled "not used for this word" where the gate is 0)
    and the gate-weighted mixture (black); right, the softmax gate probabilities and the Top-K gates actually used.
    ``P_true`` rows may be NaN (a word with no observation, e.g. EERIE); returns the figure."""
    E = check_intermediates(intermediates, len(words))
    words = [str(w) for w in words]
    if sample_words is None:
        sample_words = default_sample_words(words, intermediates, n_samples)
    index = {w: i for i, w in enumerate(words)}
    unknown = [w for w in sample_words if w not in index]
    if unknown:
        raise ValueError(f"sample word(s) {unknown} are not among the {len(words)} analysed words")
    outputs = np.asarray(intermediates["expert_outputs"], dtype=float)
    final = np.asarray(intermediates["final_output"], dtype=float)
    gates = np.asarray(intermediates["gates"], dtype=float)
    scores = np.asarray(intermediates["gate_scores"], dtype=float)
    colors = expert_colors(E)
    x = np.arange(7)
    fig, axes = new_figure(len(sample_words), 2, figsize=(12.5, 3.3 * len(sample_words)), squeeze=False,
                           gridspec_kw={"width_ratios": [2.6, 1]})
    for row, w in enumerate(sample_words):
        i = index[w]
        ax, axg = axes[row]
        if P_true is not None and np.all(np.isfinite(P_true[i])):
            ax.bar(x, 100 * np.asarray(P_true[i]), color="0.8", edgecolor="0.5", label="observed")
        unused = [e for e in range(E) if gates[i, e] <= 0]
        for e in range(E):
            if e in unused:  # its output never enters this word's prediction: grey, thin, labelled
                ax.plot(x, 100 * outputs[i, e], ls=":", color=UNUSED_COLOR, lw=1.0, zorder=1)
            else:
                ax.plot(x, 100 * outputs[i, e], ls="--", marker=".", color=colors[e], lw=1.6, zorder=2)
        ax.plot(x, 100 * final[i], color="k", marker="o", lw=2.2, zorder=3)
        if unused:
            ax.text(0.99, 0.97, "not used for this word (gate 0): "
                    + ", ".join(f"expert {e}" for e in unused) + " — grey dotted",
                    transform=ax.transAxes, ha="right", va="top", fontsize=8.5, color="0.35")
        ax.set_xticks(x, BUCKET_TICKS)
        ax.set_ylabel("share of players (%)")
        ax.set_title(f"{w.upper()}: experts and their mixture")
        ye = np.arange(E)
        axg.barh(ye + 0.2, scores[i], 0.38, color=colors, alpha=0.45, label="softmax (before Top-K)")
        axg.barh(ye - 0.2, gates[i], 0.38, color=colors, edgecolor="k", label="Top-K gate (used)")
        axg.set_yticks(ye, [f"expert {e}" for e in range(E)])
        axg.set_xlim(0, 1)
        axg.invert_yaxis()
        axg.set_xlabel("gate weight (0–1)")
        axg.set_title("gates")
        for e in range(E):
            axg.text(min(gates[i, e] + 0.02, 0.85), e - 0.2, f"{gates[i, e]:.2f}", va="center", fontsize=8)
            axg.text(min(scores[i, e] + 0.02, 0.85), e + 0.2, f"{scores[i, e]:.2f}", va="center", fontsize=8,
                     color="0.35")
        if row == 0:
            axg.legend(fontsize=8, loc="lower right")
    axes[-1, 0].set_xlabel("tries needed (bucket)")
    handles = ([Patch(facecolor="0.8", edgecolor="0.5")] if P_true is not None else []) + [
        *[Line2D([], [], ls="--", marker=".", color=colors[e], lw=1.6) for e in range(E)],
        Line2D([], [], ls=":", color=UNUSED_COLOR, lw=1.0), Line2D([], [], color="k", marker="o", lw=2.2)]
    labels = (["observed"] if P_true is not None else []) + [
        *[f"expert {e} output (gate > 0)" for e in range(E)],
        "an expert's output where its gate is 0: not used for this word", "mixture (model prediction)"]
    fig.suptitle("Sample words: how the gates mix the experts' predictions", fontsize=14, fontweight="bold")
    fig.tight_layout(rect=(0, 0.06 if len(sample_words) > 2 else 0.12, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9, frameon=False)
    return fig
