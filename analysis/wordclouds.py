"""Word clouds per expert: the words an expert owns, each sized by its gate weight for that expert.

``wordcloud`` is optional: without it a clear message is printed and a bar chart of each expert's
top words (same data) is drawn instead, so the rest of the analysis still runs.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

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


NOT_REPRODUCED_COLOR = (0.62, 0.62, 0.62)


def plot_expert_wordclouds(assignment: pd.DataFrame, title: str | None = None, max_words: int = 80,
                           owned_only: bool = True, seed: int = 0, fallback_top: int = 15,
                           reproduced: Sequence[bool] | None = None):
    """One panel per expert; word size = that word's gate weight for the expert. Returns the figure.

    Experts with no word (e.g. the third-ranked expert under Top-2 of 3) get an explicit empty panel.
    With ``reproduced`` (one bool per assignment row, see ``analysis.stability.reproduced_words``) the words the
    bootstrap consensus does not put with the same expert are drawn grey.
    """
    WordCloud = _load_wordcloud()
    if WordCloud is None:
        print(FALLBACK_MESSAGE)
        warnings.warn(FALLBACK_MESSAGE, RuntimeWarning, stacklevel=2)
    E = sum(c.startswith("expert_") and c.endswith("_weight") for c in assignment.columns)
    if reproduced is not None and len(reproduced) != len(assignment):
        raise ValueError(f"reproduced has {len(reproduced)} entries for {len(assignment)} words")
    stable = (None if reproduced is None else
              pd.Series(np.asarray(reproduced, dtype=bool), index=assignment["word"].to_numpy()).groupby(level=0).max())
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
        shown = f"\n(largest {len(w)} shown)" if len(w) < len(w_all) else ""
        n_stable = "" if stable is None else f", {int(stable.reindex(w_all.index).sum())} reproduced"
        ax.set_title(f"expert {e}: {len(w_all)} word(s){n_stable}{shown}", color=colors[e])
        if w.empty:
            ax.text(0.5, 0.5, "owns no word\n(weight 0 or never ranked first)", ha="center", va="center",
                    fontsize=12, transform=ax.transAxes)
            ax.set_axis_off()
            continue
        if WordCloud is not None:
            rgb = tuple(int(255 * c) for c in colors[e])
            grey = tuple(int(255 * c) for c in NOT_REPRODUCED_COLOR)

            def color_func(word, *a, rgb=rgb, grey=grey, **k):
                return f"rgb{rgb if stable is None or stable.get(word, True) else grey}"

            cloud = WordCloud(width=560, height=400, background_color="white", random_state=seed,
                              prefer_horizontal=0.9, max_words=max_words, min_font_size=6,
                              color_func=color_func).generate_from_frequencies(w.to_dict())
            ax.imshow(cloud.to_array(), interpolation="bilinear")
            ax.set_axis_off()
        else:
            top = w.head(fallback_top)[::-1]
            bar_colors = [colors[e] if stable is None or stable.get(word, True) else NOT_REPRODUCED_COLOR
                          for word in top.index]
            ax.barh(top.index, top.to_numpy(), color=bar_colors)
            ax.set_xlabel(f"gate weight for expert {e} (0–1)")
            ax.set_ylabel("word")
            ax.set_xlim(0, 1.05)
    if WordCloud is not None:
        text = title or "Words owned by each expert — word cloud; size = gate weight"
    else:
        text = (f"{title} — bar chart, wordcloud not installed" if title else
                "Words owned by each expert — top words (wordcloud not installed); bar length = gate weight")
    if stable is not None:
        text += "\ngrey: the bootstrap consensus puts the word with another expert, or agrees in < 50% of replicas"
    fig.suptitle(text, fontsize=14 if stable is None else 13, fontweight="bold")
    fig.tight_layout()
    return fig
