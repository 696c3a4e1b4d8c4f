"""Per-expert statistics: the features of the words each expert owns, and what each expert predicts."""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

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
                              key_features: Sequence[str] = KEY_FEATURES, all_features: bool = True) -> pd.DataFrame:
    """Tidy table, one row per (expert, feature): n_words, mean, std, median, min, max over the words the
    expert owns (``primary_expert``). Key features come first; ``all_features=False`` keeps only them.
    Experts that own no word appear with n_words=0 and NaN statistics, so the table always has every expert.
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
    order = {n: i for i, n in enumerate(names)}
    out = out.sort_values(["expert", "feature"], key=lambda c: c.map(order) if c.name == "feature" else c)
    return out[STAT_COLUMNS].reset_index(drop=True)


def plot_feature_distributions(assignment: pd.DataFrame, features: pd.DataFrame,
                               key_features: Sequence[str] = KEY_FEATURES, title: str | None = None):
    """Box plots (with the words as dots) of each key feature, one box per expert; returns the figure."""
    import seaborn as sns

    feats = aligned_features(assignment, features)
    names = [f for f in key_features if f in feats.columns] or numeric_feature_names(feats)[:6]
    E = _num_experts(assignment)
    data = feats[names].astype(float).assign(expert=assignment["primary_expert"].to_numpy())
    counts = data["expert"].value_counts().reindex(range(E), fill_value=0)
    labels = [f"expert {e}\n(n={counts[e]})" for e in range(E)]
    data["expert_label"] = pd.Categorical([labels[e] for e in data["expert"]], categories=labels)
    ncols = 3
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False)
    palette = dict(zip(labels, expert_colors(E)))
    for ax, name in zip(axes.flat, names):
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert`; not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            sns.boxplot(data=data, x="expert_label", y=name, hue="expert_label", palette=palette, ax=ax,
                        showfliers=False, legend=False, order=labels, hue_order=labels, dodge=False, width=0.6)
        sns.stripplot(data=data, x="expert_label", y=name, color="0.25", size=2.5, alpha=0.5, ax=ax,
                      order=labels, jitter=0.25)
        ax.set_title(name)
        ax.set_xlabel("")
        unit = FEATURE_UNITS.get(name)
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(title or "Key word features of the words each expert owns", fontsize=14, fontweight="bold")
    fig.tight_layout()
    return fig


def expert_prediction_statistics(assignment: pd.DataFrame,
                                 intermediates: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Per expert and bucket: mean, std, 10th and 90th percentile of the model's prediction over the words the
    expert owns (source='owned_words_mixture'), and — when intermediates are given — of the expert's own output
    over all words (source='expert_output_all_words'). Shares in [0, 1].
    """
    E = _num_experts(assignment)
    rows = []
    preds = assignment[PRED_COLUMNS].to_numpy(float)
    owner = assignment["primary_expert"].to_numpy()
    sources = [("owned_words_mixture", [preds[owner == e] for e in range(E)])]
    if intermediates is not None and "expert_outputs" in intermediates:
        out = np.asarray(intermediates["expert_outputs"], dtype=float)
        sources.append(("expert_output_all_words", [out[:, e, :] for e in range(E)]))
    for source, blocks in sources:
        for e, block in enumerate(blocks):
            for j, col in enumerate(PRED_COLUMNS):
                v = block[:, j]
                has = len(v) > 0
                rows.append({"source": source, "expert": e, "bucket": col, "n_words": len(v),
                             "mean": v.mean() if has else np.nan, "std": v.std(ddof=0) if has else np.nan,
                             "q10": np.quantile(v, 0.1) if has else np.nan,
                             "q90": np.quantile(v, 0.9) if has else np.nan})
    return pd.DataFrame(rows)


def plot_prediction_distributions(assignment: pd.DataFrame, intermediates: Mapping[str, np.ndarray] | None = None,
                                  title: str | None = None):
    """Each expert's mean predicted 7-bucket distribution (share of players, %) with a 10–90% band:
    left, the model's prediction for the words the expert owns; right, the expert's own output on every word."""
    stats = expert_prediction_statistics(assignment, intermediates)
    sources = list(dict.fromkeys(stats["source"]))
    E = _num_experts(assignment)
    colors = expert_colors(E)
    fig, axes = new_figure(1, len(sources), figsize=(6.5 * len(sources), 4.6), squeeze=False, sharey=True)
    x = np.arange(len(PRED_COLUMNS))
    titles = {"owned_words_mixture": "Model prediction, words owned by each expert",
              "expert_output_all_words": "Each expert's own output, all words"}
    for ax, source in zip(axes.flat, sources):
        for e in range(E):
            s = stats[(stats["source"] == source) & (stats["expert"] == e)]
            n = int(s["n_words"].iloc[0])
            if n == 0:
                ax.plot([], [], color=colors[e], label=f"expert {e} (owns no word)")
                continue
            ax.plot(x, 100 * s["mean"], marker="o", color=colors[e], lw=2, label=f"expert {e} (n={n})")
            ax.fill_between(x, 100 * s["q10"], 100 * s["q90"], color=colors[e], alpha=0.18)
        ax.set_xticks(x, BUCKET_TICKS)
        ax.set_xlabel("tries needed (bucket)")
        ax.set_ylabel("share of players (%)")
        ax.set_title(titles.get(source, source))
        ax.legend(title="line = mean, band = 10–90%", fontsize=9, title_fontsize=9, loc="upper right")
    fig.suptitle(title or "Predicted result distribution per expert", fontsize=14, fontweight="bold")
    fig.tight_layout()
    return fig
