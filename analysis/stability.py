"""Does the expert grouping reproduce? The bootstrap replicas' consensus grouping as a table, a verdict and a figure.

The numbers come from ``wordle_moe.agreement.grouping_stability`` (labels aligned across replicas,
consensus, pairwise adjusted Rand index (ARI) and its random baseline); this module shapes them for
readers. A word is "reproduced" for a model's grouping when the consensus of the replicas puts it with
the same expert and at least half of the replicas agree.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.style import expert_colors, new_figure
from wordle_moe.agreement import GroupingStability, co_assignment

# ARI >= 0.65 is "moderate" agreement or better in the clustering literature (Steinley 2004); < 0.2 is close
# to what unrelated partitions of these sizes give.
REPRODUCIBLE_ARI = 0.65
PARTLY_REPRODUCIBLE_ARI = 0.2
MIN_CONFIDENCE = 0.5


def share_columns(num_experts: int) -> list[str]:
    """expert_0_share .. expert_{E-1}_share."""
    return [f"expert_{e}_share" for e in range(num_experts)]


def stability_table(words: Sequence[str], result: GroupingStability) -> pd.DataFrame:
    """One row per word: consensus_expert, confidence (share of replicas agreeing) and each expert's share."""
    words = np.asarray(list(words), dtype=object)
    if len(words) != result.shares.shape[0]:
        raise ValueError(f"{len(words)} words but the stability result covers {result.shares.shape[0]}")
    df = pd.DataFrame({"word": words, "consensus_expert": result.consensus_expert.astype(int),
                       "confidence": result.confidence})
    for e, col in enumerate(share_columns(result.num_experts)):
        df[col] = result.shares[:, e]
    return df


def reproduced_words(primary_expert: Sequence[int], table: pd.DataFrame,
                     min_confidence: float = MIN_CONFIDENCE) -> np.ndarray:
    """True where a model's primary expert for the word equals the consensus expert and the consensus holds in
    at least ``min_confidence`` of the replicas (rows in the table's order)."""
    primary = np.asarray(primary_expert)
    if len(primary) != len(table):
        raise ValueError(f"{len(primary)} primary experts for {len(table)} words")
    return (primary == table["consensus_expert"].to_numpy()) & (table["confidence"].to_numpy() >= min_confidence)


def stability_verdict(result: GroupingStability) -> str:
    """Plain-language answer to "does the grouping reproduce?", with the numbers it rests on."""
    s = result.summary()
    R = s["n_replicas"]
    if R < 2:
        return "Only one replica: the stability of the grouping cannot be measured (set BOOTSTRAP_B >= 2)."
    single = (result.labels == result.labels[:, :1]).all(axis=1)     # replicas that put every word with one expert
    if single.all():
        return (f"Every one of the {R} replicas puts all words with a single expert: there is no grouping to "
                "reproduce (the ARI is 1 by convention and says nothing here).")
    ari, base = s["mean_pairwise_ari"], s["baseline_ari"]
    numbers = (f"mean pairwise adjusted Rand index {ari:.3f} over {R * (R - 1) // 2} pairs of {R} bootstrap replicas "
               f"(5–95%: {s['ari_q05']:.3f} to {s['ari_q95']:.3f}); random groupings of the same sizes: {base:.3f}. "
               f"{100 * s['share_words_confidence_ge_0.8']:.0f}% of the words go to their consensus expert in at "
               f"least 80% of the replicas (mean confidence {s['mean_confidence']:.2f}).")
    if ari >= REPRODUCIBLE_ARI:
        verdict = ("The grouping IS reproducible at this configuration: resampled models put the words into "
                   "largely the same groups (whether they found it or kept their starting split: see the verdict on "
                   "learned or imposed).")
    elif ari >= PARTLY_REPRODUCIBLE_ARI:
        verdict = ("The grouping is only PARTLY reproducible at this configuration: the replicas agree more than "
                   "chance but regroup many words; trust only the words with high confidence.")
    else:
        verdict = ("The grouping is NOT reproducible at this configuration: the replicas' groupings agree little "
                   "more than chance. Which words an expert owns is a property of one trained model, not of the "
                   "words; read the word clouds and per-expert statistics with that in mind.")
    return f"{verdict}\n{numbers}"


IMPOSED_ARI = 0.65   # a replica whose final grouping agrees this well with its start has kept the start


