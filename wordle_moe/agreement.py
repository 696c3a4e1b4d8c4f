"""Does the expert grouping reproduce? Stability of primary-expert partitions across models.

Given R models that route the same n words (bootstrap replicas, cross-validation folds, seeds), each
gives a partition of the words by primary expert (argmax of its sparse gates). This module measures
how alike those partitions are and builds a consensus from them, all as array operations over the
replica axis:

- ``pairwise_ari``: adjusted Rand index (ARI) of every pair of partitions at once, from one matrix
  product of one-hot label matrices (the contingency tables of all pairs); equals scikit-learn's
  ``adjusted_rand_score`` pair by pair (special case included: identical partitions give 1).
- ``random_baseline_ari``: the same for partitions with each replica's labels shuffled over the words
  (group sizes kept), i.e. the ARI that chance alone gives (≈ 0).
- ``align_labels``: expert numbers are arbitrary per model, so expert i of one replica is matched to
  label j of a reference by minimising the squared distance between their routed mean outputs
  (Hungarian matching; an exhaustive vectorised search over label permutations for up to 7 experts).
- ``co_assignment``: share of replicas putting words i and j with the same expert (label-free).
- ``consensus``: each word's most frequent aligned expert and its share (confidence).

ARI needs no label alignment; the consensus and the per-expert shares do.
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

ROUTING_KEYS = ("gate_scores", "top_k_indices", "gates", "expert_outputs", "final_output")
MAX_EXHAUSTIVE_EXPERTS = 7   # 7! = 5040 permutations per replica: still one cheap array operation


def replica_routing(model: Any, X: Any) -> dict[str, np.ndarray]:
    """Every replica's routing of the rows X as numpy: gate_scores (R,n,E), top_k_indices (R,n,k),
    gates (R,n,E) sparse rows summing to 1, expert_outputs (R,n,E,7), final_output (R,n,7).
    ``model`` is one (batched) model or a list of them (e.g. the bootstrap's), stacked along R."""
    import torch

    if isinstance(model, (list, tuple)):
        parts = [replica_routing(m, X) for m in model]
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in ROUTING_KEYS}
    model.eval()
    with torch.no_grad():
        out = model(np.asarray(X, dtype=np.float32), return_intermediate=True)
    return {k: out[k].detach().numpy() for k in ROUTING_KEYS}


def primary_experts(gates: np.ndarray) -> np.ndarray:
    """Each word's primary expert per replica: argmax of the sparse gates (ties -> lowest index), (R, n)."""
    g = np.asarray(gates)
    if g.ndim == 2:
        g = g[None]
    if g.ndim != 3:
        raise ValueError(f"gates must be (R, n, E) or (n, E); got shape {np.shape(gates)}")
    return g.argmax(axis=-1)


def routed_mean_outputs(expert_outputs: np.ndarray, gates: np.ndarray) -> np.ndarray:
    """Each expert's gate-weighted mean output over the words it handles, (R, E, 7); NaN rows for an expert
    whose gate is 0 on every word (it predicts nothing there, so nothing is reported for it)."""
    out = np.asarray(expert_outputs, dtype=np.float64)
    g = np.asarray(gates, dtype=np.float64)
    if out.ndim == 3:
        out, g = out[None], g[None]
    if out.ndim != 4 or g.shape != out.shape[:3]:
        raise ValueError(f"need expert_outputs (R,n,E,7) and gates (R,n,E); got {out.shape} and {g.shape}")
    total = g.sum(axis=1)                                                   # (R, E)
    weighted = np.einsum("rne,rnek->rek", g, out)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total[..., None] > 0, weighted / total[..., None], np.nan)


