"""Protocol C: forecasting the WordleBot population's later days, and the routing of populations to experts.

Protocol C trains on every MCM day and every WordleBot row before 2024-07-01 and tests on the 184
WordleBot (normal mode) days 2024-07-01 .. 2024-12-31 (``evaluation.protocol_c_split``). Peers are
scored by ``evaluation.evaluate_models``; the MoE is fitted once with bootstrap replicas and scored the
same way, and its forecast (mean, bootstrap interval, calibrated predictive interval, per bucket and
for the mean number of tries) becomes ``forecast_wordlebot.csv``.

The predictive interval is calibrated on the population it forecasts: out-of-fold residuals of an inner
K-fold over ALL training rows, of which only the rows of that population set the quantiles (the MCM
rows, a noisier population, would widen a WordleBot interval). Test days are never used.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, clone

from wordle_moe import evaluation, metrics
from wordle_moe.crossfit import fit_estimator, oof_residuals
from wordle_moe.intervals import bootstrap_summary, predictive_interval
from wordle_moe.parallel import parallel_map
from wordle_moe.paths import BUCKET_LABELS

TRIES = np.arange(1, 8, dtype=np.float64)  # a failure counts as 7 tries, as everywhere in the project
METRICS = [*evaluation.SUMMARY_METRICS, "spearman_mean_tries"]


def mean_tries(P: np.ndarray) -> np.ndarray:
    """Expected number of tries of each distribution (the last axis holds the 7 buckets)."""
    return np.asarray(P, dtype=float) @ TRIES


def spearman_mean_tries(P_true: np.ndarray, P_pred: np.ndarray) -> float:
    """Spearman rank correlation of predicted vs observed mean tries over the rows (days)."""
    a, b = mean_tries(P_true), mean_tries(P_pred)
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # e.g. the mean-distribution peer: a constant forecast has no ranking
        return float("nan")
    return float(spearmanr(a, b).statistic)


def scores(P_true: np.ndarray, P_pred: np.ndarray) -> dict[str, float]:
    """The protocol C metrics of one model: MAE (pp), RPS, JS, KL, |Δ expected tries|, Spearman of mean tries."""
    out = {k: v for k, v in metrics.distribution_metrics(P_true, P_pred).items() if k in evaluation.SUMMARY_METRICS}
    out["spearman_mean_tries"] = spearman_mean_tries(P_true, P_pred)
    return out


def day_resamples(n: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """(n_boot, n) indices of test days drawn with replacement: the same draws for every model (paired)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def rps_interval(P_true: np.ndarray, P_pred: np.ndarray, draws: np.ndarray, ci_level: float = 0.95
                 ) -> tuple[float, float]:
    """Percentile interval of the mean RPS over resampled test days (how much the figure depends on the days)."""
    per_day = metrics.rps(P_true, P_pred)
    a = (1 - ci_level) / 2
    low, high = np.quantile(per_day[draws].mean(axis=1), [a, 1 - a])
    return float(low), float(high)


TUNING_CUTOFF = pd.Timestamp("2024-01-01")


def tuning_split(dates: Any, populations: Any, train: np.ndarray,
                 cutoff: pd.Timestamp = TUNING_CUTOFF) -> tuple[np.ndarray, np.ndarray]:
    """Protocol C repeated INSIDE its training rows (cut-off 2024-01-01 by default): the split on which levers
    are chosen, so the 184 test days never steer a choice. Returns indices into the full arrays."""
    train = np.asarray(train)
    tr, te = evaluation.protocol_c_split(pd.Series(np.asarray(dates))[train], np.asarray(populations)[train], cutoff)
    return train[tr], train[te]