def learned_or_imposed(result: GroupingStability, with_start: np.ndarray, origin: pd.DataFrame | None = None) -> str:
    """Plain-language answer to "was the grouping learned, or imposed by where the gate started?": one of
    LEARNED AND REPRODUCIBLE, REPRODUCIBLE BECAUSE IMPOSED BY THE START, NOT REPRODUCIBLE; with the numbers.

    ``with_start`` (R,) is each replica's ARI with its starting grouping; ``origin`` (optional) is
    ``wordle_moe.agreement.gate_origin_comparison``'s table (held-out RPS of the trained gate, of the gate fixed at
    its start, and of the freely learning controls, with their ARIs)."""
    s = result.summary()
    if s["n_replicas"] < 2:
        return "Only one replica: whether the grouping was learned cannot be measured (set BOOTSTRAP_B >= 2)."
    between, start = s["mean_pairwise_ari"], float(np.mean(with_start))
    numbers = [f"ARI between replicas {between:.3f} (random groupings {s['baseline_ari']:.3f}); ARI of each replica "
               f"with the grouping its gate started from {start:.3f} (5–95%: {np.quantile(with_start, .05):.3f} to "
               f"{np.quantile(with_start, .95):.3f})."]
    free_between = None
    if origin is not None and len(origin):
        o = origin.set_index("procedure")
        if "gate fixed at its start" in o.index and "as set" in o.index:
            d, se = o.loc["gate fixed at its start", "rps_diff_vs_first"], o.loc["gate fixed at its start", "rps_diff_se"]
            effect = ("training the gate improved the held-out predictions" if d > 2 * se else
                      "the fixed starting split predicted better than the trained gate" if d < -2 * se else
                      "no measurable difference: training the gate did not improve the held-out predictions")
            numbers.append(f"Held-out RPS with the gate kept fixed at its start minus with the trained gate: "
                           f"{d * 1e3:+.4f} ± {se * 1e3:.4f} ×10⁻³ ({effect}).")
        for name in ("free gate (full rate)", "free gate, random start"):
            if name in o.index:
                numbers.append(f"Control, {name}: ARI between replicas {o.loc[name, 'ari_between_replicas']:.3f}, "
                               f"with its start {o.loc[name, 'ari_with_start']:.3f}, held-out RPS "
                               f"{o.loc[name, 'rps'] * 1e3:.4f} ×10⁻³ (as set: {o.loc['as set', 'rps'] * 1e3:.4f}).")
        if "free gate, random start" in o.index:
            free_between = float(o.loc["free gate, random start", "ari_between_replicas"])
        if "same_word_tries_gap" in o.columns and "as set" in o.index:
            r = o.loc["as set"]
            numbers.append(f"How far the experts are apart (as set): for the same word their expected tries differ by "
                           f"{r['same_word_tries_gap']:.2g} tries (5–95% over replicas: {r['same_word_tries_gap_q05']:.2g} "
                           f"to {r['same_word_tries_gap_q95']:.2g}); below 0.01 tries the experts are copies of one "
                           "model and the grouping decides nothing about the predictions.")
    if between < REPRODUCIBLE_ARI:
        verdict = ("NOT REPRODUCIBLE: resampled models group the words differently; which words an expert owns "
                   "belongs to one trained model, not to the words.")
    elif start >= IMPOSED_ARI:
        verdict = ("REPRODUCIBLE BECAUSE IMPOSED BY THE START: the replicas agree with each other mostly because each "
                   "kept the split its gate started from (a ridge fit of expected tries cut at its median)")
        if free_between is not None:
            verdict += (f"; a gate that learns freely from a random start does not find a reproducible grouping "
                        f"(ARI {free_between:.3f})" if free_between < REPRODUCIBLE_ARI else
                        f"; a freely learning gate from a random start also reproduces (ARI {free_between:.3f})")
        verdict += ". Read the expert groups as that difficulty split, not as structure the model found."
    else:
        verdict = ("LEARNED AND REPRODUCIBLE: the replicas moved away from their starting split and still agree "
                   "with each other.")
    return verdict + "\n" + " ".join(numbers)


def sorted_word_order(result: GroupingStability) -> np.ndarray:
    """Words ordered by consensus expert, then by falling confidence (stable): blocks on the co-assignment map."""
    return np.lexsort((-result.confidence, result.consensus_expert))


