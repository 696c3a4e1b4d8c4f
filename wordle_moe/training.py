"""Training the MoE: AdamW, full-batch steps; per replica either to convergence of its penalised objective
(TRAINING="converged", the default) or early stopping with best-weights restore (TRAINING="early_stopping").

One epoch is one optimizer step over the whole training set (~360 rows): balance statistics over
a few dozen rows are too noisy (a known trap of small MoEs), so every step sees the full batch. ``fit_replicas``
trains R replicas as one batched model (each with its own row weights, validation weights and
early-stopping point); ``train_moe`` is the R=1 public entry point.
"""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import MoEConfig
from .grouping import (
    init_base_at_mean,
    init_experts_at_group_means,
    init_gate_by_difficulty,
    order_experts_by_difficulty,
    upcycle_experts,
)
from .losses import loss_terms, n_weights, soft_cross_entropy
from .metrics import distribution_metrics
from .model import MoEModel
from .parallel import chunks, parallel_map

LOG_COLUMNS = ["epoch", "total_loss", "main_loss", "lb_loss", "div", "out_div", "js", "z_loss", "val_loss"]
CHECK_EVERY = 20          # converged training: steps between two looks at a replica's objective
LR_FINAL_SHARE = 0.01     # converged training: the rate decays geometrically to this share of LR at MAX_EPOCHS
MIN_STEPS = 100           # converged training: no replica stops before (the decaying rate needs time to settle)


def resolve_config(config: MoEConfig | None = None, **knobs: Any) -> MoEConfig:
    """Config with lower-case knob overrides applied, validated before any training."""
    return (config or MoEConfig()).replace(**knobs).validate()


