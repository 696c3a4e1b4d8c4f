"""Which expert owns which word: by the Top-K gates (what the model uses) and by the full softmax.

Why two rules: under Top-K routing (TOP_K < NUM_EXPERTS) an expert ranked below K gets weight 0
for that word, and an expert that is never ranked first owns no word at all. Note that the plain
argmax of the full softmax is the SAME as the argmax of the Top-K gates (renormalising the top K
keeps their order), so "argmax of the softmax" cannot fix an empty expert; the softmax assignment
below therefore uses each expert's probability relative to its own average (see
``softmax_assignment``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from wordle_moe.paths import PRED_COLUMNS

REQUIRED_KEYS = ("gate_scores", "gates", "final_output")


def assignment_columns(num_experts: int) -> list[str]:
    """The fixed output column order: word, primary_expert, expert_e_weight..., pred_... columns."""
    return ["word", "primary_expert", *[f"expert_{e}_weight" for e in range(num_experts)], *PRED_COLUMNS]


def check_intermediates(intermediates: Mapping[str, np.ndarray], n_words: int | None = None) -> int:
    """Validate the intermediates dict (keys, shapes, row sums); return the number of experts."""
    missing = [k for k in REQUIRED_KEYS if k not in intermediates]
    if missing:
        raise KeyError(f"intermediates lack {missing}; expected keys from wordle_moe.training.intermediates()")
    scores = np.asarray(intermediates["gate_scores"])
    gates = np.asarray(intermediates["gates"])
    final = np.asarray(intermediates["final_output"])
    if scores.ndim != 2 or gates.shape != scores.shape:
        raise ValueError(f"gate_scores {scores.shape} and gates {gates.shape} must both be (n_words, n_experts)")
    if final.shape != (scores.shape[0], len(PRED_COLUMNS)):
        raise ValueError(f"final_output has shape {final.shape}, expected ({scores.shape[0]}, {len(PRED_COLUMNS)})")
    if n_words is not None and scores.shape[0] != n_words:
        raise ValueError(f"{n_words} words but intermediates have {scores.shape[0]} rows")
    return scores.shape[1]


def _normalised(a: np.ndarray) -> np.ndarray:
    """Rows as float64 summing to exactly 1 (the model works in float32; the CSV promises sum 1)."""
    a = np.clip(np.asarray(a, dtype=np.float64), 0.0, None)
    return a / a.sum(axis=1, keepdims=True)


def _frame(words: Sequence[str], primary: np.ndarray, weights: np.ndarray, preds: np.ndarray) -> pd.DataFrame:
    E = weights.shape[1]
    df = pd.DataFrame({"word": np.asarray(words, dtype=object), "primary_expert": primary.astype(int)})
    for e in range(E):
        df[f"expert_{e}_weight"] = weights[:, e]
    for j, col in enumerate(PRED_COLUMNS):
        df[col] = preds[:, j]
    return df[assignment_columns(E)]


def topk_gates_from_scores(gate_scores: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The design notes' Top-K procedure in numpy: top-k of the softmax, renormalised, scattered to a sparse (n,E).

    Ties are broken towards the lower expert index (stable sort), as torch.topk does on CPU.
    """
    scores = np.asarray(gate_scores, dtype=np.float64)
    n, E = scores.shape
    if not 1 <= k <= E:
        raise ValueError(f"TOP_K={k} must be in 1..NUM_EXPERTS ({E})")
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, idx, axis=1)
    gates = np.zeros_like(scores)
    np.put_along_axis(gates, idx, top / top.sum(axis=1, keepdims=True), axis=1)
    return {"top_k_scores": top, "top_k_indices": idx, "gates": gates}


def topk_assignment(words: Sequence[str], intermediates: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Each word's weights = the sparse Top-K gates the model actually mixes with; primary = their argmax.

    Experts outside a word's Top-K have weight 0 for it; an expert never ranked first owns no word.
    """
    check_intermediates(intermediates, len(words))
    gates = _normalised(intermediates["gates"])
    primary = np.argmax(gates, axis=1)  # ties -> lowest index, deterministic
    return _frame(words, primary, gates, _normalised(intermediates["final_output"]))


def relative_affinity(gate_scores: np.ndarray) -> np.ndarray:
    """p_ie / mean_i p_ie: how much more than usual word i is routed to expert e (1 = average)."""
    p = np.asarray(gate_scores, dtype=np.float64)
    return p / np.maximum(p.mean(axis=0, keepdims=True), 1e-12)


def relative_ownership(gate_scores: np.ndarray, min_words: int = 1) -> np.ndarray:
    """Owner of each word under the relative-affinity rule with the non-empty guarantee (see softmax_assignment)."""
    rel = relative_affinity(gate_scores)
    n, E = rel.shape
    if n < min_words * E:
        raise ValueError(f"{n} words cannot give each of {E} experts {min_words} word(s)")
    primary = np.argmax(rel, axis=1)
    counts = np.bincount(primary, minlength=E)
    for e in range(E):
        for i in np.argsort(-rel[:, e], kind="stable"):
            if counts[e] >= min_words:
                break
            owner = primary[i]
            if owner != e and counts[owner] > min_words:
                counts[owner] -= 1
                counts[e] += 1
                primary[i] = e
    return primary


def softmax_assignment(words: Sequence[str], intermediates: Mapping[str, np.ndarray],
                       min_words: int = 1) -> pd.DataFrame:
    """Weights = the full softmax gate probabilities (all experts, before Top-K); every expert owns words.

    Ownership rule (documented because the plain softmax argmax equals the Top-K argmax and so
    cannot revive an unused expert):

    1. Each word goes to the expert with the highest RELATIVE affinity p_ie / mean_i p_ie —
       the expert for which this word is most typical compared with that expert's average share.
    2. If an expert still owns fewer than ``min_words`` words, it takes the words where its own
       relative affinity is highest, one at a time, only from experts that keep at least
       ``min_words`` words themselves (so the guarantee never empties another expert).

    Needs at least ``min_words * NUM_EXPERTS`` words; the weight columns still sum to 1 per row.
    """
    check_intermediates(intermediates, len(words))
    scores = _normalised(intermediates["gate_scores"])
    primary = relative_ownership(scores, min_words)
    df = _frame(words, primary, scores, _normalised(intermediates["final_output"]))
    df.attrs["rule"] = f"relative softmax affinity p_ie / mean_i p_ie, min_words={min_words} per expert"
    return df


def ownership_counts(assignment: pd.DataFrame, num_experts: int | None = None) -> pd.Series:
    """Number of words each expert owns (zeros included), indexed by expert."""
    if num_experts is None:
        num_experts = sum(c.startswith("expert_") and c.endswith("_weight") for c in assignment.columns)
    counts = assignment["primary_expert"].value_counts().reindex(range(num_experts), fill_value=0)
    counts.index.name = "expert"
    return counts.rename("n_words")
