"""Grid search over MoE configurations (the grids of the configuration knobs) and the router comparison.

Every configuration is scored by K-fold cross-validation (mean RPS, its standard error over
folds, MAE) and, beside accuracy, by how differentiated and how reproducible its experts are:
measured on the held-out words, the rank distance and pairwise JS divergence between the experts'
ROUTED mean outputs (each expert's gate-weighted mean over the words it handles, never over words
routed elsewhere), the routing entropy, the expert usage and the override rate; and, with every
fold's model routing ALL words, the stability of the grouping (mean pairwise adjusted Rand index
of the folds' primary-expert partitions, beside a size-matched random baseline ≈ 0).
Configurations run in parallel with ``joblib.Parallel`` under whatever ``joblib.parallel_config``
is active (loky, threads, Dask...).

Selection rule (``select_configuration``): among configurations whose RPS is within one standard
error of the best and whose every expert group holds at least MIN_GROUP_SHARE (10%) of the words,
take the most stable grouping (largest stability ARI, compared at two decimals), then the most
differentiated (largest routed JS), then the lowest RPS. If no configuration within one standard
error is balanced, the balance condition is dropped (the ``balanced`` column shows it).
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.model_selection import KFold
from tqdm.auto import tqdm

from wordle_moe import agreement, metrics
from wordle_moe.config import ROUTERS, ConfigError, MoEConfig
from wordle_moe.crossfit import fold_weights, validation_split
from wordle_moe.parallel import shared_pool_config

# the four routers of the product (config.ROUTERS may hold extra engine variants, e.g. aux_free_bias); the knob
# grids are the GRID_* knobs of moe_booststrap.py, passed in as arguments
PRODUCT_ROUTERS = tuple(r for r in ("topk", "noisy_topk", "expert_choice", "reputation") if r in ROUTERS)

KNOB_COLUMNS = ["num_experts", "top_k", "hidden_size", "router", "aux_loss_weight", "expert_diversity_coef",
                "expert_output_diversity_coef", "expert_js_divergence_coef"]
SCORE_COLUMNS = ["rps_mean", "rps_se", "mae_pp_mean", "mae_pp_se", "js_mean", "rank_distance", "routed_js",
                 "routing_entropy", "usage_entropy", "load_cv", "override_rate", "override_rate_training",
                 "min_usage", "expert_usage", "stability_ari", "stability_ari_baseline", "ari_with_start",
                 "min_group_share", "seconds"]
MIN_GROUP_SHARE = 0.10   # selection rule: every expert group must hold at least this share of the words
ROUTER_COMPARISON_COLUMNS = ["router", "num_experts", "top_k", "rps", "rps_se", "mae_pp", "load_cv", "usage_entropy",
                             "routed_js", "stability_ari", "stability_ari_baseline", "override_rate",
                             "override_rate_training", "min_group_share", "rank_distance", "routing_entropy",
                             "expert_usage", "n_folds"]


def expand_grid(grid: Mapping[str, Sequence[Any]], base_config: MoEConfig | None = None) -> list[dict[str, Any]]:
    """Every combination of ``grid`` (knob names in either case) as dicts; TOP_K > NUM_EXPERTS is skipped."""
    base = base_config or MoEConfig()
    names = [k.lower() for k in grid]
    known = set(base.to_dict())
    unknown = [k.upper() for k in names if k not in known]
    if unknown:
        raise ConfigError(f"unknown knob(s) in the grid: {unknown}")
    values = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v] for v in grid.values()]
    if any(len(v) == 0 for v in values):
        raise ValueError("every grid entry needs at least one value")
    combos = []
    for combo in itertools.product(*values):
        knobs = dict(zip(names, combo))
        cfg = base.replace(**knobs)
        if cfg.top_k > cfg.num_experts:
            continue  # invalid by construction: skipped, not an error
        cfg.validate()
        combos.append(knobs)
    return combos


@contextmanager
def _single_thread_torch() -> Iterator[None]:
    """One torch thread inside a configuration: avoids oversubscription and keeps results backend-independent."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit_moe(X: np.ndarray, P: np.ndarray, config: MoEConfig, n_reported: np.ndarray | None = None) -> Any:
    """One MoE (R=1) trained on (X, P) with a seeded validation split for early stopping."""
    from wordle_moe.training import train_moe

    tr, va = validation_split(len(X), config.val_fraction, config.seed)
    nr_tr = None if n_reported is None else n_reported[tr]
    nr_va = None if n_reported is None else n_reported[va]
    model, _ = train_moe(X[tr], P[tr], X[va], P[va], config=config, n_reported=nr_tr, n_reported_val=nr_va)
    return model


