"""Grid search: expansion rules, end-to-end run on tiny data, Dask == local backend, the selection rule."""
import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from wordle_moe import metrics, search
from wordle_moe.config import ConfigError, MoEConfig
from wordle_moe.crossfit import fold_weights

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
    assert set(search.PRODUCT_ROUTERS) == {"topk", "noisy_topk", "expert_choice", "reputation"}


def test_differentiation_measures_on_hand_made_intermediates():
    n = 4
    expert_outputs = np.zeros((n, 2, 7))
    expert_outputs[:, 0] = [0.0, 0.0, 0.1, 0.5, 0.3, 0.1, 0.0]  # ranks of buckets differ between experts
    expert_outputs[:, 1] = [0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.1]
    # on the words routed elsewhere the experts output something absurd: it must not enter any measure
    expert_outputs[3, 0] = [1.0, 0, 0, 0, 0, 0, 0]
    expert_outputs[:3, 1] = [1.0, 0, 0, 0, 0, 0, 0]
    gate_scores = np.array([[0.5, 0.5]] * n)
    inter = {"gate_scores": gate_scores, "gates": np.array([[1, 0], [1, 0], [1, 0], [0, 1]], float),
             "top_k_indices": np.array([[0], [0], [0], [1]]), "expert_outputs": expert_outputs}
    d = search.differentiation(inter)
    r0 = search.bucket_ranks(expert_outputs[0, 0])[0]
    r1 = search.bucket_ranks(expert_outputs[3, 1])[0]
    assert r0[3] == 1 and r1[5] == 1  # rank 1 = most probable bucket
    assert d["rank_distance"] == pytest.approx(np.linalg.norm(r0 - r1))
    assert d["routed_js"] == pytest.approx(metrics.js_divergence(expert_outputs[:1, 0], expert_outputs[3:, 1])[0])
    assert d["routing_entropy"] == pytest.approx(1.0)           # 50/50 softmax: one bit
    np.testing.assert_allclose(d["usage"], [0.75, 0.25])
    assert d["usage_entropy"] == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)))
    assert d["load_cv"] == pytest.approx(np.std([0.75, 0.25]) / 0.5)
    assert d["override_rate"] == pytest.approx(0.25)   # ties at 50/50: the gate's own top-1 is expert 0, not 1
    # an expert that handles no word takes part in no pair
    idle = dict(inter, gates=np.array([[1, 0]] * n, float), top_k_indices=np.zeros((n, 1), int))
    assert search.differentiation(idle)["routed_js"] == 0.0 and search.differentiation(idle)["override_rate"] == 0


def test_override_rate_counts_rows_whose_selection_differs_from_the_gate_top_k():
    scores = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4]])
    own_top2 = np.array([[1, 1, 0], [0, 1, 1], [1, 1, 0], [1, 0, 1]])
    assert search.override_rate(scores, own_top2, 2) == 0.0
    chosen = own_top2.copy()
    chosen[1] = [1, 0, 1]                       # one row overridden
    chosen[3] = [1, 1, 1]                       # expert-choice style: three experts took the row
    assert search.override_rate(scores, chosen, 2) == pytest.approx(0.5)


def _table(**extra):
    table = pd.DataFrame({
        "num_experts": [2, 3, 4, 2], "top_k": [1, 1, 2, 2],
        "rps_mean": [0.0030, 0.0031, 0.0034, 0.0032],
        "rps_se": [0.0002, 0.0001, 0.0001, 0.0001],
        "stability_ari": [0.20, 0.60, 0.90, 0.40],   # the most stable (0.90) is outside 1 SE
        "routed_js": [0.1, 0.2, 0.5, 0.3],
        "min_group_share": [0.4, 0.3, 0.2, 0.25],
    })
    return table.assign(**extra)


def test_selection_rule_prefers_stable_balanced_groupings_within_one_se():
    table = _table()
    # best = 0.0030 + 0.0002 -> rows 0, 1, 3 qualify; row 1 has the most stable grouping
    assert search.select_configuration(table) == {"num_experts": 3, "top_k": 1}
    marked = search.mark_selection(table)
    assert marked["selected"].tolist() == [False, True, False, False]
    assert marked["within_1se"].tolist() == [True, True, False, True]
    # a group below 10% of the words excludes the configuration, however stable
    skewed = _table(min_group_share=[0.4, 0.05, 0.2, 0.25])
    assert search.select_configuration(skewed) == {"num_experts": 2, "top_k": 2}
    assert search.mark_selection(skewed)["balanced"].tolist() == [True, False, True, True]
    # stability equal at two decimals: the larger routed JS wins
    tied = _table(stability_ari=[0.20, 0.601, 0.9, 0.598])
    assert search.select_configuration(tied) == {"num_experts": 2, "top_k": 2}
    # nothing balanced within 1 SE: the balance condition is dropped, not the accuracy condition
    none = _table(min_group_share=[0.01, 0.02, 0.5, 0.03])
    assert search.select_configuration(none) == {"num_experts": 3, "top_k": 1}