def check_inputs(X: Any, P: Any, name: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Float arrays X (n, d) and P (n, 7) with rows renormalised; clear errors for bad shapes."""
    X = np.asarray(X, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X_{name} must be 2-D (rows, features), got shape {X.shape}")
    if P.ndim != 2 or P.shape[1] != 7 or P.shape[0] != X.shape[0]:
        raise ValueError(f"P_{name} must have shape ({X.shape[0]}, 7), got {P.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(P))):
        raise ValueError(f"X_{name}/P_{name} contain NaN or inf")
    if np.any(P < 0) or np.any(P.sum(axis=1) <= 0):
        raise ValueError(f"P_{name} rows must be non-negative with a positive sum")
    return X, P / P.sum(axis=1, keepdims=True)


def _t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def compact_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-replica row indices (R, m) of the positive-weight rows, padded with weight 0, and their weights.

    A bootstrap resample holds ~63% distinct rows and its out-of-bag set ~37%: computing only those
    rows (with counts as weights) gives the same losses at a fraction of the cost.
    """
    weight = np.asarray(weight, dtype=float)
    order = np.argsort(~(weight > 0), axis=1, kind="stable")
    m = max(int((weight > 0).sum(axis=1).max()), 1)
    index = order[:, :m]
    return index, np.take_along_axis(weight, index, axis=1)


def param_groups(model: MoEModel, params: list[torch.nn.Parameter]) -> list[dict[str, Any]]:
    """AdamW groups: the gate's parameters at LR·GATE_LR_SCALE, everything else at LR.

    Adam moves every coordinate by about LR per step whatever its gradient, so at full LR the 40-odd
    gate weights random-walk away from their data-driven start within ~100 steps and the grouping
    ends wherever the walk went; a smaller gate rate keeps it near the split the data supports.
    """
    gate = {id(getattr(model, n)) for n in model.gate_param_names}
    fast = [p for p in params if id(p) not in gate]
    slow = [p for p in params if id(p) in gate]
    groups = [{"params": fast}] if fast else []
    if slow:
        groups.append({"params": slow, "lr": model.config.lr * model.config.gate_lr_scale})
    return groups


def _run_phase(model: MoEModel, params: list[torch.nn.Parameter], data: dict[str, torch.Tensor],
               epochs: int, epoch0: int, progress: bool, desc: str, log_every: int = 1
               ) -> tuple[list[list[float]], np.ndarray]:
    """Train ``params`` for up to ``epochs`` full-batch steps with per-replica early stopping.

    Each replica keeps its own best-validation snapshot; once a replica has waited PATIENCE epochs it
    is stopped: it drops out of the computation (forward/backward run on the active replicas only),
    its snapshot and router state no longer change, and it is restored to its snapshot at the end.
    Returns (history rows, best epoch per replica).
    """
    cfg, R = model.config, model.replicas
    X, P, w, w_main = data["X"], data["P"], data["w"], data["w_main"]
    Xv, Pv, wv = data["Xv"], data["Pv"], data["wv"]
    opt = torch.optim.AdamW(param_groups(model, params), lr=cfg.lr, weight_decay=cfg.wd, fused=True)
    best_state = model.replica_state()
    with torch.no_grad():
        model.eval()
        best_val = soft_cross_entropy(model(Xv, standardised=True), Pv, wv)
    best_epoch = np.full(R, epoch0 - 1)
    bad = torch.zeros(R, dtype=torch.long)
    active = torch.ones(R, dtype=torch.bool)
    rows: list[list[float]] = []
    bar = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(bar, desc=desc, leave=False)
    for step in bar:
        epoch = epoch0 + step
        idx = None if bool(active.all()) else active.nonzero().squeeze(1)

        def sub(t: torch.Tensor, idx: torch.Tensor | None = idx) -> torch.Tensor:
            return t if idx is None or t.shape[0] == 1 else t[idx]

        model.train()
        out = model(sub(X), return_intermediate=True, weight=sub(w), idx=idx, standardised=True)
        terms = loss_terms(out, sub(P), sub(w_main), sub(w), partial(model.expert_parameters_flat, idx), cfg,
                           diagnostics=step % log_every == 0)
        opt.zero_grad(set_to_none=True)
        loss = terms["total_loss"].sum()   # sum over replicas: each replica's gradient is its own
        if cfg.expert_skip and cfg.skip_l2 > 0:
            loss = loss + model.skip_penalty(idx).sum()
        loss.backward()
        opt.step()
        if hasattr(model.router, "update_state"):
            model.router.update_state(out["dispatch"].detach(), out["expert_outputs"].detach(), sub(P), sub(w), idx,
                                      gate_scores=out["gate_scores"].detach())
        with torch.inference_mode():   # validation + bookkeeping: no autograd records at all
            model.eval()
            val = best_val.clone()
            val_active = soft_cross_entropy(model(sub(Xv), idx=idx, weight=sub(wv), standardised=True), sub(Pv), sub(wv))
            if idx is None:
                val = val_active
            else:
                val[idx] = val_active
            improved = active & (val < best_val)
            best_val = torch.where(improved, val, best_val)
            if bool(improved.any()):
                better = improved.nonzero().squeeze(1)
                current = model.state_dict()
                for k in best_state:   # copy only the improved replicas' slices
                    best_state[k][better] = current[k][better].detach()
            best_epoch = np.where(improved.numpy(), epoch, best_epoch)
            bad = torch.where(improved, torch.zeros_like(bad), bad + active.long())
            ww = sub(w)
            routing = (out["gate_scores"] * ww.unsqueeze(-1)).sum(1) / ww.sum(1, keepdim=True)
            vals = torch.stack([terms[c] for c in LOG_COLUMNS[1:-1]] + [val_active], dim=1).mean(0)
            rows.append([epoch] + vals.tolist() + routing.mean(0).tolist())
            active = active & (bad < cfg.patience)
        if not bool(active.any()):
            break
    model.load_replica_state(best_state)
    return rows, best_epoch


def _run_converged(model: MoEModel, params: list[torch.nn.Parameter], data: dict[str, torch.Tensor],
                   steps: int, epoch0: int, progress: bool, desc: str, log_every: int = 1
                   ) -> tuple[list[list[float]], np.ndarray]:
    """Minimise each replica's penalised objective (losses + MoEModel.penalty) with full-batch AdamW.

    The rate decays geometrically from LR to LR·LR_FINAL_SHARE over ``steps``; every CHECK_EVERY steps a
    replica whose objective changed by less than CONVERGE_TOL (relative) since the last look is converged:
    it drops out of the computation and its weights are kept as they were at that moment. AdamW acts
    element-wise and the loss is a sum over replicas, so each replica's path is its own (whatever its batch
    mates); AdamW's decoupled weight decay is off here: the ridge terms are part of the objective.
    Returns (history rows, the step each replica converged at, or the last step).
    """
    cfg, R = model.config, model.replicas
    groups = param_groups(model, params)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.0, fused=True)
    base_lrs = [g["lr"] for g in opt.param_groups]
    decay = LR_FINAL_SHARE ** (1.0 / max(steps, 1))
    final_state = model.replica_state()
    done_at = np.full(R, epoch0 + steps - 1)
    objective = torch.zeros(R)
    last_look = torch.full((R,), float("inf"))
    active = torch.ones(R, dtype=torch.bool)
    val = torch.full((R,), float("nan"))
    rows: list[list[float]] = []
    bar = range(steps)
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(bar, desc=desc, leave=False)
    idx, cur, n_active = None, {}, R
    for step in bar:
        epoch = epoch0 + step
        if not cur or int(active.sum()) != n_active:   # the active replicas' rows: copied when the set changes only
            n_active = int(active.sum())
            idx = None if n_active == R else active.nonzero().squeeze(1)
            cur = {k: t if idx is None or t.shape[0] == 1 else t[idx] for k, t in data.items()}
        for g, lr0 in zip(opt.param_groups, base_lrs):
            g["lr"] = lr0 * decay ** step
        model.train()
        out = model(cur["X"], return_intermediate=True, weight=cur["w"], idx=idx, standardised=True)
        terms = loss_terms(out, cur["P"], cur["w_main"], cur["w"], partial(model.expert_parameters_flat, idx), cfg,
                           diagnostics=step % log_every == 0)
        obj = terms["total_loss"] + model.penalty(idx) + model.skip_penalty(idx)
        opt.zero_grad(set_to_none=True)
        obj.sum().backward()   # sum over replicas: each replica's gradient is its own
        opt.step()
        if hasattr(model.router, "update_state"):
            model.router.update_state(out["dispatch"].detach(), out["expert_outputs"].detach(), cur["P"], cur["w"], idx,
                                      gate_scores=out["gate_scores"].detach())
        with torch.inference_mode():
            if idx is None:
                objective = obj.detach().clone()
            else:
                objective[idx] = obj.detach()
            look = (step + 1) % CHECK_EVERY == 0 or step == steps - 1
            if look:
                model.eval()
                v = soft_cross_entropy(model(cur["Xv"], idx=idx, weight=cur["wv"], standardised=True), cur["Pv"],
                                       cur["wv"])
                if idx is None:
                    val = v.clone()
                else:
                    val[idx] = v
            ww = cur["w"]
            routing = (out["gate_scores"] * ww.unsqueeze(-1)).sum(1) / ww.sum(1, keepdim=True)
            vals = torch.stack([terms[c] for c in LOG_COLUMNS[1:-1]], dim=1).mean(0).tolist()
            rows.append([epoch] + vals + [float(val[active].mean()) if look else float("nan")]
                        + routing.mean(0).tolist())
            if look and step + 1 >= MIN_STEPS:
                rel = (last_look - objective).abs() / objective.abs().clamp_min(1e-12)
                done = active & (rel < cfg.converge_tol)
                if bool(done.any()):
                    which = done.nonzero().squeeze(1)
                    current = model.state_dict()
                    for k in final_state:
                        final_state[k][which] = current[k][which].detach()
                    done_at[which.numpy()] = epoch
                active = active & ~done
            if look:
                last_look = objective.clone()
        if not bool(active.any()):
            break
    if bool(active.any()):   # replicas that ran out of steps keep their last weights
        which = active.nonzero().squeeze(1)
        current = model.state_dict()
        for k in final_state:
            final_state[k][which] = current[k][which].detach()
    model.load_replica_state(final_state)
    return rows, done_at