def _one_hot(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """(R, n) integer labels -> (R, n, n_labels) float one-hot."""
    return (labels[..., None] == np.arange(n_labels)).astype(np.float64)


def _check_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.shape[1] == 0:
        raise ValueError(f"labels must be (R partitions, n words) with n >= 1; got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
        raise ValueError("labels must be non-negative integers (expert indices)")
    return lab, int(lab.max()) + 1


def pairwise_ari(labels: np.ndarray) -> np.ndarray:
    """ARI of every pair of partitions, (R, R) symmetric with 1 on the diagonal.

    All R² contingency tables come from one product of one-hot matrices; per pair
    ARI = 2(tp·tn − fn·fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn)) over word pairs (tp: together in both),
    and 1 when the two partitions agree on every pair (scikit-learn's convention).
    """
    lab, K = _check_labels(labels)
    R, n = lab.shape
    A = _one_hot(lab, K).transpose(1, 0, 2).reshape(n, R * K)          # words × (replica, label)
    table = (A.T @ A).reshape(R, K, R, K)                                  # table[r, :, s, :] = contingency
    sizes = A.sum(axis=0).reshape(R, K)                                    # group sizes per replica
    together_both = 0.5 * (table * (table - 1)).sum(axis=(1, 3))           # Σ C(n_ij, 2)
    together = 0.5 * (sizes * (sizes - 1)).sum(axis=1)                     # Σ C(a_i, 2) per replica
    return _ari_from_pair_counts(together_both, together[:, None], together[None, :], n)


def _ari_from_pair_counts(tp: np.ndarray, together_a: np.ndarray, together_b: np.ndarray, n: int) -> np.ndarray:
    """ARI from word-pair counts: ``tp`` pairs together in both partitions, ``together_a``/``together_b`` pairs
    together in each; 1 when the partitions agree on every pair (scikit-learn's convention)."""
    fn = together_a - tp        # together in a, apart in b
    fp = together_b - tp        # apart in a, together in b
    tn = n * (n - 1) / 2 - tp - fn - fp
    denom = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    with np.errstate(invalid="ignore", divide="ignore"):
        ari = np.where(denom > 0, 2.0 * (tp * tn - fn * fp) / np.where(denom > 0, denom, 1.0), 1.0)
    return np.where((np.abs(fn) < 0.5) & (np.abs(fp) < 0.5), 1.0, ari)


def paired_ari(labels_a: np.ndarray, labels_b: np.ndarray) -> np.ndarray:
    """ARI of partition a[r] with partition b[r] for every r at once, (R,): e.g. each replica's final grouping
    against the grouping its gate started from. Same formula and conventions as ``pairwise_ari``."""
    a, Ka = _check_labels(np.atleast_2d(labels_a))
    b, Kb = _check_labels(np.atleast_2d(labels_b))
    if a.shape != b.shape:
        raise ValueError(f"labels_a and labels_b must have the same shape; got {a.shape} and {b.shape}")
    n = a.shape[1]
    table = np.einsum("rni,rnj->rij", _one_hot(a, Ka), _one_hot(b, Kb))   # (R, Ka, Kb) contingency tables
    tp = 0.5 * (table * (table - 1)).sum(axis=(1, 2))
    ta = 0.5 * (table.sum(2) * (table.sum(2) - 1)).sum(1)                 # pairs together in a
    tb = 0.5 * (table.sum(1) * (table.sum(1) - 1)).sum(1)                 # pairs together in b
    return _ari_from_pair_counts(tp, ta, tb, n)


def start_labels(model: Any, X: Any) -> np.ndarray:
    """Each replica's grouping at the START of training (R, n): the primary expert under the gate parameters
    the trainer recorded before the first step (``model.start_gate_``), with the model's own standardiser
    and router. ARI is label-free, so the experts' relabelling after training does not matter."""
    import torch

    start = getattr(model, "start_gate_", None)
    if start is None:
        raise ValueError("the model has no recorded starting gate (trained before start_gate_ was kept)")
    trained = {k: getattr(model, k).detach().clone() for k in start}
    try:
        with torch.no_grad():
            for k, v in start.items():
                getattr(model, k).copy_(v)
        return primary_experts(replica_routing(model, X)["gates"])
    finally:
        with torch.no_grad():
            for k, v in trained.items():
                getattr(model, k).copy_(v)


def ari_with_start(model: Any, X: Any) -> np.ndarray:
    """Per replica (R,): ARI between its final grouping of the rows X and the grouping its gate started from
    (1 = the training kept the starting split, 0 = no more alike than chance). ``model``: one batched model or
    a list of them (the bootstrap's)."""
    if isinstance(model, (list, tuple)):
        return np.concatenate([ari_with_start(m, X) for m in model])
    final = primary_experts(replica_routing(model, X)["gates"])
    return paired_ari(final, start_labels(model, X))


def expert_gaps(model: Any, X: Any) -> dict[str, np.ndarray]:
    """How far each replica's experts are apart, (R,) each: ``deviation_norm`` = sqrt(Σ_e ||Δ_e||² + ||δ_e||²) of the
    shared-base experts (0: copies of one softmax regression; NaN without a shared base), ``routed_tries_gap`` =
    the spread (max − min over experts) of the expected tries of each expert's ROUTED mean output on the rows X
    (experts AND their words differ), and ``same_word_tries_gap`` = the mean over the rows of that spread between
    the experts' outputs for the SAME word (the experts alone differ; a measure of the experts, not a prediction)."""
    from .grouping import expected_tries
    from .model import SKIP_PARAM

    models = model if isinstance(model, (list, tuple)) else [model]
    norms, gaps, same = [], [], []
    for m in models:
        if getattr(m.config, "shared_base", False) and m.config.num_experts > 1:
            dev = getattr(m, SKIP_PARAM).detach().pow(2).sum((1, 2, 3)) + m.expert_b2.detach().pow(2).sum((1, 2))
            norms.append(dev.sqrt().numpy())
        else:
            norms.append(np.full(m.replicas, 0.0 if m.config.num_experts == 1 else np.nan))
        r = replica_routing(m, X)
        import torch

        tries = expected_tries(torch.as_tensor(routed_mean_outputs(r["expert_outputs"], r["gates"]))).numpy()
        gaps.append(np.nanmax(tries, axis=1) - np.nanmin(tries, axis=1))
        each = expected_tries(torch.as_tensor(r["expert_outputs"])).numpy()           # (R, n, E)
        same.append((each.max(axis=-1) - each.min(axis=-1)).mean(axis=1))
    return {"deviation_norm": np.concatenate(norms), "routed_tries_gap": np.concatenate(gaps),
            "same_word_tries_gap": np.concatenate(same)}


def procedure_table(X: Any, P: Any, configs: Mapping[str, Any], *, cv: int = 3, B: int = 10, seed: int = 0,
                    n_reported: Any | None = None, progress: bool = False, n_jobs: int | None = None) -> pd.DataFrame:
    """Each named configuration trained as a B-replica bootstrap on the training words of ``cv`` folds (penalties
    by inner CV inside those words: nested), scored on the held-out words, its grouping read on ALL words.

    One row per configuration: held-out RPS of the bootstrap mean ± SE over words, the paired difference to the
    FIRST configuration ± SE, the mean pairwise ARI between the replicas' groupings and their ARI with the grouping
    each started from (fold means), the smallest expert's share of the words, and how far the experts are apart
    (deviation norm and routed expected-tries gap, mean with a 5–95% range over all replicas). The configurations
    run in ``n_jobs`` worker processes, each one's folds as one batched model (``bootstrap.fit_bootstrap_folds``).
    """
    from sklearn.model_selection import KFold

    from .parallel import parallel_map

    X, P = np.asarray(X, dtype=np.float64), np.asarray(P, dtype=np.float64)
    folds = list(KFold(cv, shuffle=True, random_state=seed).split(X))
    task = partial(_procedure_scores, X=X, P=P, folds=folds, B=B, seed=seed, n_reported=n_reported)
    scored = parallel_map(task, list(configs.values()), n_jobs, desc="procedures", progress=progress)
    first_loss = scored[0][0]
    rows = []
    for (name, cfg), (loss, row) in zip(configs.items(), scored):
        diff = loss - first_loss
        rows.append({"procedure": name, "num_experts": cfg.num_experts, "top_k": cfg.top_k,
                     "gate_lr_scale": cfg.gate_lr_scale, "gate_init": cfg.gate_init,
                     "rps": float(loss.mean()), "rps_se": float(loss.std(ddof=1) / np.sqrt(len(loss))),
                     "rps_diff_vs_first": float(diff.mean()),
                     "rps_diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))), **row, "folds": cv, "B": B})
    table = pd.DataFrame(rows)
    # better than the first row: lower RPS by more than two standard errors of the paired difference
    table["beats_first"] = (table["rps_diff_vs_first"] + 2 * table["rps_diff_se"]) < 0
    return table


def _procedure_scores(cfg: Any, *, X: np.ndarray, P: np.ndarray, folds: list, B: int, seed: int,
                      n_reported: Any | None) -> tuple[np.ndarray, dict[str, float]]:
    """One configuration of ``procedure_table`` (a picklable task): per-word held-out RPS (n,) and its grouping and
    expert-gap columns. Replicas f·B .. f·B+B−1 of the batched model are fold f's bootstrap."""
    from .bootstrap import fit_bootstrap_folds
    from .metrics import rps
    from .training import predict_replicas

    model = fit_bootstrap_folds(X, P, folds, config=cfg, B=B, seed=seed, n_reported=n_reported)
    pred = predict_replicas(model, X)                                   # (F·B, n, 7)
    labels = primary_experts(replica_routing(model, X)["gates"])        # (F·B, n)
    start = ari_with_start(model, X) if cfg.num_experts > 1 else None
    gaps = expert_gaps(model, X)
    loss = np.zeros(len(X))
    between, with_start, small = [], [], []
    for f, (_, te) in enumerate(folds):
        sl = slice(f * B, (f + 1) * B)
        loss[te] = rps(P[te], pred[sl, te].mean(axis=0))
        between.append(mean_pairwise_ari(labels[sl]) if cfg.num_experts > 1 else np.nan)
        with_start.append(float(start[sl].mean()) if cfg.num_experts > 1 else np.nan)
        share = (labels[sl, :, None] == np.arange(cfg.num_experts)).mean(axis=1)      # (B, E)
        small.append(float(share.min(axis=1).mean()))
    nrm, gap, sw = gaps["deviation_norm"], gaps["routed_tries_gap"], gaps["same_word_tries_gap"]
    finite = np.isfinite(nrm).any()
    return loss, {
        "ari_between_replicas": float(np.nanmean(between)) if cfg.num_experts > 1 else np.nan,
        "ari_with_start": float(np.nanmean(with_start)) if cfg.num_experts > 1 else np.nan,
        "min_group_share": float(np.mean(small)),
        "deviation_norm": float(np.nanmean(nrm)) if finite else np.nan,
        "deviation_norm_q05": float(np.nanquantile(nrm, .05)) if finite else np.nan,
        "deviation_norm_q95": float(np.nanquantile(nrm, .95)) if finite else np.nan,
        "routed_tries_gap": float(gap.mean()), "routed_tries_gap_q05": float(np.quantile(gap, .05)),
        "routed_tries_gap_q95": float(np.quantile(gap, .95)),
        "same_word_tries_gap": float(sw.mean()), "same_word_tries_gap_q05": float(np.quantile(sw, .05)),
        "same_word_tries_gap_q95": float(np.quantile(sw, .95))}


def expert_count_comparison(X: Any, P: Any, config: Any, counts: Sequence[int] = (1, 2, 3, 4), **kw: Any
                            ) -> pd.DataFrame:
    """``procedure_table`` for E = 1, 2, 3, 4 experts at ``config`` (top-k capped at E): does more than one expert
    beat one? ``beats_first`` compares every E with E = 1."""
    configs = {f"E={E}": config.replace(num_experts=E, top_k=min(config.top_k, E)) for E in counts}
    return procedure_table(X, P, configs, **kw)


def gate_origin_comparison(X: Any, P: Any, config: Any, **kw: Any) -> pd.DataFrame:
    """Learned or imposed? ``procedure_table`` of the configuration as set, its gate kept FIXED at its start
    (GATE_LR_SCALE=0), and two freely learning controls: the same start at the full rate (GATE_LR_SCALE=1) and a
    random start at the full rate (GATE_INIT="random")."""
    configs = {"as set": config, "gate fixed at its start": config.replace(gate_lr_scale=0.0),
               "free gate (full rate)": config.replace(gate_lr_scale=1.0),
               "free gate, random start": config.replace(gate_lr_scale=1.0, gate_init="random")}
    return procedure_table(X, P, configs, **kw)


def mean_pairwise_ari(labels: np.ndarray) -> float:
    """Mean ARI over the R·(R−1)/2 distinct pairs of partitions (NaN for fewer than two)."""
    ari = pairwise_ari(labels)
    R = ari.shape[0]
    if R < 2:
        return float("nan")
    return float(ari[np.triu_indices(R, k=1)].mean())


def random_baseline_ari(labels: np.ndarray, seed: int = 0, repeats: int = 1) -> float:
    """Mean pairwise ARI after shuffling each replica's labels over the words (sizes kept): chance level, ≈ 0."""
    lab, _ = _check_labels(labels)
    rng = np.random.default_rng(seed)
    return float(np.mean([mean_pairwise_ari(rng.permuted(lab, axis=1)) for _ in range(repeats)]))


def co_assignment(labels: np.ndarray) -> np.ndarray:
    """(n, n) share of partitions that put words i and j in the same group (label-free; 1 on the diagonal)."""
    lab, K = _check_labels(labels)
    R, n = lab.shape
    A = _one_hot(lab, K).transpose(1, 0, 2).reshape(n, R * K)
    return (A @ A.T) / R


def _alignment_costs(means: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """cost[r, i, j] = squared distance of replica r's expert i to reference label j; an expert without
    words (NaN row) costs the same for every label, so it takes whichever label is left."""
    diff = means[:, :, None, :] - reference[None, None, :, :]
    cost = (diff ** 2).sum(axis=-1)
    return np.where(np.isnan(cost), 0.0, cost)


def _best_permutations(cost: np.ndarray) -> np.ndarray:
    """perm[r, i] = label given to replica r's expert i, minimising Σ_i cost[r, i, perm[r, i]] (R, E)."""
    R, E, _ = cost.shape
    if E <= MAX_EXHAUSTIVE_EXPERTS:
        perms = np.array(list(itertools.permutations(range(E))))           # (P, E)
        totals = cost[:, np.arange(E)[None, :], perms].sum(axis=-1)         # (R, P)
        return perms[totals.argmin(axis=1)]
    return np.stack([linear_sum_assignment(c)[1] for c in cost])          # Hungarian, one replica at a time


def align_labels(means: np.ndarray, reference: np.ndarray | None = None, max_iter: int = 20) -> np.ndarray:
    """Label permutation (R, E) mapping each replica's experts onto common labels by their routed mean outputs.

    ``reference`` (E, 7) fixes what label j means (e.g. a single model's routed means); by default replica 0's.
    The reference is then refined to the mean of the aligned replicas until the matching no longer changes.
    """
    m = np.asarray(means, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"means must be (R, E, 7); got {m.shape}")
    R, E, _ = m.shape
    ref = np.nan_to_num(m[0] if reference is None else np.asarray(reference, dtype=np.float64))
    if ref.shape != m.shape[1:]:
        raise ValueError(f"reference must be {m.shape[1:]}; got {ref.shape}")
    perm = None
    for _ in range(max_iter):
        new = _best_permutations(_alignment_costs(m, ref))
        if perm is not None and np.array_equal(new, perm):
            break
        perm = new
        aligned = np.full_like(m, np.nan)
        aligned[np.arange(R)[:, None], perm] = m
        with warnings.catch_warnings():   # a label no replica's expert with words took: keep the old reference
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_ref = np.nanmean(aligned, axis=0)
        ref = np.where(np.isfinite(mean_ref), mean_ref, ref)
    return perm


def relabel(labels: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Labels (R, n) rewritten through each replica's permutation (R, E): new = perm[r, old]."""
    return np.take_along_axis(np.asarray(perm), np.asarray(labels), axis=1)


def assignment_shares(aligned_labels: np.ndarray, num_experts: int) -> np.ndarray:
    """(n, E) share of replicas giving each word to each (aligned) expert; rows sum to 1."""
    return _one_hot(np.asarray(aligned_labels), num_experts).mean(axis=0)


def consensus(shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(consensus expert = most frequent label, ties -> lowest; confidence = its share), each (n,)."""
    s = np.asarray(shares, dtype=np.float64)
    return s.argmax(axis=1), s.max(axis=1)


@dataclass
class GroupingStability:
    """Result of ``grouping_stability``: the consensus grouping and how reproducible the partitions are."""

    labels: np.ndarray              # (R, n) primary expert per replica, the replica's own numbering
    aligned_labels: np.ndarray      # (R, n) the same in the common (aligned) numbering
    permutations: np.ndarray        # (R, E) replica expert i -> common label permutations[r, i]
    routed_means: np.ndarray        # (R, E, 7) routed mean outputs in the common numbering (NaN: no word)
    shares: np.ndarray              # (n, E) share of replicas giving the word to each expert
    consensus_expert: np.ndarray    # (n,)
    confidence: np.ndarray          # (n,) share of replicas agreeing with the consensus
    pairwise_ari: np.ndarray        # (R, R)
    mean_ari: float
    baseline_ari: float             # size-matched random partitions
    baseline_pairwise_ari: np.ndarray = field(repr=False)  # (R, R) of one shuffled draw (for figures)

    @property
    def num_replicas(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_experts(self) -> int:
        return int(self.shares.shape[1])

    def off_diagonal(self, baseline: bool = False) -> np.ndarray:
        """The distinct-pair ARI values (replica or baseline), 1-D."""
        a = self.baseline_pairwise_ari if baseline else self.pairwise_ari
        return a[np.triu_indices(a.shape[0], k=1)]

    def summary(self) -> dict[str, Any]:
        """Plain numbers for run_manifest.json."""
        pairs = self.off_diagonal()
        has = pairs.size > 0
        return {
            "n_replicas": self.num_replicas, "n_words": int(self.labels.shape[1]), "num_experts": self.num_experts,
            "mean_pairwise_ari": self.mean_ari, "baseline_ari": self.baseline_ari,
            "ari_q05": float(np.quantile(pairs, 0.05)) if has else float("nan"),
            "ari_q95": float(np.quantile(pairs, 0.95)) if has else float("nan"),
            "mean_confidence": float(self.confidence.mean()),
            "share_words_confidence_ge_0.8": float((self.confidence >= 0.8).mean()),
            "consensus_group_sizes": np.bincount(self.consensus_expert, minlength=self.num_experts).tolist(),
        }


def grouping_stability(routing: Mapping[str, np.ndarray], reference: np.ndarray | None = None,
                       seed: int = 0) -> GroupingStability:
    """Stability of the primary-expert grouping across the replicas of ``routing`` (``replica_routing`` output:
    gates (R,n,E) and expert_outputs (R,n,E,7)). ``reference`` (E,7) anchors the label numbering (see
    ``align_labels``); ``seed`` drives the random-partition baseline."""
    gates = np.asarray(routing["gates"], dtype=np.float64)
    if gates.ndim != 3:
        raise ValueError(f"routing['gates'] must be (R, n, E); got {gates.shape}")
    labels = primary_experts(gates)
    means = routed_mean_outputs(routing["expert_outputs"], gates)
    perm = align_labels(means, reference)
    R, E = perm.shape
    aligned = relabel(labels, perm)
    aligned_means = np.full_like(means, np.nan)
    aligned_means[np.arange(R)[:, None], perm] = means
    shares = assignment_shares(aligned, E)
    cons, conf = consensus(shares)
    ari = pairwise_ari(labels)
    base = pairwise_ari(np.random.default_rng(seed).permuted(labels, axis=1))
    iu = np.triu_indices(R, k=1)
    return GroupingStability(labels=labels, aligned_labels=aligned, permutations=perm, routed_means=aligned_means,
                             shares=shares, consensus_expert=cons, confidence=conf, pairwise_ari=ari,
                             mean_ari=float(ari[iu].mean()) if R > 1 else float("nan"),
                             baseline_ari=float(base[iu].mean()) if R > 1 else float("nan"),
                             baseline_pairwise_ari=base)


__all__ = ["GroupingStability", "align_labels", "ari_with_start", "expert_count_comparison", "expert_gaps",
           "gate_origin_comparison", "procedure_table", "assignment_shares", "co_assignment", "consensus",
           "grouping_stability", "mean_pairwise_ari", "pairwise_ari", "primary_experts", "random_baseline_ari",
           "paired_ari", "relabel", "replica_routing", "routed_mean_outputs", "start_labels"]