def plot_assignment_stability(result: GroupingStability, title: str | None = None,
                              with_start: np.ndarray | None = None):
    """Left: word × word co-assignment (share of replicas putting two words with the same expert), words sorted by
    consensus expert and confidence; middle: confidence histogram per consensus expert; right: pairwise ARI
    between replicas beside the size-matched random baseline and, given ``with_start`` (R,), each replica's ARI
    with the grouping it started from (densities: the three sets have different sizes). Returns the figure."""
    E = result.num_experts
    colors = expert_colors(E)
    order = sorted_word_order(result)
    co = co_assignment(result.labels)[np.ix_(order, order)]
    fig, (ax_co, ax_conf, ax_ari) = new_figure(1, 3, figsize=(18, 5.6), gridspec_kw={"width_ratios": [1.15, 1, 1]})
    im = ax_co.imshow(co, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax_co, fraction=0.046, pad=0.04, label="share of replicas grouping the two words together")
    sizes = np.bincount(result.consensus_expert, minlength=E)
    edges = np.concatenate([[0], np.cumsum(sizes)])
    for e in range(E):
        if sizes[e] == 0:
            continue
        lo, hi = edges[e] - 0.5, edges[e + 1] - 0.5
        ax_co.plot([lo, hi, hi, lo, lo], [lo, lo, hi, hi, lo], color=colors[e], lw=1.8)
        if sizes[e] >= 0.08 * len(order):   # label blocks wide enough to hold it (the legend beside names all)
            ax_co.text((lo + hi) / 2, -3, f"expert {e}", color=colors[e], ha="center", va="bottom", fontsize=9,
                       fontweight="bold")
    ax_co.set_xlabel("words, sorted by consensus expert, then confidence")
    ax_co.set_ylabel("words (same order)")
    ax_co.set_xticks([])
    ax_co.set_yticks([])
    ax_co.set_title("Co-assignment across replicas", pad=18)
    bins = np.linspace(1.0 / E - 1e-9, 1.0 + 1e-9, 11) if E > 1 else np.linspace(0, 1, 11)
    data = [result.confidence[result.consensus_expert == e] for e in range(E)]
    ax_conf.hist(data, bins=bins, stacked=True, color=colors, edgecolor="white",
                 label=[f"consensus expert {e} (n={len(d)})" for e, d in enumerate(data)])
    ax_conf.axvline(MIN_CONFIDENCE, color="0.3", ls="--", lw=1)
    ax_conf.set_xlabel("confidence: share of replicas giving the word to its consensus expert")
    ax_conf.set_ylabel("number of words")
    ax_conf.set_title("Per-word confidence")
    ax_conf.set_ylim(0, 1.3 * ax_conf.get_ylim()[1])   # room for the legend above the bars
    ax_conf.legend(fontsize=9, loc="upper left")
    pairs, base = result.off_diagonal(), result.off_diagonal(baseline=True)
    lo = min(pairs.min(initial=0.0), base.min(initial=0.0), -0.05)
    ari_bins = np.linspace(lo, 1.0 + 1e-9, 41)
    ax_ari.hist(base, bins=ari_bins, color="0.6", alpha=0.7, density=True,
                label=f"random groupings, same sizes (mean {result.baseline_ari:.3f})")
    ax_ari.hist(pairs, bins=ari_bins, color="tab:blue", alpha=0.7, density=True,
                label=f"between replicas (mean {result.mean_ari:.3f})")
    ax_ari.axvline(result.mean_ari, color="tab:blue", lw=2)
    ax_ari.axvline(result.baseline_ari, color="0.3", lw=2, ls="--")
    if with_start is not None and len(with_start):
        start = np.asarray(with_start, dtype=float)
        ax_ari.hist(start, bins=ari_bins, color="tab:orange", alpha=0.6, density=True,
                    label=f"each replica with its own start (mean {start.mean():.3f})")
        ax_ari.axvline(start.mean(), color="tab:orange", lw=2)
    ax_ari.set_xlabel("adjusted Rand index of two groupings (1 = identical, 0 = chance)")
    ax_ari.set_ylabel("density")
    ax_ari.set_title("Agreement between replicas, and with the start")
    ax_ari.legend(fontsize=9, loc="upper right")
    fig.suptitle(title or f"Does the expert grouping reproduce? {result.num_replicas} bootstrap replicas, "
                 f"{len(result.confidence)} words, {E} experts", fontsize=14, fontweight="bold")
    fig.tight_layout()
    return fig
