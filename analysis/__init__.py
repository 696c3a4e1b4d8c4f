"""Expert-grouping analysis: which words each expert owns, how the experts differ, and whether the grouping
reproduces across bootstrap replicas.

Every function takes a trained model's intermediates (``wordle_moe.training.intermediates``),
words and features, and RETURNS DataFrames / figures; nothing here writes files
(``wordle_moe.report`` does that).
"""
from analysis.assignment import (
    assignment_columns,
    ownership_counts,
    softmax_assignment,
    topk_assignment,
    topk_gates_from_scores,
)
from analysis.decomposition import plot_sample_expert_decomposition
from analysis.diagnosis import constructed_unused_expert_intermediates, diagnose_expert_usage, explain_expert_usage
from analysis.ranks import plot_expert_parallel_coordinates
from analysis.run_figures import plot_holdout_bar_ci, plot_holdout_violin, plot_training_history
from analysis.stability import (
    learned_or_imposed,
    plot_assignment_stability,
    reproduced_words,
    stability_table,
    stability_verdict,
)
from analysis.statistics import (
    expert_feature_statistics,
    expert_prediction_statistics,
    plot_feature_distributions,
    plot_prediction_distributions,
)
from analysis.style import apply_style, expert_colors
from analysis.wordclouds import plot_expert_wordclouds, wordcloud_available

__all__ = [
    "apply_style", "assignment_columns", "constructed_unused_expert_intermediates", "diagnose_expert_usage",
    "expert_colors", "expert_feature_statistics", "expert_prediction_statistics", "explain_expert_usage",
    "learned_or_imposed",
    "ownership_counts", "plot_assignment_stability", "plot_expert_parallel_coordinates",
    "plot_expert_wordclouds", "plot_feature_distributions", "plot_holdout_bar_ci", "plot_holdout_violin",
    "plot_prediction_distributions",
    "plot_sample_expert_decomposition", "plot_training_history", "reproduced_words", "softmax_assignment",
    "stability_table", "stability_verdict", "topk_assignment", "topk_gates_from_scores", "wordcloud_available",
]