def fit_folds(X: np.ndarray, P: np.ndarray, config: MoEConfig, folds: Sequence[tuple[np.ndarray, np.ndarray]],
              n_reported: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """The K fold models trained as ONE batched model (replica r = fold r, trained on its own training rows only,
    stopped on its own validation rows); returns (model, train weights (K, n))."""
    from wordle_moe.training import fit_replicas

    train_w, val_w = fold_weights(len(X), folds, config.val_fraction, config.seed)
    model, _ = fit_replicas(X, P, X, P, config, train_weight=train_w, val_weight=val_w, n_reported=n_reported,
                            n_reported_val=n_reported)
    return model, train_w


def _entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    p = np.clip(p, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=axis)


def bucket_ranks(mean_outputs: np.ndarray) -> np.ndarray:
    """Rank of each bucket within each expert's mean output, 1 = most probable bucket (E, 7)."""
    return np.vstack([rankdata(-row, method="average") for row in np.atleast_2d(mean_outputs)])


def routed_pair_measures(mean_outputs: np.ndarray) -> tuple[float, float]:
    """(mean rank distance, mean JS divergence) over the expert pairs whose routed mean outputs (E, 7) both exist
    (an expert that handles no word has a NaN row and takes part in no pair); 0.0 when no pair exists."""
    m = np.asarray(mean_outputs, dtype=float)
    live = np.flatnonzero(np.isfinite(m).all(axis=1))
    if len(live) < 2:
        return 0.0, 0.0
    a, b = np.array(list(itertools.combinations(live, 2))).T
    ranks = np.full(m.shape, np.nan)
    ranks[live] = bucket_ranks(m[live])
    return (float(np.linalg.norm(ranks[a] - ranks[b], axis=1).mean()),
            float(metrics.js_divergence(m[a], m[b]).mean()))


def overridden_mask(gate_scores: np.ndarray, selected: np.ndarray, top_k: int) -> np.ndarray:
    """(..., n) True where the selected experts (0/1 mask (..., n, E)) differ from the gate's own top-k."""
    scores = np.asarray(gate_scores, dtype=float)
    own = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(own, np.argsort(-scores, axis=-1, kind="stable")[..., :top_k], True, axis=-1)
    return (own != (np.asarray(selected) > 0)).any(axis=-1)


def override_rate(gate_scores: np.ndarray, selected: np.ndarray, top_k: int) -> float:
    """Share of rows whose selected experts (0/1 mask (n, E)) differ from the gate's own top-k of ``gate_scores``."""
    return float(overridden_mask(gate_scores, selected, top_k).mean())


def differentiation(inter: Mapping[str, Any]) -> dict[str, Any]:
    """Expert-differentiation measures from ``intermediates(model, X)`` of one model.

    Expert outputs are summarised by their ROUTED mean (gate-weighted over the words each expert handles):
    an expert's output on words routed elsewhere never enters the prediction, so it is not measured.
    """
    gate_scores = np.asarray(inter["gate_scores"], dtype=float)
    gates = np.asarray(inter["gates"], dtype=float)
    top_idx = np.asarray(inter["top_k_indices"])
    E = gate_scores.shape[1]
    routed = agreement.routed_mean_outputs(inter["expert_outputs"], gates)[0]   # (E, 7), NaN: handles no word
    rank_distance, routed_js = routed_pair_measures(routed)
    usage = np.bincount(top_idx[:, 0], minlength=E) / len(top_idx)    # share of words whose first choice is e
    load = gates.mean(axis=0)                                         # gate mass per expert
    selected = inter.get("dispatch")
    if selected is None:
        selected = (top_idx[..., None] == np.arange(E)).any(axis=-2)
    return {
        "rank_distance": rank_distance,
        "routed_js": routed_js,
        "routing_entropy": float(_entropy_bits(gate_scores).mean()),
        "usage_entropy": float(_entropy_bits(usage) / np.log2(E)) if E > 1 else 0.0,
        "load_cv": float(load.std() / load.mean()) if load.mean() > 0 else float("nan"),
        "override_rate": override_rate(gate_scores, selected, top_idx.shape[-1]),
        "usage": usage,
    }


def training_override_rates(model: Any, X: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per replica, the override rate of the router as it routes in TRAINING mode (noise on, expert-choice capacity)
    over its rows of positive ``weight`` (R, n)."""
    import torch

    w = torch.as_tensor(np.asarray(weight, dtype=np.float32))
    model.train()
    try:
        with torch.no_grad():
            out = model(np.asarray(X, dtype=np.float32), return_intermediate=True, weight=w)
    finally:
        model.eval()
    mask = out["overridden"].double().numpy()   # the forward pass's own mask (routers.overridden_rows)
    keep = np.asarray(weight) > 0
    return (mask * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1)


def score_configuration(X: np.ndarray, P: np.ndarray, knobs: Mapping[str, Any], *,
                        base_config: MoEConfig | None = None, cv: int = 3, seed: int = 0,
                        n_reported: np.ndarray | None = None, config_id: int = 0) -> dict[str, Any]:
    """Cross-validated accuracy, expert differentiation and grouping stability of one configuration (a joblib task).

    The ``cv`` fold models train as one batched model (``fit_folds``: replica r sees only fold r's training rows).
    Accuracy and differentiation are measured on each fold's held-out words; stability with every fold's model
    routing ALL words: the mean pairwise ARI of the folds' primary-expert partitions (cv·(cv−1)/2 pairs).
    """
    start = time.perf_counter()
    config = (base_config or MoEConfig()).replace(**dict(knobs)).validate()
    folds = list(KFold(n_splits=cv, shuffle=True, random_state=seed).split(X))
    with _single_thread_torch():
        model, train_w = fit_folds(X, P, config, folds, n_reported)   # the cv fold models as one batched model
        routing = agreement.replica_routing(model, X)                  # every fold model routes ALL words
        train_override = training_override_rates(model, X, train_w)
        with_start = agreement.ari_with_start(model, X)               # each fold's grouping vs its own start
    pred = routing["final_output"] / routing["final_output"].sum(axis=-1, keepdims=True)
    fold_rps = [metrics.rps(P[te], pred[r, te]).mean() for r, (_, te) in enumerate(folds)]
    fold_mae = [metrics.mae_pp(P[te], pred[r, te]).mean() for r, (_, te) in enumerate(folds)]
    fold_js = [metrics.js_divergence(P[te], pred[r, te]).mean() for r, (_, te) in enumerate(folds)]
    # differentiation on each fold's unseen words
    diffs = [differentiation({k: v[r, te] for k, v in routing.items()}) for r, (_, te) in enumerate(folds)]
    labels = agreement.primary_experts(routing["gates"])
    se = (lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)
    usage = np.mean([d["usage"] for d in diffs], axis=0)
    group_share = np.mean([np.bincount(lab, minlength=config.num_experts) / len(lab) for lab in labels], axis=0)
    row = {"config_id": config_id, **{k: getattr(config, k) for k in KNOB_COLUMNS}, **dict(knobs)}
    row.update({
        "rps_mean": float(np.mean(fold_rps)), "rps_se": se(fold_rps),
        "mae_pp_mean": float(np.mean(fold_mae)), "mae_pp_se": se(fold_mae), "js_mean": float(np.mean(fold_js)),
        **{k: float(np.mean([d[k] for d in diffs])) for k in
           ("rank_distance", "routed_js", "routing_entropy", "usage_entropy", "load_cv", "override_rate")},
        "override_rate_training": float(np.mean(train_override)),
        "min_usage": float(usage.min()),
        "expert_usage": ";".join(f"{u:.3f}" for u in usage),
        "stability_ari": agreement.mean_pairwise_ari(labels),
        "stability_ari_baseline": agreement.random_baseline_ari(labels, seed=seed),
        "ari_with_start": float(with_start.mean()),
        "min_group_share": float(group_share.min()),
        "seconds": time.perf_counter() - start,
    })
    return row


def _run_parallel(tasks: list, n_jobs: int | None, desc: str, progress: bool) -> list[dict[str, Any]]:
    """Run delayed tasks under the active joblib config, with a bar over completed tasks."""
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress)
    try:
        with shared_pool_config():   # the run's one pool of workers, not a second one
            for row in joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
                results.append(row)
                bar.update(1)
    except ValueError as err:  # backends without generator support: collect the list at once
        if "generator" not in str(err):
            raise
        results = list(joblib.Parallel(n_jobs=n_jobs)(tasks))
        bar.update(len(tasks))
    finally:
        bar.close()
    return results


def grid_search(X: np.ndarray, P: np.ndarray, grid: Mapping[str, Sequence[Any]], *,
                base_config: MoEConfig | None = None, cv: int = 3, n_jobs: int | None = 2, seed: int = 0,
                output_dir: str | os.PathLike | None = None, n_reported: np.ndarray | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Score every configuration of ``grid`` by ``cv``-fold CV; one row per configuration, ``selected`` marked.

    With ``output_dir`` writes grid_search_results.csv and grid_search_best_config.json.
    """
    X = np.asarray(X, dtype=float)
    P = np.asarray(P, dtype=float)
    if X.ndim != 2 or P.shape != (len(X), 7):
        raise ValueError(f"need X (n, d) and P (n, 7); got {X.shape} and {P.shape}")
    base = base_config or MoEConfig()
    combos = expand_grid(grid, base)
    tasks = [joblib.delayed(score_configuration)(X, P, knobs, base_config=base, cv=cv, seed=seed,
                                                 n_reported=n_reported, config_id=i)
             for i, knobs in enumerate(combos)]
    rows = _run_parallel(tasks, n_jobs, "grid search", progress)
    results = pd.DataFrame(rows).sort_values("config_id").reset_index(drop=True)
    results = mark_selection(results)
    if output_dir is not None:
        from wordle_moe.io import write_csv, write_json

        write_csv(results, Path(output_dir) / "grid_search_results.csv")
        chosen = base.replace(**select_configuration(results)).to_dict()
        write_json(chosen, Path(output_dir) / "grid_search_best_config.json")
    return results


def mark_selection(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``within_1se``, ``balanced`` and ``selected`` columns following the selection rule."""
    out = results.copy()
    best = out.loc[out["rps_mean"].idxmin()]
    out["within_1se"] = out["rps_mean"] <= best["rps_mean"] + best["rps_se"]
    out["balanced"] = out["min_group_share"] >= MIN_GROUP_SHARE if "min_group_share" in out else True
    out["selected"] = False
    out.loc[_selected_index(out), "selected"] = True
    return out


def _selected_index(results: pd.DataFrame) -> Any:
    """Index of the chosen row: within 1 SE of the best RPS, every group >= MIN_GROUP_SHARE of the words (dropped
    when no such row exists), then the largest stability ARI (two decimals), routed JS, lowest RPS."""
    best = results.loc[results["rps_mean"].idxmin()]
    pool = results[results["rps_mean"] <= best["rps_mean"] + best["rps_se"]]
    if "min_group_share" in pool:
        balanced = pool[pool["min_group_share"] >= MIN_GROUP_SHARE]
        pool = balanced if len(balanced) else pool
    keys = pool.assign(_ari=pool["stability_ari"].fillna(-1.0).round(2) if "stability_ari" in pool else 0.0,
                       _js=pool["routed_js"] if "routed_js" in pool else 0.0)
    ordered = keys.sort_values(["_ari", "_js", "rps_mean"], ascending=[False, False, True], kind="mergesort")
    return ordered.index[0]


def select_configuration(results: pd.DataFrame) -> dict[str, Any]:
    """Knobs of the configuration the selection rule picks (see the module docstring)."""
    if results.empty:
        raise ValueError("no grid-search results to select from")
    row = results.loc[_selected_index(results)]
    knobs = [c for c in results.columns if c in set(MoEConfig().to_dict())]
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row[knobs].items()}


def compare_routers(X: np.ndarray | None, P: np.ndarray | None, *, num_experts: int = 3,
                    top_ks: Sequence[int] = (1, 2), results: pd.DataFrame | None = None,
                    routers: Sequence[str] = PRODUCT_ROUTERS, base_config: MoEConfig | None = None, cv: int = 3,
                    n_jobs: int | None = 2, seed: int = 0, output_dir: str | os.PathLike | None = None,
                    n_reported: np.ndarray | None = None, progress: bool = True,
                    grid: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
    """The routers where they can differ: ``num_experts`` experts at each top-k in ``top_ks`` (top-k below the
    number of experts; at top_k = num_experts every router selects every expert), one row per (router, top-k).

    Columns: accuracy (RPS, its SE, MAE), load CV, usage entropy, routed-output JS, grouping stability (ARI of the
    folds' partitions and its random baseline), and the override rate (share of words whose selected experts
    differ from the gate's own top-k) at inference and in training mode. Reuses grid-search ``results`` that
    hold every (router, top-k) at ``num_experts``; otherwise scores them. ``grid`` (optional) adds knobs to vary;
    each row then reports the setting with the lowest RPS. Writes router_comparison.csv when ``output_dir`` is given.
    """
    extra = {k.lower(): v for k, v in dict(grid or {}).items()}
    if "num_experts" in extra or "top_k" in extra or "router" in extra:
        raise ConfigError("compare_routers takes NUM_EXPERTS, TOP_K and ROUTER as num_experts=, top_ks=, routers=, "
                          "not in grid")
    top_ks = [int(k) for k in top_ks]
    if any(not 1 <= k <= num_experts for k in top_ks):
        raise ConfigError(f"every TOP_K in {top_ks} must be in 1..NUM_EXPERTS={num_experts}")
    want = {(r, k) for r in routers for k in top_ks}
    have = set()
    if results is not None and {"router", "top_k", "num_experts"} <= set(results.columns):
        sub = results[results["num_experts"] == num_experts]
        have = set(zip(sub["router"], sub["top_k"].astype(int)))
    if not want <= have:
        results = grid_search(X, P, {"num_experts": [num_experts], "top_k": top_ks, "router": list(routers), **extra},
                              base_config=base_config, cv=cv, n_jobs=n_jobs, seed=seed, n_reported=n_reported,
                              progress=progress)
    rows = []
    for router in routers:
        for k in top_ks:
            sub = results[(results["router"] == router) & (results["top_k"] == k)
                          & (results["num_experts"] == num_experts)]
            best = sub.loc[sub["rps_mean"].idxmin()]   # one row unless the results vary other knobs too
            rows.append({
                "router": router, "num_experts": int(num_experts), "top_k": int(k),
                "rps": best["rps_mean"], "rps_se": best["rps_se"], "mae_pp": best["mae_pp_mean"],
                **{c: best.get(c, np.nan) for c in ("load_cv", "usage_entropy", "routed_js", "stability_ari",
                                                    "stability_ari_baseline", "override_rate",
                                                    "override_rate_training", "min_group_share",
                                                    "rank_distance", "routing_entropy", "expert_usage")},
                "n_folds": int(cv),
            })
    table = pd.DataFrame(rows, columns=ROUTER_COMPARISON_COLUMNS)
    if output_dir is not None:
        from wordle_moe.io import write_csv

        write_csv(table, Path(output_dir) / "router_comparison.csv")
    return table
