"""Protocols A/B, fold bookkeeping, summaries and interval coverage on synthetic data with a stand-in estimator."""
import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.base import BaseEstimator, RegressorMixin

from wordle_moe import evaluation
from wordle_moe.baselines import MeanDistribution, SoftmaxRegression
from wordle_moe.metrics import rps


def _data(n: int = 80, seed: int = 0, noise: float = 0.4):
    """Soft labels = softmax(linear) plus word-level noise, so intervals have something to cover."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    W = rng.normal(scale=0.6, size=(3, 7))
    base = np.log([0.01, 0.05, 0.2, 0.33, 0.25, 0.12, 0.04])
    P = softmax(X @ W + base + rng.normal(scale=noise, size=(n, 7)), axis=1)
    dates = pd.date_range("2022-01-07", "2022-12-31", periods=n).normalize()
    return X, P, dates


class BaggedSoftmax(RegressorMixin, BaseEstimator):
    """Stand-in for the MoE estimator: bootstrap-bagged softmax regression with predict_interval."""

    def __init__(self, n_bootstrap: int = 15, random_state: int = 0):
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def fit(self, X, P, sample_weight=None):
        rng = np.random.default_rng(self.random_state)
        self.models_ = [SoftmaxRegression(alpha=0.05).fit(X[idx], P[idx])
                        for idx in (rng.integers(0, len(X), len(X)) for _ in range(self.n_bootstrap))]
        self.n_features_in_ = X.shape[1]
        return self

    def _boot(self, X):
        return np.stack([m.predict(X) for m in self.models_])

    def predict(self, X):
        return self._boot(X).mean(0)

    def predict_interval(self, X, ci_level=0.95):
        boot = self._boot(X)
        a = (1 - ci_level) / 2
        return boot.mean(0), np.quantile(boot, a, axis=0), np.quantile(boot, 1 - a, axis=0)


class SpyEstimator(MeanDistribution):
    """Records which rows it was fitted on (class attribute: clones share it)."""

    seen: list = []

    def fit(self, X, P, sample_weight=None):
        SpyEstimator.seen.append(X[:, 0].copy())
        return super().fit(X, P, sample_weight)


def test_protocol_a_is_repeated_five_fold():
    splits = evaluation.protocol_splits("A", 50)
    assert len(splits) == 15
    for rep in range(3):
        tests = np.concatenate([te for f, _, te in splits[rep * 5:(rep + 1) * 5]])
        np.testing.assert_array_equal(np.sort(tests), np.arange(50))  # each repeat partitions the rows
    for _, tr, te in splits:
        assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 50
    # seeded: same folds every call; the repeats are reshuffled
    again = evaluation.protocol_splits("A", 50)
    np.testing.assert_array_equal(splits[3][2], again[3][2])
    assert not np.array_equal(splits[0][2], splits[5][2])


def test_protocol_b_splits_on_the_cutoff_date():
    dates = pd.to_datetime(["2022-09-29", "2022-09-30", "2022-10-01", "2022-12-31", "2022-01-07"])
    [(fold, tr, te)] = evaluation.protocol_splits("B", 5, dates)
    np.testing.assert_array_equal(tr, [0, 1, 4])
    np.testing.assert_array_equal(te, [2, 3])
    with pytest.raises(ValueError, match="dates"):
        evaluation.protocol_splits("B", 5)
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluation.protocol_splits("D", 5)


def test_evaluate_models_scores_match_direct_computation():
    X, P, dates = _data(60)
    models = {"mean": MeanDistribution(), "softmax": SoftmaxRegression(alpha=0.05)}
    table = evaluation.evaluate_models(models, X, P, dates, "A", progress=False)
    assert len(table) == 2 * 15
    assert set(table.columns) >= {"model", "protocol", "fold", *evaluation.SUMMARY_METRICS}
    # fold 4 of the mean model recomputed by hand
    _, tr, te = evaluation.protocol_splits("A", 60)[4]
    expected = rps(P[te], np.tile(P[tr].mean(0), (len(te), 1))).mean()
    got = table.query("model == 'mean' and fold == 4")["rps"].item()
    assert got == pytest.approx(expected)
    assert table.query("model == 'mean'")["coverage_bootstrap"].isna().all()  # no predict_interval


def test_models_are_fitted_on_training_rows_only():
    X, P, dates = _data(40)
    X = X.copy()
    X[:, 0] = np.arange(40)  # row ids
    SpyEstimator.seen = []
    evaluation.evaluate_models({"spy": SpyEstimator()}, X, P, dates, "B", progress=False)
    [seen] = SpyEstimator.seen
    before = np.flatnonzero(dates < "2022-10-01")
    np.testing.assert_array_equal(np.sort(seen), before)


def test_summarise_means_and_stds():
    table = pd.DataFrame({
        "model": ["m"] * 3 + ["k"] * 3, "protocol": ["A"] * 6, "fold": [0, 1, 2] * 2,
        "rps": [0.1, 0.2, 0.3, 0.05, 0.05, 0.05], "mae_pp": [1.0, 2.0, 3.0, 1.0, 1.0, 1.0],
    })
    s = evaluation.summarise(table).set_index("model")
    assert s.loc["m", "rps_mean"] == pytest.approx(0.2)
    assert s.loc["m", "rps_std"] == pytest.approx(0.1)  # sample std over folds
    assert s.loc["k", "mae_pp_std"] == pytest.approx(0.0)
    assert s.loc["m", "n_folds"] == 3


def test_interval_coverage_counts_cells():
    P = np.array([[0.1, 0.5], [0.3, 0.9]])
    assert evaluation.interval_coverage(P, np.zeros_like(P) + 0.2, np.ones_like(P) * 0.6) == pytest.approx(0.5)


def test_calibrated_coverage_is_near_nominal_and_beats_model_mean_interval():
    X, P, dates = _data(300, seed=1, noise=0.5)
    models = {"bagged": BaggedSoftmax(n_bootstrap=6)}
    splits = evaluation.protocol_splits("A", len(X))[:2]  # two folds keep the test fast
    table = evaluation.evaluate_models(models, X, P, dates, "A", splits=splits, progress=False, inner_cv=4,
                                       calibration_estimators={"bagged": SoftmaxRegression(alpha=0.05)})
    cov_boot = table["coverage_bootstrap"].mean()
    cov_cal = table["coverage_calibrated"].mean()
    assert cov_boot < 0.8          # the model-mean interval ignores word-level noise
    assert 0.9 <= cov_cal <= 0.99  # calibrated predictive interval is close to 95%
    assert (table["width_calibrated_pp"] > table["width_bootstrap_pp"]).all()


def test_predictions_are_returned_out_of_fold():
    X, P, dates = _data(30)
    table, preds = evaluation.evaluate_models({"mean": MeanDistribution()}, X, P, dates, "B",
                                              words=[f"w{i}" for i in range(30)], return_predictions=True,
                                              progress=False)
    assert len(preds) == table["n_test"].sum()
    np.testing.assert_allclose(preds[[f"pred_{k}" for k in range(7)]].sum(axis=1), 1.0)
    assert preds["word"].iloc[0].startswith("w")


class CountingEstimator(MeanDistribution):
    """Accepts n_reported like the MoE estimator; records what it received."""

    received: list = []

    def fit(self, X, P, sample_weight=None, n_reported=None):
        CountingEstimator.received.append(None if n_reported is None else np.asarray(n_reported).copy())
        return super().fit(X, P, sample_weight)


def test_n_reported_reaches_estimators_that_accept_it_training_rows_only():
    X, P, dates = _data(30)
    counts = np.arange(30) * 1000.0
    CountingEstimator.received = []
    evaluation.evaluate_models({"counting": CountingEstimator(), "mean": MeanDistribution()}, X, P, dates, "B",
                               n_reported=counts, progress=False)
    [got] = CountingEstimator.received
    np.testing.assert_array_equal(got, counts[np.flatnonzero(dates < "2022-10-01")])


def test_forecast_split_is_disjoint_and_seeded():
    dates = pd.date_range("2022-09-01", periods=60, freq="D")
    a = evaluation.forecast_split(dates, seed=3)
    b = evaluation.forecast_split(dates, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert len(a["test"]) == 30 and (dates[a["test"]] >= "2022-10-01").all()
    assert not set(a["train"]) & set(a["val"]) and len(a["train"]) + len(a["val"]) == 30
