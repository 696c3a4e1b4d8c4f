"""Why an expert goes unused under Top-K routing: rank counts and gate mass before/after Top-K."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.assignment import check_intermediates, relative_affinity, relative_ownership, topk_gates_from_scores


def diagnose_expert_usage(intermediates: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per expert: how often it is ranked 1st..E-th by the softmax, its mean gate mass
    before Top-K (softmax) and after (sparse gates), how many words give it weight > 0, and how many
    words it owns under Top-K (argmax of the gates), under the softmax argmax, and under the
    relative-affinity rule of ``softmax_assignment``.
    """
    E = check_intermediates(intermediates)
    scores = np.asarray(intermediates["gate_scores"], dtype=np.float64)
    gates = np.asarray(intermediates["gates"], dtype=np.float64)
    n = scores.shape[0]
    order = np.argsort(-scores, axis=1, kind="stable")        # order[i, r] = expert at rank r+1
    rank_of = np.empty_like(order)
    np.put_along_axis(rank_of, order, np.arange(E)[None, :].repeat(n, axis=0), axis=1)
    df = pd.DataFrame({"expert": np.arange(E)})
    for r in range(E):
        df[f"n_rank_{r + 1}"] = (rank_of == r).sum(axis=0)
    df["mean_softmax_prob"] = scores.mean(axis=0)
    df["mean_topk_gate"] = gates.mean(axis=0)
    df["n_words_weight_gt_0"] = (gates > 0).sum(axis=0)
    df["n_owned_topk"] = np.bincount(gates.argmax(axis=1), minlength=E)
    df["n_owned_softmax_argmax"] = np.bincount(scores.argmax(axis=1), minlength=E)
    df["n_owned_relative_softmax"] = (np.bincount(relative_ownership(scores), minlength=E)
                                      if n >= E else np.zeros(E, dtype=int))
    df["max_relative_affinity"] = relative_affinity(scores).max(axis=0)
    df["unused_under_topk"] = df["n_owned_topk"] == 0
    return df


def explain_expert_usage(diagnosis: pd.DataFrame, top_k: int) -> str:
    """A plain-language reading of the diagnosis table for the notebook."""
    E = len(diagnosis)
    n = int(diagnosis[[c for c in diagnosis if c.startswith("n_rank_")]].iloc[0].sum())
    lines = [f"{E} experts, Top-{top_k} routing, {n} words."]
    for _, row in diagnosis.iterrows():
        e = int(row["expert"])
        lines.append(
            f"expert {e}: ranked 1st for {row['n_rank_1']} words, outside the Top-{top_k} for "
            f"{n - row['n_words_weight_gt_0']} words (weight 0 there); mean softmax mass "
            f"{row['mean_softmax_prob']:.3f} -> {row['mean_topk_gate']:.3f} after Top-K; owns "
            f"{row['n_owned_topk']} words under Top-K, {row['n_owned_relative_softmax']} under the softmax rule.")
    unused = diagnosis.loc[diagnosis["unused_under_topk"], "expert"].tolist()
    if unused:
        lines.append(f"Unused under Top-K: expert(s) {unused} are never ranked 1st, so they own no word "
                     "(the softmax argmax would not help either: it is the same as the Top-K argmax).")
    else:
        lines.append("Every expert is ranked 1st for some word, so every expert owns words under Top-K.")
    return "\n".join(lines)


def constructed_unused_expert_intermediates(n_words: int = 60, num_experts: int = 3, top_k: int = 2,
                                            last_expert: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Intermediates of a gate that ranks ``last_expert`` last for every word (a reproducible demo of the
    unused expert): under Top-K it gets weight 0 everywhere and owns nothing; the softmax rule still
    gives it the words where it is relatively strongest.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, size=(n_words, num_experts))
    others = np.delete(np.arange(num_experts), last_expert)
    logits[:, last_expert] = logits[:, others].min(axis=1) - rng.uniform(0.1, 1.5, size=n_words)
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    topk = topk_gates_from_scores(scores, top_k)
    # Wordle-like expert outputs (peak at 4 tries), each expert shifted half a try from the previous one
    base = np.array([0.005, 0.06, 0.23, 0.33, 0.23, 0.11, 0.035])
    outputs = np.empty((n_words, num_experts, 7))
    for e in range(num_experts):
        shifted = np.interp(np.arange(7) - 0.5 * (e - (num_experts - 1) / 2), np.arange(7), base)
        outputs[:, e, :] = rng.dirichlet(200 * shifted / shifted.sum() + 0.05, size=n_words)
    final = np.einsum("ne,nek->nk", topk["gates"], outputs)
    return {"gate_scores": scores, **topk, "expert_outputs": outputs, "final_output": final,
            "load_balance_loss": 0.0}
