"""Beyond 2022: protocol C (forecasting the WordleBot days 2024-07-01 .. 2024-12-31) for every model, the
levers tried on the MoE (chosen on a split inside the training rows), and MCM protocol A with and without
the WordleBot days added to the training folds.

Run:  .venv/bin/python benchmarks/forecast.py [--quick] [--B 30] [--repeats 3]
Writes benchmarks/results/forecast.json.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import RESULTS_DIR, machine_info, publish  # noqa: E402
from sklearn.base import BaseEstimator, RegressorMixin, clone  # noqa: E402

from wordle_moe import evaluation, forecast, metrics  # noqa: E402
from wordle_moe.baselines import make_peers  # noqa: E402
from wordle_moe.crossfit import fit_estimator  # noqa: E402

# Levers measured on the MoE (knob overrides of the module's defaults); "hard_mode" adds the hard-mode days
# as a third population to the training rows (the test rows stay the normal-mode WordleBot days).
LEVERS: dict[str, dict] = {
    "default": {},
    "three_experts": {"num_experts": 3},
    "top_2": {"top_k": 2},
    "skip_path": {"expert_skip": True, "shared_base": False},
    "skip_warm_start": {"expert_skip": True, "skip_init": "softmax_regression", "shared_base": False},
    "hard_mode": {},
    "beta_head_linear": {},  # not a MoE: the discretised-Beta output on a linear model (DiscretisedBetaRegression)
}
WARM = LEVERS["skip_warm_start"]
GOAL_RATIO = 0.9
GOAL_COVERAGE = (0.93, 0.97)
GOAL_PROTOCOL_A_GAIN = 0.05


class DiscretisedBetaRegression(RegressorMixin, BaseEstimator):
    """The low-dimensional output of published Bayesian models of this task, as a linear model: the tries
    follow a Beta(a, b) on (0, 1) cut into 7 equal buckets (the 7th = X), with (a, b) = softplus of a linear
    function of the standardised features; L-BFGS on the soft-label cross-entropy + alpha/2 ||W||². Measures whether a
    2-parameter head per expert could beat a free 7-way softmax before building one into the experts."""

    def __init__(self, alpha: float = 1e-3, grid: int = 140):
        self.alpha = alpha
        self.grid = grid

    def _dist(self, theta, Z):
        import torch

        u = (torch.arange(self.grid, dtype=torch.float64) + 0.5) / self.grid
        bucket = torch.arange(self.grid) * 7 // self.grid
        ab = torch.nn.functional.softplus(Z @ theta[:-2].reshape(Z.shape[1], 2) + theta[-2:]) + 1e-3
        density = torch.softmax((ab[:, :1] - 1) * torch.log(u) + (ab[:, 1:] - 1) * torch.log1p(-u), dim=1)
        return torch.zeros(Z.shape[0], 7, dtype=torch.float64).index_add_(1, bucket, density)

    def fit(self, X, P, sample_weight=None):
        import torch
        from sklearn.preprocessing import StandardScaler

        self.scaler_ = StandardScaler().fit(X)
        Z, P = torch.tensor(self.scaler_.transform(X)), torch.tensor(np.asarray(P, dtype=float))
        theta = torch.zeros(Z.shape[1] * 2 + 2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([theta], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = -(P * torch.log(self._dist(theta, Z) + 1e-12)).sum(1).mean() \
                + 0.5 * self.alpha * (theta[:-2] ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.theta_ = theta.detach()
        return self

    def predict(self, X):
        import torch

        return self._dist(self.theta_, torch.tensor(self.scaler_.transform(X))).numpy()


def moe(knobs: dict, B: int, seed: int = 0):
    """The MoE estimator with the module's knobs plus ``knobs``; B bootstrap replicas (0: one model)."""
    import moe_booststrap as mb
    from wordle_moe.estimator import MoEDistributionRegressor

    params = set(MoEDistributionRegressor().get_params())
    base = {k: v for k, v in mb.config().to_dict().items() if k in params}
    return MoEDistributionRegressor(**{**base, **knobs, "n_bootstrap": B, "calibration_cv": 0, "random_state": seed})


def rps_of(est, ds, train, test) -> float:
    model = fit_estimator(clone(est), ds.X[train], ds.P[train], None, None)
    return float(metrics.rps(ds.P[test], model.predict(ds.X[test])).mean())