def fit_replicas(X_train: np.ndarray, P_train: np.ndarray, X_val: np.ndarray, P_val: np.ndarray,
                 config: MoEConfig, *, train_weight: np.ndarray, val_weight: np.ndarray,
                 n_reported: np.ndarray | None = None, n_reported_val: np.ndarray | None = None,
                 replica_ids: list[int] | None = None, progress: bool = False,
                 penalties: dict[str, Any] | None = None, log_every: int = CHECK_EVERY
                 ) -> tuple[MoEModel, dict[str, Any]]:
    """Train R = len(train_weight) replicas as one batched model; weights are (R, n_train), (R, n_val).

    TRAINING="converged": each replica minimises its penalised objective to convergence (the validation rows
    are only logged); "early_stopping": each stops on its validation rows. ``penalties`` optionally gives
    every replica its own ridge strengths, {"base": (R,), "delta": (R,), "gate": (R,)} (the inner CV's
    candidates), else all use BASE_L2, DELTA_L2, GATE_L2. The history logs every term each step, except terms
    whose coefficient is 0 (they do not change training): those every ``log_every`` steps, NaN between.

    Replica r is (config.seed, replica_ids[r]) (default ids 0..R−1): its initial weights, dropout masks
    and router noise come from its own streams (streams.py), so it equals an R=1 run with the same
    seed, replica id and weights, dropout and noise included, whatever R.
    Before training each replica's gate and experts start from its own rows (GATE_INIT, EXPERT_INIT,
    grouping.py); after it, each replica's experts are relabelled easiest-first (EXPERT_ORDER).
    """
    start = time.perf_counter()
    train_weight = np.atleast_2d(np.asarray(train_weight, dtype=float))
    val_weight = np.atleast_2d(np.asarray(val_weight, dtype=float))
    R = train_weight.shape[0]
    model = MoEModel(X_train.shape[1], config, replicas=R, replica_ids=replica_ids)
    model.fit_standardizer(X_train, train_weight)
    for key, value in (penalties or {}).items():
        name = "input_clip_r" if key == "clip" else f"penalty_{key}"
        value = np.asarray(value, dtype=np.float32)
        if key == "clip":
            value = np.where(value > 0, value, np.inf).astype(np.float32)   # 0 = no clip
        setattr(model, name, torch.as_tensor(value).reshape(R))
    if config.shared_base:
        init_base_at_mean(model, P_train, train_weight)
    if config.gate_init == "difficulty":
        init_gate_by_difficulty(model, X_train, P_train, train_weight)
    if config.expert_init == "group_mean" and not config.shared_base:   # shared base: experts start AS the base
        init_experts_at_group_means(model, X_train, P_train, train_weight)
    elif config.expert_init == "dense" and config.num_experts > 1:
        dense_cfg = config.replace(num_experts=1, top_k=1, router="topk", router_only_epochs=0,
                                   expert_init="group_mean", expert_order="none")
        dense, _ = fit_replicas(X_train, P_train, X_val, P_val, dense_cfg, train_weight=train_weight,
                                val_weight=val_weight, n_reported=n_reported, n_reported_val=n_reported_val,
                                replica_ids=replica_ids)
        upcycle_experts(model, dense)
    if config.skip_init == "softmax_regression":  # every expert starts as the replica's L-BFGS linear model
        from .warmstart import warm_start_skip_path

        warm_start_skip_path(model, X_train, P_train, train_weight)
    # the gate as training finds it (after GATE_INIT): agreement.ari_with_start compares the final grouping to it
    model.start_gate_ = {n: getattr(model, n).detach().clone() for n in model.gate_param_names}
    w_main = train_weight * n_weights(n_reported, config.n_weighting, len(X_train))
    wv_full = val_weight * n_weights(n_reported_val, config.n_weighting, len(X_val))
    it, w = compact_rows(train_weight)
    iv, wv = compact_rows(val_weight)
    # inputs standardised (and clipped) once: the standardiser and the clip stay fixed while the replicas train
    with torch.no_grad():
        data = {"X": model.standardise(X_train[it]), "P": _t(P_train[it]), "w": _t(w),
                "w_main": _t(np.take_along_axis(w_main, it, axis=1)),
                "Xv": model.standardise(X_val[iv]), "Pv": _t(P_val[iv]),
                "wv": _t(np.take_along_axis(wv_full, iv, axis=1))}
    run = _run_converged if config.training == "converged" else _run_phase
    rows, best = run(model, list(model.parameters()), data, config.max_epochs, 1, progress, "MoE joint", log_every)
    phase = ["joint"] * len(rows)
    if config.router_only_epochs > 0:
        model.freeze_experts()
        more, best2 = run(model, model.router_parameter_list(), data, config.router_only_epochs,
                          len(rows) + 1, progress, "MoE router-only", log_every)
        best = np.where(best2 >= len(rows) + 1, best2, best)
        rows += more
        phase += ["router_only"] * len(more)
    E = config.num_experts
    history = pd.DataFrame(rows, columns=LOG_COLUMNS + [f"routing_prob_expert_{i}" for i in range(E)])
    if config.expert_order == "difficulty":
        perm = order_experts_by_difficulty(model, X_train, train_weight)
        if R == 1:   # the logged routing probabilities follow the new labels (R > 1 logs replica means)
            cols = [f"routing_prob_expert_{i}" for i in range(E)]
            history[cols] = history[[cols[j] for j in perm[0].tolist()]].to_numpy()
    history["epoch"] = history["epoch"].astype(int)
    history["phase"] = phase
    model.eval()
    info = {"history": history, "best_epochs": best.astype(int), "best_epoch": int(best[0]) if R == 1 else
            int(np.median(best)), "config": config, "seconds": time.perf_counter() - start,
            "epochs_run": len(rows)}
    return model, info