def population_residuals(estimator: BaseEstimator, X: np.ndarray, P: np.ndarray, populations: np.ndarray,
                         population: str, *, cv: int = 5, seed: int = 0,
                         n_reported: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold residuals (m, 7) of the training rows of ``population`` (inner K-fold over all training rows)."""
    resid = oof_residuals(estimator, X, P, cv=cv, n_reported=n_reported, random_state=seed)
    mine = np.asarray(populations) == population
    if not mine.any():
        raise ValueError(f"no training rows of population {population!r} to calibrate the interval on")
    return resid[mine]


def fit_forecast(estimator: BaseEstimator, X: np.ndarray, P: np.ndarray, populations: np.ndarray,
                 train: np.ndarray, test: np.ndarray, *, population: str = "wordlebot", ci_level: float = 0.95,
                 calibration_estimator: BaseEstimator | None = None, cv: int = 5, seed: int = 0,
                 n_reported: np.ndarray | None = None, residuals: np.ndarray | None = None) -> dict[str, Any]:
    """Fit a bootstrap MoE on ``train`` and forecast ``test``: replicas, mean, bootstrap and calibrated intervals.

    ``residuals``: the population's out-of-fold residuals when already computed (``population_residuals``).
    Returns dict(model, replicas (B, m, 7), mean, low, high, low_cal, high_cal (m, 7), residuals (r, 7)).
    """
    nr = None if n_reported is None else np.asarray(n_reported)[train]
    model = fit_estimator(clone(estimator), X[train], P[train], None, nr)
    replicas = model.predict_replicas(X[test])
    s = bootstrap_summary(replicas, ci_level)
    resid = residuals
    if resid is None:
        inner = calibration_estimator if calibration_estimator is not None else estimator
        resid = population_residuals(inner, X[train], P[train], np.asarray(populations)[train], population, cv=cv,
                                     seed=seed, n_reported=nr)
    low_cal, high_cal = predictive_interval(s["mean"], s["low"], s["high"], resid, ci_level)
    return {"model": model, "replicas": replicas, "mean": s["mean"], "low": s["low"], "high": s["high"],
            "low_cal": low_cal, "high_cal": high_cal, "residuals": resid, "ci_level": ci_level}


def forecast_scores(P_true: np.ndarray, fc: Mapping[str, Any]) -> dict[str, float]:
    """Metrics of the bootstrap mean plus coverage and mean width (pp) of both intervals on the observed shares."""
    row = scores(P_true, fc["mean"])
    row["coverage_bootstrap"] = evaluation.interval_coverage(P_true, fc["low"], fc["high"])
    row["coverage_calibrated"] = evaluation.interval_coverage(P_true, fc["low_cal"], fc["high_cal"])
    row["width_bootstrap_pp"] = float(100 * (fc["high"] - fc["low"]).mean())
    row["width_calibrated_pp"] = float(100 * (fc["high_cal"] - fc["low_cal"]).mean())
    return row


def mean_tries_interval(fc: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Forecast of the mean tries per day: bootstrap mean and percentile interval over replicas, and the
    calibrated predictive interval (the bootstrap interval widened by the residual quantiles of the mean
    tries; a share residual maps linearly to a mean-tries residual, (P - P_hat) @ tries)."""
    a = (1 - fc["ci_level"]) / 2
    centre = mean_tries(fc["mean"])
    low, high = np.quantile(mean_tries(fc["replicas"]), [a, 1 - a], axis=0)
    q_low, q_high = np.quantile(mean_tries(fc["residuals"]), [a, 1 - a])
    return {"mean": centre, "low": low, "high": high,
            "low_cal": np.minimum(low, centre + q_low), "high_cal": np.maximum(high, centre + q_high)}


FORECAST_KEYS = {"mean": "pred", "low": "boot_low", "high": "boot_high", "low_cal": "pi_low", "high_cal": "pi_high"}


def forecast_frame(dates: Any, words: Any, P_true: np.ndarray, fc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per test day: date, word, observed shares (``observed_<b>``), then per bucket b the forecast
    mean ``pred_<b>``, bootstrap interval of the mean ``boot_low/high_<b>`` and calibrated predictive interval
    ``pi_low/high_<b>`` (shares), and the same five plus the observed value for the mean tries."""
    df = pd.DataFrame({"date": pd.to_datetime(pd.Series(list(dates))).dt.strftime("%Y-%m-%d").to_numpy(),
                       "word": list(words)})
    for j, label in enumerate(BUCKET_LABELS):
        df[f"observed_{label}"] = P_true[:, j]
    for j, label in enumerate(BUCKET_LABELS):
        for key, prefix in FORECAST_KEYS.items():
            df[f"{prefix}_{label}"] = fc[key][:, j]
    mt = mean_tries_interval(fc)
    df["observed_mean_tries"] = mean_tries(P_true)
    for key, prefix in FORECAST_KEYS.items():
        df[f"{prefix}_mean_tries"] = mt[key]
    df["ci_level"] = fc["ci_level"]
    return df


def _protocol_c_fit(name: str, *, models: Mapping[str, BaseEstimator], moe_name: str, X: np.ndarray, P: np.ndarray,
                    populations: np.ndarray, train: np.ndarray, test: np.ndarray, ci_level: float, seed: int,
                    n_reported: np.ndarray | None, residuals: np.ndarray) -> tuple[dict[str, float], np.ndarray, Any]:
    """(scores, test predictions, the MoE's forecast or None) of one protocol C model: a task for ``parallel_map``."""
    if name == moe_name:
        fc = fit_forecast(models[name], X, P, populations, train, test, ci_level=ci_level, seed=seed,
                          n_reported=n_reported, residuals=residuals)
        return forecast_scores(P[test], fc), fc["mean"], fc
    nr = None if n_reported is None else np.asarray(n_reported)[train]
    pred = fit_estimator(clone(models[name]), X[train], P[train], None, nr).predict(X[test])
    return scores(P[test], pred), pred, None


def protocol_c_comparison(models: Mapping[str, BaseEstimator], moe_name: str, X: np.ndarray, P: np.ndarray,
                          dates: Any, populations: np.ndarray, words: Any, *, ci_level: float = 0.95,
                          calibration_estimator: BaseEstimator | None = None, cv: int = 5, seed: int = 0,
                          n_reported: np.ndarray | None = None, n_day_draws: int = 2000
                          ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(table, forecast frame, MoE forecast) of protocol C: one row per model, best bootstrap-mean RPS first.

    Every model is fitted on the same training rows; ``models[moe_name]`` must give bootstrap replicas.
    ``rps_low``/``rps_high`` resample the 184 test days (the same draws for every model), and
    ``rps_ratio_to_best_peer`` divides each RPS by the best model whose name does not start with "moe".
    """
    X, P = np.asarray(X, dtype=float), np.asarray(P, dtype=float)
    train, test = evaluation.protocol_c_split(dates, populations)
    draws = day_resamples(len(test), n_day_draws, seed)
    # the MoE's calibration residuals first (its folds as one batched fit), then the MoE, then the peers in parallel
    nr = None if n_reported is None else np.asarray(n_reported)[train]
    inner = calibration_estimator if calibration_estimator is not None else models[moe_name]
    resid = population_residuals(inner, X[train], P[train], np.asarray(populations)[train], "wordlebot", cv=cv,
                                 seed=seed, n_reported=nr)
    task = partial(_protocol_c_fit, models=dict(models), moe_name=moe_name, X=X, P=P, populations=populations,
                   train=train, test=test, ci_level=ci_level, seed=seed, n_reported=n_reported, residuals=resid)
    # every model one task, the MoE (the longest) first: in a worker its own inner CV and bootstrap run there in
    # turn while the other workers fit the peers (the notebook runs this in the background: the pool does it all)
    names = [moe_name] + [name for name in models if name != moe_name]
    results = dict(zip(names, parallel_map(task, names)))
    fc = results[moe_name][2]
    rows, preds = [], {}
    for name in models:
        row, preds[name], _ = results[name]
        row["rps_low"], row["rps_high"] = rps_interval(P[test], preds[name], draws, ci_level)
        rows.append({"protocol": "C", "model": name, "n_train": len(train), "n_test": len(test), **row})
    table = pd.DataFrame(rows)
    peers = table[~table["model"].str.startswith("moe")]
    if len(peers):
        table["rps_ratio_to_best_peer"] = table["rps"] / peers["rps"].min()
    table = table.sort_values("rps", kind="stable").reset_index(drop=True)
    frame = forecast_frame(pd.Series(np.asarray(dates))[test], np.asarray(words)[test], P[test], fc)
    return table, frame, fc


def routing_by_population(models: list, X: np.ndarray, populations: np.ndarray) -> pd.DataFrame:
    """Mean gate weight of every expert on each population's rows, per bootstrap replica (long table).

    Expert labels are arbitrary in each replica, so each replica's experts are ordered by their mean gate on
    the first population (expert 0 = the one that population's rows go to most) before any averaging.
    """
    import torch

    populations = np.asarray(populations)
    pops = list(dict.fromkeys(populations))
    X = np.asarray(X, dtype=np.float32)
    tables, offset = [], 0
    for model in models:
        model.eval()
        with torch.no_grad():
            gates = model(X, return_intermediate=True)["gates"].numpy()  # (R, n, E) sparse gates actually mixed
        means = np.stack([gates[:, populations == p].mean(axis=1) for p in pops], axis=1)  # (R, pops, E)
        order = np.argsort(-means[:, 0, :], axis=1, kind="stable")
        means = np.take_along_axis(means, order[:, None, :], axis=2)
        R, _, E = means.shape
        tables.append(pd.DataFrame({"replica": offset + np.repeat(np.arange(R), len(pops) * E),
                                    "population": np.tile(np.repeat(pops, E), R),
                                    "expert": np.tile(np.arange(E), R * len(pops)),
                                    "mean_gate": means.reshape(-1)}))
        offset += R
    return pd.concat(tables, ignore_index=True)


def routing_summary(routing: pd.DataFrame) -> pd.DataFrame:
    """Mean, 2.5% and 97.5% quantile over replicas of each (population, expert)'s mean gate weight."""
    g = routing.groupby(["population", "expert"], sort=False)["mean_gate"]
    return pd.DataFrame({"mean": g.mean(), "q025": g.quantile(0.025), "q975": g.quantile(0.975)}).reset_index()


def routing_split_share(routing: pd.DataFrame, a: str = "mcm", b: str = "wordlebot") -> float:
    """Share of replicas in which the rows of populations ``a`` and ``b`` go mostly to different experts."""
    top = routing.loc[routing.groupby(["replica", "population"])["mean_gate"].idxmax()]
    top = top.pivot(index="replica", columns="population", values="expert")
    return float((top[a] != top[b]).mean())


def protocol_c_models(config: Any, B: int, quick: bool = False, seed: int = 0
                      ) -> tuple[dict[str, BaseEstimator], BaseEstimator]:
    """(models, calibration stand-in) of the notebook's protocol C table: the peer line-up with the MoE ("moe", B
    replicas; QUICK keeps the two cheapest peers). The stand-in (one model) gives the inner-CV residuals."""
    from wordle_moe.baselines import make_peers
    from wordle_moe.estimator import residual_model

    return make_peers(config, quick, random_state=seed, moe_replicas=B), residual_model(config)


def plot_forecast(frame: pd.DataFrame, title: str | None = None):
    """Predicted vs observed mean tries per test day: the forecast with its bootstrap interval (dark band) and
    calibrated predictive interval (light band) over time (left), and predicted against observed (right)."""
    import matplotlib.pyplot as plt

    dates = pd.to_datetime(frame["date"])
    level = int(round(100 * float(frame["ci_level"].iloc[0])))
    inside = (frame["observed_mean_tries"] >= frame["pi_low_mean_tries"]) & \
             (frame["observed_mean_tries"] <= frame["pi_high_mean_tries"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 5.4), gridspec_kw={"width_ratios": [2.6, 1]})
    ax.fill_between(dates, frame["pi_low_mean_tries"], frame["pi_high_mean_tries"], color="tab:blue", alpha=0.15,
                    step="mid", label=f"{level}% predictive interval (calibrated)")
    ax.fill_between(dates, frame["boot_low_mean_tries"], frame["boot_high_mean_tries"], color="tab:blue", alpha=0.35,
                    step="mid", label=f"{level}% bootstrap interval of the mean")
    ax.plot(dates, frame["pred_mean_tries"], color="tab:blue", lw=1.2, label="forecast (bootstrap mean)")
    ax.scatter(dates, frame["observed_mean_tries"], s=10, color="black", zorder=3, label="observed (WordleBot)")
    ax.scatter(dates[~inside], frame.loc[~inside, "observed_mean_tries"], s=28, facecolors="none",
               edgecolors="tab:red", zorder=4,
               label=f"mean tries outside its predictive interval ({int((~inside).sum())} days)")
    for i in np.argsort(-np.abs(frame["observed_mean_tries"] - frame["pred_mean_tries"]).to_numpy())[:5]:
        ax.annotate(frame["word"].iloc[i], (dates.iloc[i], frame["observed_mean_tries"].iloc[i]), fontsize=8,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_ylabel("mean tries (a failure counts as 7)")
    ax.set_title(title or "WordleBot days 2024-07-01 .. 2024-12-31, forecast from training days before")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, frameon=False)
    ax.grid(alpha=0.3)
    lo = float(min(frame["observed_mean_tries"].min(), frame["pred_mean_tries"].min())) - 0.1
    hi = float(max(frame["observed_mean_tries"].max(), frame["pred_mean_tries"].max())) + 0.1
    ax2.errorbar(frame["observed_mean_tries"], frame["pred_mean_tries"],
                 yerr=[frame["pred_mean_tries"] - frame["boot_low_mean_tries"],
                       frame["boot_high_mean_tries"] - frame["pred_mean_tries"]],
                 fmt="o", ms=3, color="tab:blue", ecolor="tab:blue", alpha=0.6, elinewidth=0.8)
    ax2.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=1)
    rho = spearman_mean_tries(frame[[f"observed_{b}" for b in BUCKET_LABELS]].to_numpy(),
                              frame[[f"pred_{b}" for b in BUCKET_LABELS]].to_numpy())
    ax2.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="observed mean tries", ylabel="predicted mean tries",
            title=f"per day (Spearman {rho:.2f})")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig
