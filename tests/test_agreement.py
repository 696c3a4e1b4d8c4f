"""Grouping stability: vectorised ARI against scikit-learn, label alignment, co-assignment and consensus."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from wordle_moe import agreement
from wordle_moe.config import MoEConfig


def _labels(R: int = 7, n: int = 40, K: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, K, size=(R, n))


def test_pairwise_ari_equals_sklearn_pair_by_pair():
    lab = _labels()
    lab[1] = lab[0]                              # identical partitions
    lab[2] = (lab[0] + 1) % 3                    # the same partition, other label numbers
    lab[3] = 0                                   # one group only
    lab[4, :] = 1                                # another single group: full agreement with row 3
    ari = agreement.pairwise_ari(lab)
    expected = np.array([[adjusted_rand_score(a, b) for b in lab] for a in lab])
    np.testing.assert_allclose(ari, expected, atol=1e-12)
    assert ari[0, 1] == 1 and ari[0, 2] == pytest.approx(1) and ari[3, 4] == 1
    assert ari[0, 3] == pytest.approx(0)
    pairs = ari[np.triu_indices(len(lab), 1)]
    assert agreement.mean_pairwise_ari(lab) == pytest.approx(pairs.mean())
    assert np.all((ari >= -1) & (ari <= 1))


def test_pairwise_ari_with_different_group_counts_and_anticorrelated_pairs():
    lab = np.array([[0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 2, 3], [0, 0, 0, 0]])
    ari = agreement.pairwise_ari(lab)
    assert ari[0, 1] == pytest.approx(-0.5)     # scikit-learn's documented example
    np.testing.assert_allclose(ari, [[adjusted_rand_score(a, b) for b in lab] for a in lab], atol=1e-12)
    with pytest.raises(ValueError, match="non-negative integers"):
        agreement.pairwise_ari(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"\(R partitions, n words\)"):
        agreement.pairwise_ari(np.array([0, 1, 1]))


def test_random_baseline_is_near_zero_and_keeps_group_sizes():
    lab = np.repeat(_labels(1, 359, 3, seed=4), 30, axis=0)   # 30 identical partitions: ARI 1
    assert agreement.mean_pairwise_ari(lab) == pytest.approx(1.0)
    base = agreement.random_baseline_ari(lab, seed=0)
    assert abs(base) < 0.02
    assert base == agreement.random_baseline_ari(lab, seed=0)   # seeded


def test_co_assignment_by_hand():
    lab = np.array([[0, 0, 1], [1, 0, 0]])
    co = agreement.co_assignment(lab)
    expected = np.array([[1, 0.5, 0], [0.5, 1, 0.5], [0, 0.5, 1]])
    np.testing.assert_allclose(co, expected)
    loop = np.array([[np.mean(lab[:, i] == lab[:, j]) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(co, loop)


def test_best_permutations_match_hungarian_both_paths():
    rng = np.random.default_rng(1)
    for E in (3, 4, 8):  # 8 takes the Hungarian path, the others the exhaustive one
        cost = rng.random((12, E, E))
        perm = agreement._best_permutations(cost)
        for r in range(12):
            rows, cols = linear_sum_assignment(cost[r])
            assert cost[r, np.arange(E), perm[r]].sum() == pytest.approx(cost[r, rows, cols].sum())
        assert all(sorted(p) == list(range(E)) for p in perm)


def _routing_with_known_groups(R: int = 20, n: int = 120, E: int = 3, flip: float = 0.1, seed: int = 0):
    """Replicas that share one true grouping, each with its own expert numbering and a share of flipped words."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % E
    profiles = np.array([[0.02, 0.1, 0.3, 0.3, 0.18, 0.07, 0.03], [0.0, 0.03, 0.15, 0.32, 0.3, 0.15, 0.05],
                         [0.0, 0.01, 0.05, 0.2, 0.34, 0.28, 0.12]])[:E]
    gates = np.zeros((R, n, E))
    outputs = np.empty((R, n, E, 7))
    perms = np.array([rng.permutation(E) for _ in range(R)])     # replica expert i plays true group perms[r, i]
    for r in range(R):
        group = truth.copy()
        flipped = rng.random(n) < flip
        group[flipped] = rng.integers(0, E, flipped.sum())
        expert_of_group = np.argsort(perms[r])                      # inverse permutation
        gates[r, np.arange(n), expert_of_group[group]] = 1.0
        outputs[r] = profiles[perms[r]][None] + rng.normal(0, 0.003, size=(n, E, 7))
    return {"gates": gates, "expert_outputs": outputs}, truth, perms, profiles


def test_grouping_stability_recovers_the_true_grouping():
    routing, truth, perms, profiles = _routing_with_known_groups()
    res = agreement.grouping_stability(routing, reference=profiles, seed=0)
    np.testing.assert_array_equal(res.permutations, perms)           # expert i -> its true group
    assert (res.consensus_expert == truth).mean() > 0.97
    np.testing.assert_allclose(res.shares.sum(axis=1), 1)
    np.testing.assert_array_equal(res.consensus_expert, res.shares.argmax(axis=1))
    np.testing.assert_allclose(res.confidence, res.shares.max(axis=1))
    assert res.mean_ari > 0.6 and abs(res.baseline_ari) < 0.05
    summary = res.summary()
    assert summary["n_replicas"] == 20 and summary["mean_pairwise_ari"] == res.mean_ari
    assert sum(summary["consensus_group_sizes"]) == 120
    # labels never depend on the numbering: ARI of the raw and aligned labels agree
    np.testing.assert_allclose(agreement.pairwise_ari(res.aligned_labels), res.pairwise_ari, atol=1e-12)
    # without a reference, label j means replica 0's expert j: still the same consensus partition
    free = agreement.grouping_stability(routing)
    assert agreement.pairwise_ari(np.stack([free.consensus_expert, res.consensus_expert]))[0, 1] == pytest.approx(1)