BASE_L2_GRID = (3e-3, 1e-2, 3e-2)   # candidates of the inner CV (features are standardised)
DELTA_L2_GRID = (0.3, 30.0)
# (fold, candidate) replicas per batched task of the inner CV, at most: the tasks depend on the grid and the folds
# alone (never on the number of workers), so the choice is the same for any N_JOBS; ~30 replicas keep a step's
# fixed cost small beside its arithmetic while two cores share the 60 fits of the default grid
PENALTY_CHUNK = 30
# the inner CV's fits only RANK the candidates: they stop at this multiple of CONVERGE_TOL. On the 16 outer training
# sets of protocols A and B the choice was the same as at CONVERGE_TOL itself in 16 of 16, at 52% of the CPU time
# (benchmarks/inner_cv_tolerance.py)
PENALTY_TOL_FACTOR = 10.0


def select_penalties(X: Any, P: Any, config: MoEConfig, *, sample_weight: Any | None = None,
                     n_reported: Any | None = None) -> tuple[MoEConfig, pd.DataFrame]:
    """BASE_L2, DELTA_L2 and INPUT_CLIP (as set, or none) chosen by PENALTY_CV-fold cross-validation on these rows
    only (``pick_penalties``: the one-standard-error rule towards the configured values); returns the config with
    them set, and the table of candidates (mean held-out RPS and its standard error over the folds).

    Every (fold, candidate) pair is one replica of a batched converged fit, each replica with its own ridge
    strengths (replica ids = the pair's index, seed = SEED); the pairs train in chunks of PENALTY_CHUNK, one per
    worker process, each to PENALTY_TOL_FACTOR × CONVERGE_TOL. With one expert only BASE_L2 is searched. With
    PENALTY_CV = 0 or TRAINING="early_stopping" the config comes back unchanged (and the table empty).
    """
    from sklearn.model_selection import KFold

    from .metrics import rps

    if config.training != "converged" or config.penalty_cv < 2:
        return config, pd.DataFrame()
    X, P = check_inputs(X, P, "train")
    n = len(X)
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    deltas = DELTA_L2_GRID if config.num_experts > 1 else (config.delta_l2,)
    clips = tuple(dict.fromkeys((float(config.input_clip), 0.0)))
    cands = [(b, d, c) for c in clips for b in BASE_L2_GRID for d in deltas]
    folds = list(KFold(min(config.penalty_cv, n), shuffle=True, random_state=config.seed).split(X))
    masks = np.zeros((len(folds), n))
    for f, (tr, _) in enumerate(folds):
        masks[f, tr] = 1.0
    pairs = [(f, c) for f in range(len(folds)) for c in range(len(cands))]
    weight = np.stack([masks[f] * sw for f, _ in pairs])
    pen = {k: np.array([cands[c][i] for _, c in pairs]) for i, k in enumerate(("base", "delta", "clip"))}
    ranking = config.replace(converge_tol=config.converge_tol * PENALTY_TOL_FACTOR)
    task = partial(fit_chunk, X=X, P=P, config=ranking, train_weight=weight, val_weight=weight, penalties=pen,
                   n_reported=n_reported)
    pred = np.concatenate([predict_replicas(m, X) for m, _ in parallel_map(task, chunks(len(pairs), PENALTY_CHUNK))])
    scores = np.full((len(folds), len(cands)), np.nan)
    for r, (f, c) in enumerate(pairs):
        te = folds[f][1]
        scores[f, c] = np.average(rps(P[te], pred[r, te]), weights=np.maximum(sw[te], 1e-12))
    table = pd.DataFrame({"base_l2": [c[0] for c in cands], "delta_l2": [c[1] for c in cands],
                          "input_clip": [c[2] for c in cands],
                          "rps_mean": scores.mean(0), "rps_se": scores.std(0, ddof=1) / np.sqrt(len(folds))})
    best = pick_penalties(table, config.base_l2, config.input_clip)
    table["chosen"] = np.arange(len(table)) == best
    b, d, c = cands[best]
    return config.replace(base_l2=float(b), delta_l2=float(d), input_clip=float(c)), table