def protocol_c(ds, B: int, seed: int, quick: bool) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    import moe_booststrap as mb

    models = make_peers(mb.config(seed=seed), random_state=seed, moe_replicas=B)  # the notebook's line-up
    if quick:
        del models["single_mlp"]
    models["moe_bootstrap"] = models.pop("moe")
    return forecast.protocol_c_comparison(models, "moe_bootstrap", ds.X, ds.P, ds.dates, ds.population, ds.words,
                                          calibration_estimator=moe({}, 0, seed), seed=seed)


def levers(datasets: dict, B: int, seed: int, names: list[str]) -> pd.DataFrame:
    """Tuning RPS (inside protocol C's training rows) and test RPS of each lever; the pick uses tuning RPS only."""
    rows = []
    for name in names:
        ds = datasets["mcm+wordlebot+hard" if name == "hard_mode" else "mcm+wordlebot"]
        train, test = evaluation.protocol_c_split(ds.dates, ds.population)
        t_tr, t_te = forecast.tuning_split(ds.dates, ds.population, train)
        est = DiscretisedBetaRegression() if name == "beta_head_linear" else moe(LEVERS[name], B, seed)
        t0 = time.perf_counter()
        rows.append({"lever": name, "knobs": str(LEVERS[name]), "tuning_rps": rps_of(est, ds, t_tr, t_te),
                     "test_rps": rps_of(est, ds, train, test), "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["picked_by_tuning"] = table["tuning_rps"] == table["tuning_rps"].min()
    return table


def population_weighting(ds, B: int, seed: int, weights=(1.0, 3.0, 10.0)) -> pd.DataFrame:
    """Tuning and test RPS of softmax regression and the MoE when WordleBot rows weigh ``w`` times an MCM row
    (the WordleBot shares rest on ~400,000 games a day, the MCM ones on ~20,000-300,000 shared results)."""
    train, test = evaluation.protocol_c_split(ds.dates, ds.population)
    t_tr, t_te = forecast.tuning_split(ds.dates, ds.population, train)
    rows = []
    for name, est in (("softmax_regression", make_peers(random_state=seed)["softmax_regression"]),
                      ("moe_bootstrap", moe({}, B, seed)), ("moe_skip_warm_start", moe(WARM, B, seed))):
        for w in weights:
            sw = np.where(ds.population == "wordlebot", w, 1.0)
            r = [float(metrics.rps(ds.P[te], fit_estimator(clone(est), ds.X[tr], ds.P[tr], sw[tr], None)
                                   .predict(ds.X[te])).mean()) for tr, te in ((t_tr, t_te), (train, test))]
            rows.append({"model": name, "wordlebot_weight": w, "tuning_rps": r[0], "test_rps": r[1]})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["picked_by_tuning"] = table["tuning_rps"] == table.groupby("model")["tuning_rps"].transform("min")
    return table


def protocol_a_with_wordlebot(ds, B: int, seed: int, repeats: int) -> pd.DataFrame:
    """RPS on the MCM test folds of protocol A, training on the MCM fold alone or on it plus every WordleBot day."""
    mcm = np.flatnonzero(ds.population == "mcm")
    extra = np.flatnonzero(ds.population != "mcm")
    splits = evaluation.protocol_splits("A", len(mcm), n_repeats=repeats, random_state=seed)
    models = {"softmax_regression": make_peers(random_state=seed)["softmax_regression"],
              "moe_bootstrap": moe({}, B, seed),
              "moe_skip_warm_start": moe(WARM, B, seed)}
    rows = []
    for fold, tr, te in splits:
        for name, est in models.items():
            for added in (False, True):
                train = np.concatenate([mcm[tr], extra]) if added else mcm[tr]
                rows.append({"fold": fold, "model": name, "wordlebot_added": added,
                             "rps": rps_of(est, ds, train, mcm[te])})
        print(f"protocol A fold {fold}: " + ", ".join(f"{r['model']}{'+wb' if r['wordlebot_added'] else ''} "
                                                       f"{r['rps']:.5f}" for r in rows[-2 * len(models):]), flush=True)
    return pd.DataFrame(rows)


def goals(table: pd.DataFrame, proto_a: pd.DataFrame) -> dict:
    sub = table.set_index("model")
    peers = sub[~sub.index.str.startswith("moe")]
    best_peer = peers["rps"].idxmin()
    m = sub.loc["moe_bootstrap"]
    a = proto_a.groupby(["model", "wordlebot_added"])["rps"].mean()
    gain = 1 - a[("moe_bootstrap", True)] / a[("moe_bootstrap", False)]
    gain_warm = 1 - a[("moe_skip_warm_start", True)] / a[("moe_skip_warm_start", False)]
    return {
        "protocol_C": {"moe_rps": float(m["rps"]), "best_peer": best_peer, "best_peer_rps": float(peers["rps"].min()),
                       "ratio_to_best_peer": float(m["rps"] / peers["rps"].min()),
                       "moe_lowest_rps": bool(sub["rps"].idxmin() == "moe_bootstrap"),
                       "ratio_le_0_9": bool(m["rps"] <= GOAL_RATIO * peers["rps"].min()),
                       "coverage_calibrated": float(m["coverage_calibrated"]),
                       "coverage_in_93_97": bool(GOAL_COVERAGE[0] <= m["coverage_calibrated"] <= GOAL_COVERAGE[1])},
        "protocol_A": {"moe_rps_mcm_only": float(a[("moe_bootstrap", False)]),
                       "moe_rps_with_wordlebot": float(a[("moe_bootstrap", True)]), "moe_gain": float(gain),
                       "softmax_rps_mcm_only": float(a[("softmax_regression", False)]),
                       "softmax_rps_with_wordlebot": float(a[("softmax_regression", True)]),
                       "gain_ge_5pct": bool(gain >= GOAL_PROTOCOL_A_GAIN),
                       "moe_skip_warm_start_rps_mcm_only": float(a[("moe_skip_warm_start", False)]),
                       "moe_skip_warm_start_rps_with_wordlebot": float(a[("moe_skip_warm_start", True)]),
                       "moe_skip_warm_start_gain": float(gain_warm)},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: B=4, two levers, one protocol A fold set")
    parser.add_argument("--B", type=int, default=30, help="bootstrap replicas of the MoE in protocol C (default 30)")
    parser.add_argument("--lever-B", type=int, default=20, help="replicas per lever (default 20)")
    parser.add_argument("--a-B", type=int, default=10, help="replicas per protocol A fold (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of protocol A's 5-fold CV (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weighting-only", action="store_true",
                        help="only the population-weighting lever, merged into the existing results file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    from wordle_moe.dataset import load_dataset

    start = time.perf_counter()
    B, lever_B, a_B = (4, 4, 4) if args.quick else (args.B, args.lever_B, args.a_B)
    datasets = {"mcm+wordlebot": load_dataset(sources=("mcm", "wordlebot")),
                "mcm+wordlebot+hard": load_dataset(sources=("mcm", "wordlebot", "wordlebot_hard"))}
    ds = datasets["mcm+wordlebot"]
    if args.weighting_only:
        from wordle_moe.io import write_json

        path = RESULTS_DIR / "forecast.json"
        result = json.loads(path.read_text()) if path.exists() else {}
        result["population_weighting"] = population_weighting(ds, lever_B, args.seed).to_dict(orient="records")
        write_json(result, path)
        return result
    t0 = time.perf_counter()
    table, frame, fc = protocol_c(ds, B, args.seed, args.quick)
    t_c = time.perf_counter() - t0
    routing = forecast.routing_summary(forecast.routing_by_population(fc["model"].bootstrap_models_, ds.X,
                                                                      ds.population))
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.5g}".format):
        print(table.to_string(index=False))
        print(routing.to_string(index=False))
    lever_table = levers(datasets, lever_B, args.seed, ["default", "hard_mode"] if args.quick else list(LEVERS))
    weighting = population_weighting(ds, lever_B, args.seed, (1.0, 10.0) if args.quick else (1.0, 3.0, 10.0))
    proto_a = protocol_a_with_wordlebot(ds, a_B, args.seed, 1 if args.quick else args.repeats)
    result = {
        "command": "python benchmarks/forecast.py" + (" --quick" if args.quick else ""),
        "quick": args.quick, "B": B, "lever_B": lever_B, "protocol_A_B": a_B,
        "protocol_A_repeats": 1 if args.quick else args.repeats,
        "n_train_protocol_C": int(table["n_train"].iloc[0]), "n_test_protocol_C": int(table["n_test"].iloc[0]),
        "goal": goals(table, proto_a),
        "protocol_C": table.drop(columns=["protocol"]).to_dict(orient="records"),
        "routing_by_population": routing.to_dict(orient="records"),
        "levers": lever_table.to_dict(orient="records"),
        "population_weighting": weighting.to_dict(orient="records"),
        "protocol_A": proto_a.groupby(["model", "wordlebot_added"])["rps"].agg(["mean", "std", "count"])
        .reset_index().to_dict(orient="records"),
        "protocol_C_seconds": t_c, "total_seconds": time.perf_counter() - start, "machine": machine_info(),
    }
    return publish("forecast", result)


if __name__ == "__main__":
    main()
