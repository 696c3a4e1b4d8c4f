"""Why the model predicts what it does for a word: its routing, the gate's reasons and the nearest observed words.

``explain_word`` answers for a saved (replica-batched) model:

- **routing**: the expert each replica sends the word to (its largest Top-K gate) as a share of replicas, and each
  expert's mean gate probability;
- **margin**: how decided the gate is, per replica the top gate probability minus the runner-up's (median and
  10–90% range over replicas);
- **the inputs that move the gate most**: per replica, the gate logit of its chosen expert minus the runner-up's,
  split into one contribution per input — for the linear gate exactly ``z_j · (W_j,top − W_j,second)`` with ``z`` the
  standardised input (0 = the mean training word), so the contributions and the bias add up to the logit margin;
  for the MLP gate the first-order (gradient × input) split of the same margin, an approximation. Averaged over
  replicas, with the share of replicas agreeing on the sign;
- **the nearest observed words** in the model's input space (standardised, clipped inputs, averaged over
  replicas) with their observed distributions.

Only the model's public outputs (``forward(..., return_intermediate=True)``, ``gate_logits``) and two small
accessors (``gate_inputs``, ``gate_kind``) are used, so a change of how experts are built does not break it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .dataset import ALL_SOURCES, default_population, feature_rows, load_dataset
from .disagreement import describe, inputs_outside
from .paths import BUCKET_LABELS


# --------------------------------------------------------------------------------------------
# Accessors: the only places that know how the model standardises inputs and what its gate is
# --------------------------------------------------------------------------------------------
def gate_inputs(model: Any, X: np.ndarray) -> torch.Tensor:
    """The gate's input (R, n, d): each replica's standardised inputs, clipped as in training."""
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if hasattr(model, "standardise"):
        return model.standardise(x)
    z = (x.unsqueeze(0) - model.x_mean.unsqueeze(1)) / model.x_std.unsqueeze(1)
    clip = model.config.input_clip
    return z.clamp(-clip, clip) if clip > 0 else z


def gate_kind(model: Any) -> str:
    """'linear' (the logits are affine in the standardised inputs) or 'mlp'."""
    return str(getattr(model.config, "gate", "linear"))


# --------------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def routing_of(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """One row's routing per replica: primary expert (R,), gate probabilities (R, E), margin (R,)."""
    model.eval()
    out = model(np.asarray(x, dtype=np.float32).reshape(1, -1), return_intermediate=True)
    gates, probs = out["gates"][:, 0].numpy(), out["gate_scores"][:, 0].numpy()
    top2 = np.sort(probs, axis=1)[:, ::-1][:, :2] if probs.shape[1] > 1 else np.c_[probs, np.zeros(len(probs))]
    return {"primary": gates.argmax(axis=1), "probs": probs, "margin": top2[:, 0] - top2[:, 1]}


