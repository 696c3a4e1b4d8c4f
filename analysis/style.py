"""One consistent seaborn look for every figure of the workbench (readable at the saved size)."""
from __future__ import annotations

import matplotlib.pyplot as plt  # backend left to the user: Jupyter's inline one, or Agg when headless
import seaborn as sns

BUCKET_TICKS = ["1", "2", "3", "4", "5", "6", "X (7+)"]
PALETTE = "tab10"


def apply_style() -> None:
    """Set the workbench's seaborn theme; called by every plotting function so figures match."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=1.0,
                  rc={"figure.dpi": 100, "axes.titleweight": "bold", "axes.titlesize": 12,
                      "legend.frameon": True, "legend.framealpha": 0.9})


def expert_colors(num_experts: int) -> list:
    """One fixed colour per expert (expert e always has the same colour in every figure)."""
    return sns.color_palette(PALETTE, max(num_experts, 1))[:num_experts]


def new_figure(*args, **kwargs):
    """plt.subplots with the workbench style applied."""
    apply_style()
    return plt.subplots(*args, **kwargs)