def test_unstable_grouping_scores_near_baseline():
    rng = np.random.default_rng(3)
    gates = np.zeros((15, 200, 3))
    gates[np.arange(15)[:, None], np.arange(200)[None], rng.integers(0, 3, (15, 200))] = 1
    res = agreement.grouping_stability({"gates": gates, "expert_outputs": rng.dirichlet(np.ones(7), (15, 200, 3))})
    assert abs(res.mean_ari) < 0.02 and abs(res.baseline_ari) < 0.02
    assert res.confidence.mean() < 0.6


def test_routed_mean_outputs_ignore_words_routed_elsewhere():
    out = np.zeros((1, 3, 2, 7))
    out[0, :, 0, 0] = 1.0               # expert 0 always predicts bucket 1 ...
    out[0, 2, 0] = [0, 0, 0, 1, 0, 0, 0]  # ... except on word 2, the only one it handles
    out[0, :, 1, 6] = 1.0
    gates = np.array([[[0, 1], [0, 1], [1, 0]]], float)
    m = agreement.routed_mean_outputs(out, gates)
    np.testing.assert_allclose(m[0, 0], [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(m[0, 1], [0, 0, 0, 0, 0, 0, 1])
    unused = agreement.routed_mean_outputs(out, np.array([[[0, 1]] * 3], float))
    assert np.isnan(unused[0, 0]).all()
    weighted = agreement.routed_mean_outputs(out, np.array([[[0.5, 0.5], [0, 1], [1.0, 0]]]))
    np.testing.assert_allclose(weighted[0, 0], (0.5 * out[0, 0, 0] + out[0, 2, 0]) / 1.5)


def test_replica_routing_matches_single_replica_intermediates():
    import torch

    from wordle_moe.model import MoEModel
    from wordle_moe.training import intermediates

    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(9, 5))
    model = MoEModel(5, MoEConfig(num_experts=3, top_k=2, hidden_size=4), replicas=4)
    routing = agreement.replica_routing(model, X)
    assert routing["gates"].shape == (4, 9, 3) and routing["expert_outputs"].shape == (4, 9, 3, 7)
    for r in (0, 3):
        one = intermediates(model, X, replica=r)
        for k in agreement.ROUTING_KEYS:
            np.testing.assert_allclose(routing[k][r], one[k])
    np.testing.assert_array_equal(agreement.primary_experts(routing["gates"]), routing["gates"].argmax(-1))
    both = agreement.replica_routing([model, model], X)    # a list of models (sequential bootstrap) stacks along R
    assert both["gates"].shape == (8, 9, 3)
    np.testing.assert_array_equal(both["gates"][4:], routing["gates"])


def test_relabel_and_shares():
    labels = np.array([[0, 1, 2, 2], [2, 1, 0, 0]])
    perm = np.array([[0, 1, 2], [2, 1, 0]])
    aligned = agreement.relabel(labels, perm)
    np.testing.assert_array_equal(aligned, [[0, 1, 2, 2], [0, 1, 2, 2]])
    shares = agreement.assignment_shares(np.array([[0, 1], [0, 0], [2, 1]]), 3)
    np.testing.assert_allclose(shares, [[2 / 3, 0, 1 / 3], [1 / 3, 2 / 3, 0]])
    cons, conf = agreement.consensus(shares)
    assert cons.tolist() == [0, 1] and conf.tolist() == pytest.approx([2 / 3, 2 / 3])


def test_paired_ari_equals_sklearn_replica_by_replica():
    a, b = _labels(R=6, seed=1), _labels(R=6, K=2, seed=2)
    b[0] = a[0]                                   # identical
    b[1] = (a[1] + 2) % 3                         # the same partition, renumbered
    b[2] = 0                                      # one group against three
    got = agreement.paired_ari(a, b)
    expected = [adjusted_rand_score(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got.shape == (6,) and got[0] == 1 and got[1] == pytest.approx(1)
    with pytest.raises(ValueError, match="same shape"):
        agreement.paired_ari(a, b[:, :5])


def test_ari_with_start_is_one_for_a_frozen_gate_and_matches_sklearn_for_a_learning_gate():
    """GATE_LR_SCALE=0 keeps every replica's grouping at its start (ARI 1); with a learning gate the value
    equals scikit-learn's ARI of the final grouping with the grouping under the recorded starting gate."""
    from tests.synthetic import softmax_linear_data
    from wordle_moe.bootstrap import fit_bootstrap

    X, P = softmax_linear_data(80, 5, seed=4, scale=0.8)
    frozen, _ = fit_bootstrap(X, P, config=MoEConfig(gate_lr_scale=0.0, max_epochs=150, penalty_cv=0), B=3, seed=1)
    np.testing.assert_array_equal(agreement.ari_with_start(frozen, X), 1.0)
    cfg = MoEConfig(gate_lr_scale=1.0, gate_init="random", delta_l2=1e-3, max_epochs=300, penalty_cv=0, lr=0.05)
    models, _ = fit_bootstrap(X, P, config=cfg, B=3, seed=1)
    final = agreement.primary_experts(agreement.replica_routing(models, X)["gates"])
    start = agreement.start_labels(models[0], X)
    got = agreement.ari_with_start(models, X)
    np.testing.assert_allclose(got, [adjusted_rand_score(f, s) for f, s in zip(final, start)], atol=1e-12)
    assert got.min() < 1.0, "a learning gate moved at least one replica's grouping"
    # the model's own gate is back in place after start_labels borrowed it
    np.testing.assert_array_equal(agreement.primary_experts(agreement.replica_routing(models, X)["gates"]), final)
