"""Grid search: expansion rules, end-to-end run on tiny data, Dask == local backend, the selection rule."""
import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from wordle_moe import search
from wordle_moe.config import ConfigError, MoEConfig

FAST = MoEConfig(max_epochs=15, patience=15, hidden_size=8)


def _data(n: int = 45, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    P = softmax(X @ rng.normal(scale=0.5, size=(4, 7)) + np.log([0.01, 0.05, 0.2, 0.33, 0.25, 0.12, 0.04]), axis=1)
    return X, P


def test_expand_grid_skips_top_k_above_num_experts_and_checks_knobs():
    combos = search.expand_grid({"NUM_EXPERTS": [1, 2, 3], "TOP_K": [1, 2]})
    pairs = {(c["num_experts"], c["top_k"]) for c in combos}
    assert pairs == {(1, 1), (2, 1), (2, 2), (3, 1), (3, 2)}
    with pytest.raises(ConfigError, match="NOT_A_KNOB"):
        search.expand_grid({"not_a_knob": [1]})
    with pytest.raises(ConfigError, match="ROUTER"):
        search.expand_grid({"router": ["bogus"]})
    full = search.full_grid()
    assert full["num_experts"] == [2, 3, 4] and full["aux_loss_weight"] == [5e-4, 1e-3, 2e-3]
    assert set(full["router"]) == {"topk", "noisy_topk", "expert_choice", "reputation"}


def test_differentiation_measures_on_hand_made_intermediates():
    n = 4
    expert_outputs = np.zeros((n, 2, 7))
    expert_outputs[:, 0] = [0.0, 0.0, 0.1, 0.5, 0.3, 0.1, 0.0]  # ranks of buckets differ between experts
    expert_outputs[:, 1] = [0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.1]
    gate_scores = np.array([[0.5, 0.5]] * n)
    inter = {"gate_scores": gate_scores, "gates": np.array([[1, 0], [1, 0], [1, 0], [0, 1]], float),
             "top_k_indices": np.array([[0], [0], [0], [1]]), "expert_outputs": expert_outputs}
    d = search.differentiation(inter)
    r0 = search.bucket_ranks(expert_outputs[0, 0])[0]
    r1 = search.bucket_ranks(expert_outputs[0, 1])[0]
    assert r0[3] == 1 and r1[5] == 1  # rank 1 = most probable bucket
    assert d["rank_distance"] == pytest.approx(np.linalg.norm(r0 - r1))
    assert d["routing_entropy"] == pytest.approx(1.0)           # 50/50 softmax: one bit
    np.testing.assert_allclose(d["usage"], [0.75, 0.25])
    assert d["usage_entropy"] == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)))
    assert d["load_cv"] == pytest.approx(np.std([0.75, 0.25]) / 0.5)


def test_selection_rule_on_hand_made_table():
    table = pd.DataFrame({
        "num_experts": [2, 3, 4, 2], "top_k": [1, 1, 2, 2],
        "rps_mean": [0.0030, 0.0031, 0.0034, 0.0032],
        "rps_se": [0.0002, 0.0001, 0.0001, 0.0001],
        "rank_distance": [1.0, 3.0, 9.0, 5.0],   # the most differentiated (9.0) is outside 1 SE
        "expert_js": [0.1, 0.2, 0.5, 0.3],
    })
    # best = 0.0030 + 0.0002 -> rows 0, 1, 3 qualify; row 3 has the largest rank distance
    assert search.select_configuration(table) == {"num_experts": 2, "top_k": 2}
    marked = search.mark_selection(table)
    assert marked["selected"].tolist() == [False, False, False, True]
    assert marked["within_1se"].tolist() == [True, True, False, True]
    # ties in rank distance fall back to the larger expert JS
    tied = table.assign(rank_distance=[1.0, 5.0, 9.0, 5.0], expert_js=[0.1, 0.4, 0.5, 0.3])
    assert search.select_configuration(tied) == {"num_experts": 3, "top_k": 1}


def test_grid_of_two_configurations_end_to_end(tmp_path):
    X, P = _data()
    results = search.grid_search(X, P, {"num_experts": [2], "top_k": [1, 2]}, base_config=FAST, cv=2,
                                 n_jobs=1, output_dir=tmp_path, progress=False)
    assert len(results) == 2 and results["selected"].sum() == 1
    for col in ["rps_mean", "rps_se", "mae_pp_mean", "rank_distance", "expert_js", "routing_entropy",
                "usage_entropy", "load_cv", "expert_usage"]:
        assert col in results
    assert (results["rps_mean"] > 0).all() and (results["routing_entropy"] >= 0).all()
    usage = results["expert_usage"].str.split(";").apply(lambda u: sum(map(float, u)))
    np.testing.assert_allclose(usage, 1.0, atol=2e-3)
    saved = pd.read_csv(tmp_path / "grid_search_results.csv")
    assert len(saved) == 2
    assert (tmp_path / "grid_search_best_config.json").exists()


def test_dask_cluster_gives_the_same_table_as_local_backend():
    distributed = pytest.importorskip("distributed")
    X, P = _data(36)
    grid = {"num_experts": [2], "top_k": [1, 2]}
    local = search.grid_search(X, P, grid, base_config=FAST, cv=2, n_jobs=1, progress=False)
    # real worker processes (each with one thread), as a user would start them
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        with joblib.parallel_config(backend="dask"):
            remote = search.grid_search(X, P, grid, base_config=FAST, cv=2, n_jobs=2, progress=False)
    numeric = local.select_dtypes("number").columns.drop("seconds")
    pd.testing.assert_frame_equal(local[numeric], remote[numeric])
    assert local["expert_usage"].tolist() == remote["expert_usage"].tolist()


def test_compare_routers_reuses_results():
    rows = []
    for i, router in enumerate(["topk", "noisy_topk", "expert_choice", "reputation"]):
        for k, rps in [(1, 0.003 + i * 1e-4), (2, 0.0029 + i * 1e-4)]:
            rows.append({"router": router, "num_experts": 2, "top_k": k, "hidden_size": 8, "rps_mean": rps,
                         "rps_se": 1e-4, "mae_pp_mean": 2.0, "load_cv": 0.1 * k, "usage_entropy": 0.9,
                         "routing_entropy": 0.8, "expert_js": 0.2, "rank_distance": 1.0, "expert_usage": "0.5;0.5"})
    table = search.compare_routers(None, None, results=pd.DataFrame(rows))
    assert table["router"].tolist() == ["topk", "noisy_topk", "expert_choice", "reputation"]
    assert (table["top_k"] == 2).all()  # the lower-RPS setting of each router
    assert table.loc[0, "rps"] == pytest.approx(0.0029)