def test_fold_weights_keep_test_rows_out_and_split_training_rows_like_fit_moe():
    from sklearn.model_selection import KFold

    folds = list(KFold(n_splits=3, shuffle=True, random_state=0).split(np.zeros(20)))
    train_w, val_w = fold_weights(20, folds, 0.25, seed=1)
    for r, (tr, te) in enumerate(folds):
        assert (train_w[r, te] == 0).all() and (val_w[r, te] == 0).all()
        np.testing.assert_array_equal(train_w[r] + val_w[r] > 0, np.isin(np.arange(20), tr))
        t, v = search.validation_split(len(tr), 0.25, 1)
        np.testing.assert_array_equal(np.flatnonzero(val_w[r]), tr[v])
    assert ((train_w * val_w) == 0).all()


def test_batched_fold_models_match_one_at_a_time_fits():
    """Replica r of the batched fold model equals an R=1 fit of fold r's rows (same replica id)."""
    from sklearn.model_selection import KFold

    from wordle_moe.training import fit_replicas, predict_replicas

    X, P = _data(30)
    cfg = FAST.replace(max_epochs=10, patience=10, dropout=0.0)
    folds = list(KFold(n_splits=3, shuffle=True, random_state=0).split(X))
    model, train_w = search.fit_folds(X, P, cfg, folds)
    batched = predict_replicas(model, X)
    _, val_w = fold_weights(30, folds, cfg.val_fraction, cfg.seed)
    for r in range(3):
        one, _ = fit_replicas(X, P, X, P, cfg, train_weight=train_w[r:r + 1], val_weight=val_w[r:r + 1],
                              replica_ids=[r])
        np.testing.assert_allclose(predict_replicas(one, X)[0], batched[r], atol=1e-5)


def test_grid_of_two_configurations_end_to_end(tmp_path):
    X, P = _data()
    results = search.grid_search(X, P, {"num_experts": [2], "top_k": [1, 2]}, base_config=FAST, cv=2,
                                 n_jobs=1, output_dir=tmp_path, progress=False)
    assert len(results) == 2 and results["selected"].sum() == 1
    for col in search.SCORE_COLUMNS:
        assert col in results, col
    assert results["stability_ari"].between(-1, 1).all() and results["stability_ari_baseline"].abs().max() < 0.2
    assert results["min_group_share"].between(0, 0.5).all()  # 2 experts: the smaller group holds <= half
    assert (results["override_rate"] == 0).all()  # top-k router at inference: never overrides its gate
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
    # a real worker process with two threads, as a user would start one: both configurations are pickled to it and
    # computed there side by side (one process, not two: each worker's start-up imports torch, ~5 s; joblib runs
    # everything in this process when the cluster has a single thread, hence two)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            remote = search.grid_search(X, P, grid, base_config=FAST, cv=2, n_jobs=2, progress=False)
    assert len(stream.data) >= len(remote)  # the configurations were computed on the cluster, not locally
    numeric = local.select_dtypes("number").columns.drop("seconds")
    pd.testing.assert_frame_equal(local[numeric], remote[numeric])
    assert local["expert_usage"].tolist() == remote["expert_usage"].tolist()


def test_compare_routers_reuses_results():
    rows = []
    for i, router in enumerate(["topk", "noisy_topk", "expert_choice", "reputation"]):
        for k, rps in [(1, 0.003 + i * 1e-4), (2, 0.0029 + i * 1e-4)]:
            rows.append({"router": router, "num_experts": 3, "top_k": k, "hidden_size": 8, "rps_mean": rps,
                         "rps_se": 1e-4, "mae_pp_mean": 2.0, "load_cv": 0.1 * k, "usage_entropy": 0.9,
                         "routing_entropy": 0.8, "routed_js": 0.2, "rank_distance": 1.0, "expert_usage": "0.5;0.5",
                         "stability_ari": 0.1 * i, "stability_ari_baseline": 0.0, "override_rate": 0.0,
                         "override_rate_training": 0.2, "min_group_share": 0.3})
    table = search.compare_routers(None, None, results=pd.DataFrame(rows))
    assert list(table.columns) == search.ROUTER_COMPARISON_COLUMNS and len(table) == 8
    assert table["router"].tolist() == [r for r in ["topk", "noisy_topk", "expert_choice", "reputation"]
                                        for _ in (1, 2)]
    assert table["top_k"].tolist() == [1, 2] * 4 and (table["num_experts"] == 3).all()
    assert table.loc[1, "rps"] == pytest.approx(0.0029) and table.loc[6, "stability_ari"] == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="TOP_K"):
        search.compare_routers(None, None, results=pd.DataFrame(rows), top_ks=(1, 4))
    with pytest.raises(ConfigError, match="num_experts="):
        search.compare_routers(None, None, grid={"num_experts": [2, 3]})


def test_compare_routers_scores_every_router_at_top1_and_top2():
    X, P = _data(36)
    table = search.compare_routers(X, P, num_experts=3, base_config=FAST.replace(max_epochs=8), cv=2, n_jobs=1,
                                   progress=False)
    assert len(table) == 8 and set(table["top_k"]) == {1, 2}
    for col in ("load_cv", "usage_entropy", "routed_js", "stability_ari", "override_rate"):
        assert table[col].notna().all(), col
    assert table["override_rate"].between(0, 1).all() and table["stability_ari"].between(-1, 1).all()
    plain = table[table["router"].isin(["topk", "noisy_topk", "expert_choice"])]
    assert (plain["override_rate"] == 0).all()   # their inference rule is the gate's own top-k
    ec = table[(table["router"] == "expert_choice")]
    assert (ec["override_rate_training"] > 0).all()  # capacity routing in training does override the gate
