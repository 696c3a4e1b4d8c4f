"""Protocol C helpers: metrics, intervals, the forecast table and routing by population (small hand-made data)."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin

from wordle_moe import forecast, metrics
from wordle_moe.baselines import MeanDistribution, SoftmaxRegression
from wordle_moe.config import MoEConfig
from wordle_moe.training import train_moe


def dirichlet(n, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(7) * 3, size=n)


def test_mean_tries_and_spearman_by_hand():
    P = np.array([[1, 0, 0, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1.0]])
    np.testing.assert_allclose(forecast.mean_tries(P), [1.0, 3.5, 7.0])
    Q = dirichlet(30, 1)
    R = dirichlet(30, 2)
    expected = spearmanr(Q @ np.arange(1, 8), R @ np.arange(1, 8)).statistic
    assert forecast.spearman_mean_tries(Q, R) == pytest.approx(expected)
    assert np.isnan(forecast.spearman_mean_tries(Q, np.tile(Q.mean(0), (30, 1))))  # a constant forecast


def test_rps_interval_brackets_the_mean_and_is_paired():
    P, Q = dirichlet(50, 3), dirichlet(50, 4)
    draws = forecast.day_resamples(50, 500, seed=0)
    np.testing.assert_array_equal(draws, forecast.day_resamples(50, 500, seed=0))
    lo, hi = forecast.rps_interval(P, Q, draws)
    assert lo < metrics.rps(P, Q).mean() < hi


def test_tuning_split_stays_inside_protocol_c_training_rows():
    dates = pd.to_datetime(["2022-05-01", "2023-12-30", "2024-01-02", "2024-03-01", "2024-03-01", "2024-08-01"])
    pops = np.array(["mcm", "wordlebot", "wordlebot", "wordlebot", "wordlebot_hard", "wordlebot"])
    train = np.array([0, 1, 2, 3, 4])
    tr, te = forecast.tuning_split(dates, pops, train)
    np.testing.assert_array_equal(tr, [0, 1])
    np.testing.assert_array_equal(te, [2, 3])  # WordleBot normal-mode days from 2024-01-01; hard rows never test


def fake_forecast(m=4, B=5, seed=0):
    rng = np.random.default_rng(seed)
    replicas = rng.dirichlet(np.ones(7) * 5, size=(B, m))
    mean = replicas.mean(0)
    return {"replicas": replicas, "mean": mean, "low": replicas.min(0), "high": replicas.max(0),
            "low_cal": np.clip(mean - 0.1, 0, 1), "high_cal": np.clip(mean + 0.1, 0, 1),
            "residuals": np.zeros((10, 7)), "ci_level": 0.95}


def test_mean_tries_interval_by_hand():
    fc = fake_forecast()
    mt = forecast.mean_tries_interval(fc)
    per_replica = fc["replicas"] @ np.arange(1, 8)
    np.testing.assert_allclose(mt["low"], np.quantile(per_replica, 0.025, axis=0))
    np.testing.assert_allclose(mt["low_cal"], mt["low"])  # zero residuals: nothing to widen
    shift = np.zeros((10, 7))
    shift[:, 3], shift[:, 4] = -0.1, 0.1  # every residual moves 10% of players from 4 to 5 tries: +0.1 mean tries
    mt2 = forecast.mean_tries_interval({**fc, "residuals": shift})
    np.testing.assert_allclose(mt2["high_cal"], np.maximum(mt["high"], mt["mean"] + 0.1))
    np.testing.assert_allclose(mt2["low_cal"], np.minimum(mt["low"], mt["mean"] + 0.1))


def test_forecast_frame_columns():
    fc = fake_forecast()
    P = dirichlet(4, 9)
    df = forecast.forecast_frame(pd.to_datetime(["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-04"]),
                                 ["a", "b", "c", "d"], P, fc)
    labels = ["1", "2", "3", "4", "5", "6", "X"]
    assert list(df.columns[:9]) == ["date", "word", *[f"observed_{b}" for b in labels]]
    assert df["date"].tolist()[0] == "2024-07-01"
    np.testing.assert_allclose(df[[f"pred_{b}" for b in labels]].to_numpy(), fc["mean"])
    np.testing.assert_allclose(df[[f"pi_high_{b}" for b in labels]].to_numpy(), fc["high_cal"])
    np.testing.assert_allclose(df["observed_mean_tries"], P @ np.arange(1, 8))
    assert {"pred_mean_tries", "boot_low_mean_tries", "pi_high_mean_tries", "ci_level"} <= set(df.columns)


class JitteredSoftmax(RegressorMixin, BaseEstimator):
    """A cheap stand-in for the bootstrap MoE: softmax regression plus fixed jitter as 'replicas'."""

    def __init__(self, B=6):
        self.B = B

    def fit(self, X, P, sample_weight=None):
        self.base_ = SoftmaxRegression(alpha=1e-2).fit(X, P)
        return self

    def predict_replicas(self, X):
        Q = self.base_.predict(X)
        rng = np.random.default_rng(0)
        noisy = Q[None] * rng.uniform(0.9, 1.1, size=(self.B, *Q.shape))
        return noisy / noisy.sum(-1, keepdims=True)

    def predict(self, X):
        return self.predict_replicas(X).mean(0)


def test_protocol_c_comparison_on_synthetic_days():
    rng = np.random.default_rng(0)
    n_mcm, n_wb = 60, 120
    dates = pd.Series([*pd.date_range("2022-01-07", periods=n_mcm), *pd.date_range("2024-04-01", periods=n_wb)])
    pops = np.array(["mcm"] * n_mcm + ["wordlebot"] * n_wb)
    X = np.column_stack([rng.normal(size=(n_mcm + n_wb, 3)), (pops == "wordlebot").astype(float)])
    logits = X @ rng.normal(size=(4, 7))
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    models = {"mean_distribution": MeanDistribution(), "moe_fake": JitteredSoftmax()}
    words = np.arange(len(X)).astype(str)
    table, frame, fc = forecast.protocol_c_comparison(models, "moe_fake", X, P, dates, pops, words, cv=3,
                                                      n_day_draws=200)
    n_test = int(((dates >= "2024-07-01") & (pops == "wordlebot")).sum())
    assert len(frame) == n_test and (table["n_test"] == n_test).all()
    assert table["model"].tolist() == ["moe_fake", "mean_distribution"]  # sorted by RPS, best first
    moe = table.set_index("model").loc["moe_fake"]
    assert moe["rps"] == pytest.approx(metrics.rps(P[-n_test:], fc["mean"]).mean())
    assert moe["rps_low"] <= moe["rps"] <= moe["rps_high"]
    assert moe["coverage_calibrated"] >= moe["coverage_bootstrap"]  # the envelope never narrows the interval
    assert len(fc["residuals"]) == int(((dates < "2024-07-01") & (pops == "wordlebot")).sum())  # WordleBot rows only
    assert np.isnan(table.set_index("model").loc["mean_distribution", "coverage_calibrated"])


def test_routing_by_population_on_a_trained_model():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=(80, 3)), np.repeat([0.0, 1.0], 40)])
    P = dirichlet(80, 5)
    cfg = MoEConfig(num_experts=3, top_k=1, hidden_size=8, max_epochs=5, patience=5)
    model, _ = train_moe(X[:60], P[:60], X[60:], P[60:], config=cfg)
    pops = np.repeat(["mcm", "wordlebot"], 40)
    routing = forecast.routing_by_population([model], X, pops)
    assert len(routing) == 1 * 2 * 3
    sums = routing.groupby(["replica", "population"])["mean_gate"].sum()
    np.testing.assert_allclose(sums, 1, atol=1e-6)  # sparse gates are a distribution over experts per row
    mcm = routing[routing["population"] == "mcm"]["mean_gate"].to_numpy()
    assert (np.diff(mcm) <= 1e-7).all()  # experts ordered by the first population's gate mass
    summary = forecast.routing_summary(routing)
    assert list(summary.columns) == ["population", "expert", "mean", "q025", "q975"]


def test_routing_split_share_by_hand():
    routing = pd.DataFrame({"replica": [0, 0, 0, 0, 1, 1, 1, 1],
                            "population": ["mcm", "mcm", "wordlebot", "wordlebot"] * 2,
                            "expert": [0, 1, 0, 1] * 2,
                            "mean_gate": [0.8, 0.2, 0.3, 0.7, 0.6, 0.4, 0.9, 0.1]})
    assert forecast.routing_split_share(routing) == 0.5
