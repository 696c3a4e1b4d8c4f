"""Per-expert statistics: the features of the words each expert owns, and what each expert predicts."""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.style import BUCKET_TICKS, expert_colors, new_figure
from wordle_moe.paths import PRED_COLUMNS

try:  # the data helper owns the list; keep a copy so the analysis runs on any feature table
    from wordle_moe.features import KEY_FEATURES
except ImportError:  # pragma: no cover - only before the features module exists
    KEY_FEATURES = ["Zipf-value", "letter_entropy", "feedback_entropy", "scrabble_score",
                    "hamming_neighbors", "semantic_distance"]

FEATURE_UNITS = {"Zipf-value": "log10 per 10^9 words", "letter_entropy": "bits", "feedback_entropy": "bits",
                 "scrabble_score": "points", "hamming_neighbors": "words", "semantic_distance": "embedding distance"}
STAT_COLUMNS = ["expert", "feature", "key_feature", "n_words", "mean", "std", "median", "min", "max"]


def _num_experts(assignment: pd.DataFrame) -> int:
    return sum(c.startswith("expert_") and c.endswith("_weight") for c in assignment.columns)


def aligned_features(assignment: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Feature rows in the assignment's row order (by position when the words line up, else by word)."""
    if "word" not in features:
        raise KeyError("features must have a 'word' column")
    if len(features) == len(assignment) and (features["word"].to_numpy() == assignment["word"].to_numpy()).all():
        return features.reset_index(drop=True)
    table = features.drop_duplicates("word", keep="last").set_index("word")
    missing = sorted(set(assignment["word"]) - set(table.index))
    if missing:
        raise KeyError(f"no feature row for {len(missing)} word(s), e.g. {missing[:5]}")
    return table.loc[assignment["word"]].reset_index()


def numeric_feature_names(features: pd.DataFrame, key_features: Sequence[str] = KEY_FEATURES) -> list[str]:
    """Key features first (those present), then every other numeric column."""
    numeric = [c for c in features.columns if c not in ("word", "date") and pd.api.types.is_numeric_dtype(features[c])]
    keys = [f for f in key_features if f in numeric]
    return keys + [c for c in numeric if c not in keys]


def expert_feature_statistics(assignment: pd.DataFrame, features: pd.DataFrame,
                              key_features: Sequence[str] = KEY_FEATURES, all_features: bool = True,
                              reproduced: Sequence[bool] | None = None) -> pd.DataFrame:
    """Tidy table, one row per (expert, feature): n_words, mean, std, median, min, max over the words the
    expert owns (``primary_expert``). Key features come first; ``all_features=False`` keeps only them.
    Experts that own no word appear with n_words=0 and NaN statistics, so the table always has every expert.
    With ``reproduced`` (one bool per row: the bootstrap consensus puts the word with the same expert) two more
    columns: n_words_reproduced and mean_reproduced (the mean over those words only).
    """
    feats = aligned_features(assignment, features)
    names = numeric_feature_names(feats, key_features)
    if not all_features:
        names = [n for n in names if n in key_features]
    E = _num_experts(assignment)
    values = feats[names].astype(float)
    values["expert"] = assignment["primary_expert"].to_numpy()
    grouped = values.groupby("expert")
    frames = []
    for stat in ("mean", "std", "median", "min", "max"):
        s = getattr(grouped, stat)().reindex(range(E)).stack(future_stack=True).rename(stat)
        frames.append(s)
    out = pd.concat(frames, axis=1)
    out.index.names = ["expert", "feature"]
    out = out.reset_index()
    out["n_words"] = out["expert"].map(assignment["primary_expert"].value_counts()).fillna(0).astype(int)
    out["key_feature"] = out["feature"].isin(list(key_features))
    columns = list(STAT_COLUMNS)
    if reproduced is not None:
        keep = np.asarray(reproduced, dtype=bool)
        if len(keep) != len(assignment):
            raise ValueError(f"reproduced has {len(keep)} entries for {len(assignment)} words")
        stable = values[keep]
        means = stable.groupby("expert").mean().reindex(range(E)).stack(future_stack=True).rename("mean_reproduced")
        out = out.join(means, on=["expert", "feature"])
        out["n_words_reproduced"] = out["expert"].map(stable["expert"].value_counts()).fillna(0).astype(int)
        columns += ["n_words_reproduced", "mean_reproduced"]
    order = {n: i for i, n in enumerate(names)}
    out = out.sort_values(["expert", "feature"], key=lambda c: c.map(order) if c.name == "feature" else c)
    return out[columns].reset_index(drop=True)


def plot_feature_distributions(assignment: pd.DataFrame, features: pd.DataFrame,
                               key_features: Sequence[str] = KEY_FEATURES, title: str | None = None,
                               reproduced: Sequence[bool] | None = None, seed: int = 0):
    """Box plots of each key feature, one box per expert, with the words as dots (horizontal jitter drawn from a
    generator seeded ``seed``, so the figure is byte-identical between runs). With ``reproduced`` (one bool per
    row, see ``analysis.stability.reproduced_words``) the words the bootstrap consensus puts with the same expert
    are dark dots and the others open grey circles. Returns the figure."""
    import seaborn as sns

    feats = aligned_features(assignment, features)
    names = [f for f in key_features if f in feats.columns] or numeric_feature_names(feats)[:6]
    E = _num_experts(assignment)
    owner = assignment["primary_expert"].to_numpy()
    data = feats[names].astype(float).assign(expert=owner)
    counts = data["expert"].value_counts().reindex(range(E), fill_value=0)
    labels = [f"expert {e}\n(n={counts[e]})" for e in range(E)]
    data["expert_label"] = pd.Categorical([labels[e] for e in data["expert"]], categories=labels)
    stable = np.ones(len(data), bool) if reproduced is None else np.asarray(reproduced, dtype=bool)
    if len(stable) != len(data):
        raise ValueError(f"reproduced has {len(stable)} entries for {len(data)} words")
    jitter = np.random.default_rng(seed).uniform(-0.25, 0.25, size=len(data))
    ncols = 3
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False)
    palette = dict(zip(labels, expert_colors(E)))
    for ax, name in zip(axes.flat, names):
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert`; not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            sns.boxplot(data=data, x="expert_label", y=name, hue="expert_label", palette=palette, ax=ax,
                        showfliers=False, legend=False, order=labels, hue_order=labels, dodge=False, width=0.6)
        # dots at the boxes' own positions (seaborn may leave out an expert that owns no word)
        where = {t.get_text(): pos for pos, t in zip(ax.get_xticks(), ax.get_xticklabels())}
        xs = np.array([where.get(lab, np.nan) for lab in data["expert_label"].astype(str)]) + jitter
        y = data[name].to_numpy()
        ax.scatter(xs[stable], y[stable], s=7, color="0.2", alpha=0.55, lw=0, zorder=3,
                   label="word (grouping reproduced)" if reproduced is not None else "word")
        if reproduced is not None and (~stable).any():
            ax.scatter(xs[~stable], y[~stable], s=9, facecolors="none", edgecolors="0.55", lw=0.6,
                       zorder=3, label="word (not reproduced)")
        ax.set_title(name)
        ax.set_xlabel("")
        unit = FEATURE_UNITS.get(name)
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    text = title or "Key word features of the words each expert owns"
    if reproduced is not None:
        handles, hl = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, hl, loc="lower center", ncol=2, fontsize=9, frameon=False)
        text += f"\n{int(stable.sum())} of {len(stable)} words reproduced by the bootstrap consensus (dark dots)"
    fig.suptitle(text, fontsize=14, fontweight="bold")
    fig.tight_layout(rect=(0, 0.03 if reproduced is not None else 0, 1, 1))
    return fig


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles of each column of ``values`` (n, k) with row ``weights`` (n,) > 0 (inverse of the weighted CDF)."""
    order = np.argsort(values, axis=0, kind="stable")
    v = np.take_along_axis(values, order, axis=0)
    cdf = np.cumsum(weights[order], axis=0)
    cdf /= cdf[-1:]
    idx = np.stack([(cdf < q).sum(axis=0) for q in qs])                    # (len(qs), k)
    return np.take_along_axis(v, np.minimum(idx, len(v) - 1), axis=0)


PREDICTION_SOURCES = {
    "owned_words_mixture": "Model prediction, words owned by each expert",
    "expert_output_routed": "Each expert's own output on the words it handles (gate-weighted)",
    "expert_output_all_words_diagnostic": "DIAGNOSTIC: each expert's output on ALL words, incl. words routed elsewhere",
}


def expert_prediction_statistics(assignment: pd.DataFrame, intermediates: Mapping[str, np.ndarray] | None = None,
                                 all_words_diagnostic: bool = False) -> pd.DataFrame:
    """Per expert and bucket: n_words, mean, std, 10th and 90th percentile, shares in [0, 1], from up to three sources:

    - ``owned_words_mixture``: the model's prediction over the words the expert owns (``primary_expert``);
    - ``expert_output_routed`` (needs ``intermediates``): the expert's own output, gate-weighted by the sparse
      Top-K gates over the words it handles (gate > 0) — what the expert predicts where it is used;
    - ``expert_output_all_words_diagnostic`` (only with ``all_words_diagnostic=True``): the expert's output over
      every word, including words routed elsewhere, where it never enters a prediction. A diagnostic only.
    """
    E = _num_experts(assignment)
    rows = []
    preds = assignment[PRED_COLUMNS].to_numpy(float)
    owner = assignment["primary_expert"].to_numpy()
    sources = [("owned_words_mixture", [(preds[owner == e], None) for e in range(E)])]
    if intermediates is not None and "expert_outputs" in intermediates:
        out = np.asarray(intermediates["expert_outputs"], dtype=float)
        gates = np.asarray(intermediates["gates"], dtype=float)
        sources.append(("expert_output_routed", [(out[gates[:, e] > 0, e, :], gates[gates[:, e] > 0, e])
                                                 for e in range(E)]))
        if all_words_diagnostic:
            sources.append(("expert_output_all_words_diagnostic", [(out[:, e, :], None) for e in range(E)]))
    for source, blocks in sources:
        for e, (block, w) in enumerate(blocks):
            n = len(block)
            if n:
                w = np.ones(n) if w is None else w
                mean = np.average(block, axis=0, weights=w)
                std = np.sqrt(np.average((block - mean) ** 2, axis=0, weights=w))
                q10, q90 = _weighted_quantiles(block, w, (0.1, 0.9))
            else:
                mean = std = q10 = q90 = np.full(len(PRED_COLUMNS), np.nan)
            for j, col in enumerate(PRED_COLUMNS):
                rows.append({"source": source, "expert": e, "bucket": col, "n_words": n, "mean": mean[j],
                             "std": std[j], "q10": q10[j], "q90": q90[j]})
    return pd.DataFrame(rows)


def plot_prediction_distributions(assignment: pd.DataFrame, intermediates: Mapping[str, np.ndarray] | None = None,
                                  title: str | None = None, all_words_diagnostic: bool = False):
    """Each expert's mean predicted 7-bucket distribution (share of players, %) with a 10–90% band:
    left, the model's prediction for the words the expert owns; right, the expert's own output gate-weighted
    over the words it handles (never over words routed elsewhere). ``all_words_diagnostic`` adds a third,
    labelled panel with the all-words mean."""
    stats = expert_prediction_statistics(assignment, intermediates, all_words_diagnostic)
    sources = list(dict.fromkeys(stats["source"]))
    E = _num_experts(assignment)
    colors = expert_colors(E)
    fig, axes = new_figure(1, len(sources), figsize=(6.5 * len(sources), 4.8), squeeze=False, sharey=True)
    x = np.arange(len(PRED_COLUMNS))
    for ax, source in zip(axes.flat, sources):
        handled = source == "expert_output_routed"
        for e in range(E):
            s = stats[(stats["source"] == source) & (stats["expert"] == e)]
            n = int(s["n_words"].iloc[0])
            if n == 0:
                ax.plot([], [], color=colors[e], label=f"expert {e} ({'handles' if handled else 'owns'} no word)")
                continue
            label = f"expert {e} (handles {n} words)" if handled else f"expert {e} (n={n})"
            ax.plot(x, 100 * s["mean"], marker="o", color=colors[e], lw=2, label=label,
                    ls=":" if source.endswith("diagnostic") else "-")
            ax.fill_between(x, 100 * s["q10"], 100 * s["q90"], color=colors[e], alpha=0.18)
        ax.set_xticks(x, BUCKET_TICKS)
        ax.set_xlabel("tries needed (bucket)")
        ax.set_ylabel("share of players (%)")
        ax.set_title(PREDICTION_SOURCES.get(source, source), fontsize=10.5,
                     color="firebrick" if source.endswith("diagnostic") else "black")
        ax.legend(title="line = mean, band = 10–90%", fontsize=9, title_fontsize=9, loc="upper right")
    fig.suptitle(title or "Predicted result distribution per expert", fontsize=14, fontweight="bold")
    fig.tight_layout()
    return fig
