"""Word clouds per expert: the words an expert owns, each sized by its gate weight for that expert.

``wordcloud`` is optional: without it a clear message is printed and a bar chart of each expert's
top words (same data) is drawn instead, so the rest of the analysis still runs.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis.style import expert_colors, new_figure

FALLBACK_MESSAGE = ("wordcloud is not installed (pip install wordcloud): drawing each expert's top words "
                    "as a bar chart instead of a word cloud")


def _load_wordcloud():
    """The WordCloud class, or None when the package cannot be imported."""
    try:
        from wordcloud import WordCloud
    except ImportError:
        return None
    return WordCloud


def wordcloud_available() -> bool:
    """True when the optional ``wordcloud`` package can be imported."""
    return _load_wordcloud() is not None


def expert_word_weights(assignment: pd.DataFrame, expert: int, owned_only: bool = True) -> pd.Series:
    """Word -> gate weight for ``expert`` (positive weights only), largest first; owned words only by default."""
    rows = assignment[assignment["primary_expert"] == expert] if owned_only else assignment
    w = rows.set_index("word")[f"expert_{expert}_weight"].astype(float)
    w = w[w > 0].groupby(level=0).max()  # a word seen on two dates keeps its larger weight
    return w.sort_values(ascending=False, kind="stable")


def plot_expert_wordclouds(assignment: pd.DataFrame, title: str | None = None, max_words: int = 80,
                           owned_only: bool = True, seed: int = 0, fallback_top: int = 15):
    """One panel per expert; word size = that word's gate weight for the expert. Returns the figure.

    Experts with no word (e.g. the third-ranked expert under Top-2 of 3) get an explicit empty panel.
    """
    WordCloud = _load_wordcloud()
    if WordCloud is None:
        print(FALLBACK_MESSAGE)
        warnings.warn(FALLBACK_MESSAGE, RuntimeWarning, stacklevel=2)
    E = sum(c.startswith("expert_") and c.endswith("_weight") for c in assignment.columns)
    ncols = min(E, 3)
    nrows = int(np.ceil(E / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(5.6 * ncols, 4.4 * nrows), squeeze=False)
    colors = expert_colors(E)
    for e, ax in enumerate(axes.flat):
        if e >= E:
            ax.set_visible(False)
            continue
        w_all = expert_word_weights(assignment, e, owned_only)
        w = w_all.head(max_words)
        shown = f" (largest {len(w)} shown)" if len(w) < len(w_all) else ""
        ax.set_title(f"expert {e}: {len(w_all)} word(s){shown}", color=colors[e])
        if w.empty:
            ax.text(0.5, 0.5, "owns no word\n(weight 0 or never ranked first)", ha="center", va="center",
                    fontsize=12, transform=ax.transAxes)
            ax.set_axis_off()
            continue
        if WordCloud is not None:
            rgb = tuple(int(255 * c) for c in colors[e])
            cloud = WordCloud(width=560, height=400, background_color="white", random_state=seed,
                              prefer_horizontal=0.9, max_words=max_words, min_font_size=6,
                              color_func=lambda *a, **k: "rgb%s" % (rgb,)).generate_from_frequencies(w.to_dict())
            ax.imshow(cloud.to_array(), interpolation="bilinear")
            ax.set_axis_off()
        else:
            top = w.head(fallback_top)[::-1]
            ax.barh(top.index, top.to_numpy(), color=colors[e])
            ax.set_xlabel(f"gate weight for expert {e} (0–1)")
            ax.set_ylabel("word")
            ax.set_xlim(0, 1.05)
    if WordCloud is not None:
        text = title or "Words owned by each expert — word cloud; size = gate weight"
    else:
        text = (f"{title} — bar chart, wordcloud not installed" if title else
                "Words owned by each expert — top words (wordcloud not installed); bar length = gate weight")
    fig.suptitle(text, fontsize=14, fontweight="bold")
    fig.tight_layout()
    return fig
