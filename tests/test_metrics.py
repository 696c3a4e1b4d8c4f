"""Evaluation metrics checked against hand-computed values and independent scipy implementations."""
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from wordle_moe import metrics

ONE_HOT_3 = np.array([0, 0, 1, 0, 0, 0, 0], dtype=float)
ONE_HOT_4 = np.array([0, 0, 0, 1, 0, 0, 0], dtype=float)
UNIFORM = np.full(7, 1 / 7)


def _random_simplex(n: int, seed: int, with_zeros: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(7), size=n)
    if with_zeros:
        P[:, 0] = 0.0  # observed Wordle rows often have 0% in the 1-try bucket
        P /= P.sum(axis=1, keepdims=True)
    return P


# ---------------------------------------------------------------- RPS (hand-computed)
@pytest.mark.parametrize(
    "p_true, p_pred, expected",
    [
        # one bucket off: the cumulative curves differ by 1 at exactly one step -> 1/6
        (ONE_HOT_3, ONE_HOT_4, 1 / 6),
        # all mass in 1 try vs all mass failed: 6 steps of difference 1 -> 6/6
        (np.eye(7)[0], np.eye(7)[6], 1.0),
        # half/half on 3-4 vs uniform: diffs 1/7, 2/7, -1/14, -3/7, -2/7, -1/7 -> (77/196)/6
        (np.array([0, 0, 0.5, 0.5, 0, 0, 0]), UNIFORM, 77 / 196 / 6),
        # two buckets off: the cumulative curves differ at two steps -> 2/6
        (ONE_HOT_3, np.array([0, 0, 0, 0, 1, 0, 0.0]), 2 / 6),
        (UNIFORM, UNIFORM, 0.0),
    ],
)
def test_rps_matches_hand_computation(p_true, p_pred, expected):
    assert metrics.rps(p_true, p_pred)[0] == pytest.approx(expected, abs=1e-12)


def test_rps_is_rank_sensitive_where_mae_is_not():
    near = metrics.rps(ONE_HOT_3, ONE_HOT_4)[0]
    far = metrics.rps(ONE_HOT_3, np.eye(7)[6])[0]
    assert far > near
    assert metrics.mae_pp(ONE_HOT_3, ONE_HOT_4)[0] == pytest.approx(metrics.mae_pp(ONE_HOT_3, np.eye(7)[6])[0])


def test_rps_matches_loop_definition_on_random_rows():
    P, Q = _random_simplex(20, 1), _random_simplex(20, 2)
    expected = [sum((Q[i, :k + 1].sum() - P[i, :k + 1].sum()) ** 2 for k in range(6)) / 6 for i in range(20)]
    np.testing.assert_allclose(metrics.rps(P, Q), expected, atol=1e-12)


# ---------------------------------------------------------------- MAE, expected tries
def test_mae_pp_hand_values():
    # |diff| = 1 in two buckets out of seven -> 2/7 of 100 pp
    assert metrics.mae_pp(ONE_HOT_3, ONE_HOT_4)[0] == pytest.approx(200 / 7)
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.2, 0.1, 0.1])
    q = np.array([0.0, 0.1, 0.3, 0.3, 0.1, 0.1, 0.1])
    assert metrics.mae_pp(p, q)[0] == pytest.approx(100 * 0.2 / 7)
    assert metrics.max_error_pp(p, q)[0] == pytest.approx(10.0)


def test_expected_tries_counts_failure_as_seven():
    assert metrics.expected_tries(ONE_HOT_3)[0] == 3.0
    assert metrics.expected_tries(np.eye(7)[6])[0] == 7.0
    assert metrics.expected_tries(UNIFORM)[0] == pytest.approx(4.0)
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.2, 0.1, 0.1])
    assert metrics.expected_tries(p)[0] == pytest.approx(0.2 + 0.6 + 1.2 + 1.0 + 0.6 + 0.7)
    assert metrics.abs_delta_expected_tries(ONE_HOT_3, np.eye(7)[6])[0] == 4.0


# ---------------------------------------------------------------- JS and KL against scipy
@pytest.mark.parametrize("with_zeros", [False, True])
def test_js_divergence_matches_scipy(with_zeros):
    P, Q = _random_simplex(30, 3, with_zeros), _random_simplex(30, 4)
    expected = np.array([jensenshannon(p, q, base=2) ** 2 for p, q in zip(P, Q)])
    np.testing.assert_allclose(metrics.js_divergence(P, Q), expected, atol=1e-12)


def test_js_divergence_bounds_and_symmetry():
    assert metrics.js_divergence(np.eye(7)[0], np.eye(7)[6])[0] == pytest.approx(1.0)  # disjoint supports: 1 bit
    assert metrics.js_divergence(UNIFORM, UNIFORM)[0] == pytest.approx(0.0, abs=1e-15)
    P, Q = _random_simplex(10, 5, True), _random_simplex(10, 6, True)
    np.testing.assert_allclose(metrics.js_divergence(P, Q), metrics.js_divergence(Q, P), atol=1e-15)


@pytest.mark.parametrize("with_zeros", [False, True])
def test_kl_divergence_matches_scipy(with_zeros):
    P, Q = _random_simplex(30, 7, with_zeros), _random_simplex(30, 8)
    expected = np.array([entropy(p, q) for p, q in zip(P, Q)])  # natural log, KL(p || q)
    np.testing.assert_allclose(metrics.kl_divergence(P, Q), expected, atol=1e-12)


def test_kl_divergence_stays_finite_when_prediction_has_zero():
    kl = metrics.kl_divergence(ONE_HOT_3, ONE_HOT_4)[0]
    assert np.isfinite(kl) and kl == pytest.approx(-np.log(1e-9))


# ---------------------------------------------------------------- aggregates
def test_distribution_metrics_are_means_of_per_word_metrics():
    P, Q = _random_simplex(15, 9), _random_simplex(15, 10)
    table = metrics.distribution_metrics(P, Q)
    per_word = metrics.per_word_metrics(P, Q)
    for name in ("mae_pp", "rps", "js", "kl", "abs_delta_expected_tries"):
        assert per_word[name].shape == (15,)
        assert table[name] == pytest.approx(per_word[name].mean())
    ss_res = ((P - Q) ** 2).sum()
    ss_tot = ((P - P.mean(axis=0)) ** 2).sum()
    assert table["r2"] == pytest.approx(1 - ss_res / ss_tot)


def test_perfect_prediction_scores_zero():
    P = _random_simplex(5, 11, True)
    table = metrics.distribution_metrics(P, P)
    for name in ("mae_pp", "rps", "js", "kl", "abs_delta_expected_tries", "max_error_pp"):
        assert table[name] == pytest.approx(0.0, abs=1e-12)
    assert table["cosine"] == pytest.approx(1.0)
