"""Solver simulations: cached results, path = tree, a slow replay of the frequency solver, non-answer words."""
import numpy as np
import pytest

from tests.test_feedback import reference_pattern
from wordle_moe import solvers as sv
from wordle_moe.wordlists import answer_index, load_allowed, load_answers, zipf_frequencies


def test_answer_results_shapes_and_sanity():
    res = sv.answer_results()
    assert set(res) == set(sv.SOLVERS)
    for dist in res.values():
        assert dist.shape == (2315, 7)
        np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    # the entropy solver from salet is known to average about 3.4-3.5 tries and never fail
    mean_entropy = sv.mean_tries(res["entropy"]).mean()
    assert 3.35 < mean_entropy < 3.6
    assert res["entropy"][:, 6].sum() == 0
    assert sv.mean_tries(res["frequency"]).mean() > mean_entropy
    assert sv.cache_path().exists()


def test_path_simulation_reproduces_tree():
    res = sv.answer_results()
    for word in ["eerie", "cigar", "jazzy"]:
        for s in sv.SOLVERS:
            np.testing.assert_array_equal(sv.simulate_word(word, s), res[s][answer_index()[word]])


def _replay_frequency(answer: str, opener: str, answers, zipf) -> int:
    """Slow pure-Python game: opener, then the most frequent consistent candidate."""
    cands = list(range(len(answers)))
    guess = opener
    for turn in range(1, 7):
        if guess == answer:
            return turn
        pattern = reference_pattern(guess, answer)
        cands = [c for c in cands if reference_pattern(guess, answers[c]) == pattern]
        guess = answers[max(cands, key=lambda c: (zipf[c], -c))]
    return 7


def test_frequency_solver_matches_slow_replay():
    answers = load_answers() + ["qajaq"]
    zipf = zipf_frequencies(answers)
    policy = sv._frequency_policy("crane")
    u, target = sv.extended_universe("qajaq")
    words = ["eerie", "mummy", "fluff", "qajaq"]
    targets = [answer_index().get(w, target) for w in words]
    tries = sv.simulate_tries(u, policy, targets)
    assert tries.tolist() == [_replay_frequency(w, "crane", answers, zipf) for w in words]


def test_sum_c_log_c_branches_agree():
    rng = np.random.default_rng(0)
    for m in (3, 47, 48, 200):
        codes = rng.integers(0, 20, size=(30, m)).astype(np.uint8)
        expected = [sum(c * np.log2(c) for c in np.bincount(row) if c) for row in codes]
        np.testing.assert_allclose(sv._sum_c_log_c(codes), expected)


def test_non_answer_and_non_allowed_words():
    assert "qajaq" in load_allowed() and "qajaq" not in answer_index()
    for word in ["qajaq", "zzzzz"]:  # zzzzz is not even a valid guess
        d = sv.solver_distributions([word])
        for s in sv.SOLVERS:
            assert d[s].shape == (1, 7)
            assert d[s].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        sv.simulate_word("abc", "entropy")
    with pytest.raises(ValueError, match="unknown solver"):
        sv.solver_policies("oracle")