def gate_contributions(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(contributions (R, d), bias part (R,), logit margin (R,)) of each replica's top-vs-runner-up gate logit.

    Linear gate: exact, contributions + bias = margin. MLP gate: gradient × input at this word, first order only.
    """
    model.eval()
    z = gate_inputs(model, np.asarray(x, dtype=float).reshape(1, -1)).detach().requires_grad_(True)  # (R, 1, d)
    logits = model.gate_logits(z)[:, 0]                                                                 # (R, E)
    if logits.shape[1] < 2:
        zeros = np.zeros(z.shape[0])
        return np.zeros(z.shape[::2]), zeros, zeros
    order = logits.detach().argsort(dim=1, descending=True)
    margin = logits.gather(1, order[:, :1]) - logits.gather(1, order[:, 1:2])                          # (R, 1)
    (grad,) = torch.autograd.grad(margin.sum(), z)
    contrib = (grad * z).detach()[:, 0].double().numpy()
    m = margin.detach()[:, 0].double().numpy()
    return contrib, m - contrib.sum(axis=1), m


def nearest_observed(Z_obs: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` rows of Z_obs (n, d) nearest to z (d,) (Euclidean), nearest first, ties by row order."""
    d = np.sqrt(((Z_obs - z) ** 2).sum(axis=1))
    return np.argsort(d, kind="stable")[:k], d


def observed_data(saved: Any) -> Any:
    """The observed days the model was trained on (its sources), with the model's input columns."""
    extra = saved.meta.get("extra", {}) or {}
    sources = tuple(extra.get("sources") or (ALL_SOURCES if "population_wordlebot" in saved.feature_names
                                             else ("mcm",)))
    return load_dataset(sources=sources, feature_names=saved.feature_names)


# --------------------------------------------------------------------------------------------
# The explanation
# --------------------------------------------------------------------------------------------
def explain_word(saved: Any, word: str, date: Any = None, *, population: str | None = None, clamp: bool = True,
                 n_neighbours: int = 5, n_inputs: int = 8, data: Any = None) -> dict[str, Any]:
    """Routing, gate margin, the inputs that move the gate and the nearest observed words for one word.

    ``saved``: a loaded model (``persistence.load_model``); ``date`` defaults to the last training day and a date
    outside the training days is clamped (unless ``clamp`` is False); ``data``: the observed dataset (loaded from the
    model's sources when None). Returns a dict of tables and notes (``render_explanation`` prints it).
    """
    notes: list[str] = []
    first, last = (pd.Timestamp(d) for d in saved.date_range) if saved.date_range else (None, None)
    if date is None:
        if last is None:
            raise ValueError("the saved model has no training date range: give a date")
        date = last
        notes.append(f"no date given: using the last observed date {last.date()}")
    date = pd.Timestamp(date)
    known = (saved.meta.get("extra", {}) or {}).get("populations") or ["mcm"]
    pop = population or (default_population(date) if "wordlebot" in known else "mcm")
    rows = feature_rows([word], [date], saved.feature_names, population=pop,
                        date_range=(first, last) if clamp and first is not None else None)
    x = rows[saved.feature_names].to_numpy(float)[0]
    model = saved.model
    P_boot = saved.predict_replicas(x[None, :])                                                        # (R, 1, 7)
    route = routing_of(model, x)
    R, E = route["probs"].shape
    routing = pd.DataFrame({"expert": np.arange(E),
                            "share_of_replicas": np.bincount(route["primary"], minlength=E) / R,
                            "mean_gate_probability": route["probs"].mean(axis=0)})
    contrib, bias, logit_margin = gate_contributions(model, x)
    z = gate_inputs(model, x[None, :]).detach().double().numpy()[:, 0]                                # (R, d)
    agree = (np.sign(contrib) == np.sign(contrib.mean(axis=0))).mean(axis=0)
    inputs = pd.DataFrame({"input": saved.feature_names, "value": x, "z": z.mean(axis=0),
                           "contribution": contrib.mean(axis=0), "same_sign_share": agree})
    inputs = inputs.reindex(inputs["contribution"].abs().sort_values(ascending=False, kind="stable").index)
    data = observed_data(saved) if data is None else data
    Z_obs = gate_inputs(model, data.X).detach().double().numpy().mean(axis=0)
    idx, dist = nearest_observed(Z_obs, z.mean(axis=0), n_neighbours)
    frame = data.frame.reset_index(drop=True)
    neighbours = pd.DataFrame({"word": np.asarray(data.words)[idx], "date": pd.to_datetime(frame["date"].iloc[idx])
                               .dt.strftime("%Y-%m-%d").to_numpy(),
                               "population": frame["population"].iloc[idx].to_numpy() if "population" in frame
                               else "mcm", "distance": dist[idx]})
    for b, label in enumerate(BUCKET_LABELS):
        neighbours[label] = data.P[idx, b]
    stats = getattr(saved, "disagreement", None)
    if stats and R > 1:
        warn = describe(word, str(date.date()), P_boot[:, 0], x, saved.feature_names, stats)
        if warn:
            notes.append(warn)
    outside = inputs_outside(x, saved.feature_names, stats) if stats else []
    return {"word": word, "date": str(date.date()), "date_used": str(pd.Timestamp(rows["date_used"].iloc[0]).date()),
            "population": pop, "replicas": R, "gate": gate_kind(model), "mean": P_boot.mean(axis=0)[0],
            "routing": routing, "margin": route["margin"], "logit_margin": logit_margin, "bias": bias,
            "inputs": inputs.head(n_inputs).reset_index(drop=True), "all_inputs": inputs.reset_index(drop=True),
            "neighbours": neighbours, "outside": outside, "notes": notes}


def _pct(values: Sequence[float]) -> str:
    return " ".join(f"{100 * v:5.1f}" for v in values)


def render_explanation(e: dict[str, Any], source: str = "") -> str:
    """The explanation as text: prediction, routing, margin, the gate's inputs, the nearest observed words."""
    q = lambda a, p: float(np.quantile(a, p))  # noqa: E731
    when = e["date"] if e["date"] == e["date_used"] else f"{e['date']} (time trend at {e['date_used']})"
    lines = [f"{e['word'].upper()} on {when}, population {e['population']}"
             + (f" — model {source} ({e['replicas']} replicas, {e['gate']} gate)" if source else ""),
             f"prediction (% per bucket {' '.join(f'{b:>5}' for b in BUCKET_LABELS)}): {_pct(e['mean'])}", "",
             "routing: the expert each replica sends the word to (its largest Top-K gate)"]
    routing = e["routing"].assign(share_of_replicas=lambda d: (100 * d["share_of_replicas"]).round(1),
                                  mean_gate_probability=lambda d: d["mean_gate_probability"].round(3))
    lines.append(routing.rename(columns={"share_of_replicas": "share_of_replicas_%"}).to_string(index=False))
    m, lm = e["margin"], e["logit_margin"]
    lines += ["", f"gate margin (top minus runner-up gate probability): median {q(m, .5):.3f}, 10–90% over replicas "
                  f"{q(m, .1):.3f}..{q(m, .9):.3f}; in logits median {q(lm, .5):.2f}"]
    how = ("exact for the linear gate: the contributions plus the bias part "
           f"({float(np.mean(e['bias'])):+.2f}) add up to the logit margin" if e["gate"] == "linear" else
           "MLP gate: first-order split (gradient × input) of the logit margin at this word, an approximation")
    lines += ["", f"inputs that move the gate most: each input's share of the logit of the chosen expert minus the "
                  f"runner-up's, averaged over replicas ({how}); z = standardised input (0 = the mean training word)"]
    lines.append(e["inputs"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if e["outside"]:
        lines.append("inputs outside the training range: " + ", ".join(
            f"{n}={v:.3g} (training {lo:.3g}..{hi:.3g})" for n, v, lo, hi in e["outside"][:6]))
    lines += ["", "nearest observed words in the model's input space (observed share of players, %):"]
    nb = e["neighbours"].copy()
    for b in BUCKET_LABELS:
        nb[b] = (100 * nb[b]).round(1)
    lines.append(nb.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return "\n".join(lines) + "\n"