def fit_chunk(ids: range, *, X: np.ndarray, P: np.ndarray, config: MoEConfig, train_weight: np.ndarray,
              val_weight: np.ndarray, n_reported: Any | None = None, penalties: dict[str, np.ndarray] | None = None,
              replica_ids: Any | None = None) -> tuple[MoEModel, dict[str, Any]]:
    """Replicas ``ids`` (rows of the (R, n) weights and of ``penalties``) trained as one batched model on the rows
    X, P: a picklable task for ``parallel_map`` (bootstrap chunks, the inner CV's chunks). Row r's replica id (its
    initial weights and streams) is ``replica_ids[r]``, by default r."""
    sl = slice(ids.start, ids.stop)
    rid = list(ids) if replica_ids is None else [int(i) for i in np.asarray(replica_ids)[sl]]
    return fit_replicas(X, P, X, P, config, train_weight=train_weight[sl], val_weight=val_weight[sl],
                        n_reported=n_reported, n_reported_val=n_reported, replica_ids=rid,
                        penalties=None if penalties is None else {k: v[sl] for k, v in penalties.items()})


def pick_penalties(table: pd.DataFrame, prior_base_l2: float, prior_clip: float | None = None) -> int:
    """Row of the candidate table to use: among the candidates within one standard error of the lowest mean RPS
    (one-standard-error rule), the configured INPUT_CLIP if it is there, then the BASE_L2 closest (in log scale) to
    the configured one, then the largest DELTA_L2 (experts closest to the shared base). On ~300 words the inner-CV
    curve over BASE_L2 is flat and noisy: its argmin strayed to 0.003 or 0.03 and cost up to 8% on the outer fold,
    so the data must beat the configured values clearly."""
    rps, se = table["rps_mean"].to_numpy(), table["rps_se"].fillna(0.0).to_numpy()
    best = int(np.argmin(rps))
    ok = np.flatnonzero(rps <= rps[best] + se[best])
    dist = np.abs(np.log(table["base_l2"].to_numpy()[ok] / prior_base_l2))
    other_clip = np.zeros(len(ok)) if prior_clip is None or "input_clip" not in table else \
        (table["input_clip"].to_numpy()[ok] != prior_clip).astype(float)
    order = np.lexsort((-table["delta_l2"].to_numpy()[ok], np.round(dist, 9), other_clip))
    return int(ok[order[0]])


def train_moe(X_train: Any, P_train: Any, X_val: Any, P_val: Any, *, config: MoEConfig | None = None,
              sample_weight: Any | None = None, n_reported: Any | None = None,
              n_reported_val: Any | None = None, output_dir: str | Path | None = None,
              verbose: bool = False, **knobs: Any) -> tuple[MoEModel, dict[str, Any]]:
    """Train one MoE (R=1); returns (model, info). TRAINING="converged" (default): to convergence of the penalised
    objective on (X_train, P_train), ridge strengths by inner CV on those rows (info["penalty_cv"]), (X_val, P_val)
    only logged; "early_stopping": stopped on (X_val, P_val).

    ``knobs`` are lower-case MoEConfig fields overriding ``config``; the config is validated before
    any training. info: history (DataFrame, one row per epoch), best_epoch, config, seconds.
    With ``output_dir`` the history is written to ``output_dir/moe_loss_log.csv``.
    """
    cfg = resolve_config(config, **knobs)
    X_train, P_train = check_inputs(X_train, P_train, "train")
    X_val, P_val = check_inputs(X_val, P_val, "val")
    if X_val.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_val has {X_val.shape[1]} features, X_train has {X_train.shape[1]}")
    if len(X_train) == 0 or len(X_val) == 0:
        raise ValueError("X_train and X_val need at least one row each (early stopping needs a validation set)")
    sw = np.ones(len(X_train)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if sw.shape != (len(X_train),) or np.any(sw < 0) or sw.sum() <= 0:
        raise ValueError(f"sample_weight must be non-negative, not all zero, with shape ({len(X_train)},)")
    cfg, penalty_table = select_penalties(X_train, P_train, cfg, sample_weight=sw, n_reported=n_reported)
    model, info = fit_replicas(X_train, P_train, X_val, P_val, cfg, train_weight=sw[None],
                               val_weight=np.ones((1, len(X_val))), n_reported=n_reported,
                               n_reported_val=n_reported_val, progress=verbose, log_every=1)
    info["penalty_cv"] = penalty_table
    if output_dir is not None:
        from .io import write_csv
        write_csv(info["history"], Path(output_dir) / "moe_loss_log.csv")
    return model, info


@torch.no_grad()
def predict_replicas(model: MoEModel, X: Any) -> np.ndarray:
    """Every replica's prediction, (R, n, 7) float64 with rows summing to 1."""
    model.eval()
    y = model(np.asarray(X, dtype=np.float32)).double().numpy()
    return y / y.sum(axis=-1, keepdims=True)


def predict_proba(model: MoEModel, X: Any) -> np.ndarray:
    """Predicted distributions (n, 7); the replica mean when the model holds R > 1 replicas."""
    return predict_replicas(model, X).mean(axis=0)


@torch.no_grad()
def intermediates(model: MoEModel, X: Any, replica: int = 0) -> dict[str, Any]:
    """Routing quantities of ONE replica (default 0, the only one when R=1) as numpy arrays.

    gate_scores (n,E) full softmax, top_k_scores (n,k), top_k_indices (n,k), gates (n,E) sparse rows
    summing to 1, expert_outputs (n,E,7), final_output (n,7), load_balance_loss (float), gate_top_k_indices
    (n,k) the gate's own top-k and overridden (n,) where the router selected other experts than those.
    """
    model.eval()
    out = model(np.asarray(X, dtype=np.float32), return_intermediate=True)
    keys = ["gate_scores", "top_k_scores", "top_k_indices", "gates", "expert_outputs", "final_output",
            "gate_top_k_indices", "overridden"]
    res = {k: out[k][replica].numpy() for k in keys}
    res["load_balance_loss"] = float(out["load_balance_loss"][replica])
    return res


def evaluate(model: MoEModel, X: Any, P: Any) -> tuple[np.ndarray, dict[str, float]]:
    """(predictions (n, 7), metrics.distribution_metrics against P)."""
    X, P = check_inputs(X, P, "eval")
    P_pred = predict_proba(model, X)
    return P_pred, distribution_metrics(P, P_pred)
