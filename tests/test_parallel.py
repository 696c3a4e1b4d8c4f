"""parallel_map keeps order, sets threads per task and gives byte-identical results for any number of workers."""
import time

import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_info

from tests.synthetic import softmax_linear_data
from wordle_moe import bootstrap, crossfit, evaluation, parallel
from wordle_moe.baselines import make_peers
from wordle_moe.config import MoEConfig
from wordle_moe.estimator import MoEDistributionRegressor

TINY = MoEConfig(hidden_size=8, num_experts=2, max_epochs=25, patience=5, dropout=0.2)


def _slow_square(x: int) -> int:
    time.sleep(0.05 * (4 - x % 4))  # early items finish last: results must still come back in item order
    return x * x


def _threads(_: object) -> tuple[int, int, int]:
    blas = [info["num_threads"] for info in threadpool_info()]
    return torch.get_num_threads(), max(blas) if blas else 1, parallel.n_jobs_in_force()


def test_results_come_back_in_item_order_with_two_workers():
    assert parallel.parallel_map(_slow_square, range(8), n_jobs=2) == [x * x for x in range(8)]
    assert parallel.parallel_map(_slow_square, [], n_jobs=2) == []


def _pid(_: object) -> int:
    import os

    time.sleep(0.1)   # long enough for both workers to take a task
    return os.getpid()


def test_maps_of_any_size_and_the_search_reuse_one_pool_of_workers():
    """A map of 2 tasks, the search's own joblib call (under shared_pool_config) and a map of 4 run in the SAME
    two worker processes: no pool is started twice in a run."""
    import joblib

    first = set(parallel.parallel_map(_pid, range(4), n_jobs=2))
    assert len(first) == 2
    with parallel.shared_pool_config():
        search = set(joblib.Parallel(n_jobs=2)(joblib.delayed(_pid)(i) for i in range(4)))
    assert search == first
    assert set(parallel.parallel_map(_pid, range(2), n_jobs=2)) <= first


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_every_task_runs_with_one_torch_and_blas_thread_and_no_nested_pool(n_jobs):
    torch.set_num_threads(2)
    try:
        seen = parallel.parallel_map(_threads, range(4), n_jobs=n_jobs)
        assert torch.get_num_threads() == 2, "the caller's thread setting is restored"
    finally:
        torch.set_num_threads(1)
    assert seen == [(parallel.THREADS_PER_TASK, parallel.THREADS_PER_TASK, 1)] * 4


def test_worker_count_from_argument_setting_and_environment(monkeypatch):
    monkeypatch.delenv(parallel.N_JOBS_ENV, raising=False)
    assert parallel.n_jobs_in_force() == parallel.available_cores()
    monkeypatch.setenv(parallel.N_JOBS_ENV, "3")
    assert parallel.n_jobs_in_force() == 3
    monkeypatch.setenv(parallel.N_JOBS_ENV, "all")
    assert parallel.n_jobs_in_force() == parallel.available_cores()
    try:
        assert parallel.set_n_jobs(5) == 5 and parallel.n_jobs_in_force() == 5
        assert parallel.n_jobs_in_force(2) == 2 and parallel.n_jobs_in_force(-1) == parallel.available_cores()
    finally:
        parallel.set_n_jobs(None)
    for bad in (0, -2, 1.5, "two", True):
        with pytest.raises(ValueError, match="n_jobs|N_JOBS"):
            parallel.n_jobs_in_force(bad)
    monkeypatch.setenv(parallel.N_JOBS_ENV, "many")
    with pytest.raises(ValueError, match=r"\$N_JOBS"):
        parallel.n_jobs_in_force()


def _fails(x: int) -> int:
    raise RuntimeError(f"task {x} failed")


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_background_jobs_give_the_direct_result_or_its_error(n_jobs, monkeypatch):
    import threading

    monkeypatch.setenv(parallel.N_JOBS_ENV, str(n_jobs))
    jobs = [parallel.in_background(parallel.parallel_map, _slow_square, range(6)),
            parallel.in_background(sorted, [3, 1, 2]), parallel.in_background(_fails, 7),
            parallel.in_background(lambda: threading.current_thread() is threading.main_thread())]
    assert jobs[0].result() == [x * x for x in range(6)] and jobs[1].result() == [1, 2, 3]
    with pytest.raises(RuntimeError, match="task 7 failed"):
        jobs[2].result()
    assert jobs[3].result() == (n_jobs == 1), "one worker: at once in this thread; more: in a background thread"


def test_warm_up_starts_the_pool_the_next_map_uses():
    job = parallel.warm_up(2)
    assert set(job.result()) <= set(parallel.parallel_map(_pid, range(4), n_jobs=2))   # (a warm worker may take both)
    assert parallel.warm_up(1) is None and parallel.warm_up("three") is None   # in-process, invalid: nothing


def test_a_task_running_in_one_thread_leaves_other_threads_maps_parallel():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as other:
        inside = other.submit(parallel._run_task, lambda _: parallel.n_jobs_in_force(3), None, 1).result()
    assert inside == 1 and parallel.n_jobs_in_force(3) == 3


def test_chunks_cover_the_range_in_order():
    assert [list(c) for c in parallel.chunks(7, 3)] == [[0, 1], [2, 3], [4, 5, 6]]  # no chunk of one
    assert [len(c) for c in parallel.chunks(200, 25)] == [25] * 8
    assert sorted(len(c) for c in parallel.chunks(201, 25)) == [22] * 6 + [23] * 3
    assert parallel.chunks(0, 3) == [] and [list(c) for c in parallel.chunks(2, 5)] == [[0, 1]]
    with pytest.raises(ValueError):
        parallel.chunks(3, 0)


def test_bootstrap_is_byte_identical_for_any_worker_count_and_chunks_join_in_order(monkeypatch):
    X, P = softmax_linear_data(40, 5, 0, scale=0.4)
    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK", 3)  # 7 replicas: chunks 0-1, 2-3, 4-6
    seq, info1 = bootstrap.bootstrap_predict(X, P, X, config=TINY, B=7, seed=3, n_jobs=1)
    par, info2 = bootstrap.bootstrap_predict(X, P, X, config=TINY, B=7, seed=3, n_jobs=2)
    np.testing.assert_array_equal(par, seq)
    np.testing.assert_array_equal(info2["best_epochs"], info1["best_epochs"])
    joined = info2["models"][0]
    assert len(info2["models"]) == 1 and joined.replicas == 7 and joined.replica_ids == list(range(7))
    assert info2["history"]["first_replica"].unique().tolist() == [0, 2, 4]
    for k, v in info1["models"][0].state_dict().items():  # the joined model holds the same tensors
        assert torch.equal(joined.state_dict()[k], v), k
    for k, v in info1["models"][0].start_gate_.items():  # and each replica's starting gate (learned-or-imposed)
        assert torch.equal(joined.start_gate_[k], v), k
    # the same replicas as one batch of 7: batch mates change only float32 rounding (padded row sums), which
    # accumulates over a converged run's few hundred steps: differences stay below 2e-4, the stopping steps equal
    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK", 100)
    one_batch, info3 = bootstrap.bootstrap_predict(X, P, X, config=TINY, B=7, seed=3, n_jobs=1)
    np.testing.assert_allclose(par, one_batch, atol=2e-4)
    np.testing.assert_array_equal(info3["best_epochs"], info1["best_epochs"])
    assert np.abs(par[0] - par[1]).max() > 1e-3, "replicas differ"


def _peers() -> dict:
    peers = {k: v for k, v in make_peers().items() if k in ("mean_distribution", "softmax_regression")}
    peers["moe"] = MoEDistributionRegressor.from_config(TINY, n_bootstrap=3)
    return peers


def test_evaluation_table_is_byte_identical_with_one_and_two_workers():
    X, P = softmax_linear_data(60, 5, 1, scale=0.4)
    splits = evaluation.protocol_splits("A", len(X), n_splits=3, n_repeats=1)
    stand_in = {"moe": MoEDistributionRegressor.from_config(TINY, n_bootstrap=2)}
    kwargs = dict(protocol="A", splits=splits, calibration_estimators=stand_in, inner_cv=2, progress=False,
                  return_predictions=True)
    table1, pred1 = evaluation.evaluate_models(_peers(), X, P, n_jobs=1, **kwargs)
    table2, pred2 = evaluation.evaluate_models(_peers(), X, P, n_jobs=2, **kwargs)
    timing = ["fit_seconds", "seconds"]
    assert list(table1["model"]) == ["mean_distribution", "softmax_regression", "moe"] * 3  # task order kept
    pd.testing.assert_frame_equal(table1.drop(columns=timing), table2.drop(columns=timing), check_exact=True)
    pd.testing.assert_frame_equal(pred1, pred2, check_exact=True)
    assert table1["coverage_calibrated"].notna().sum() == 3  # the MoE's calibrated interval ran in every fold


def test_out_of_fold_residuals_are_byte_identical_with_one_and_two_workers():
    X, P = softmax_linear_data(50, 5, 2, scale=0.4)
    est = MoEDistributionRegressor.from_config(TINY)
    r1 = crossfit.oof_residuals(est, X, P, cv=3, n_jobs=1)
    r2 = crossfit.oof_residuals(est, X, P, cv=3, n_jobs=2)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(r1.sum(axis=1), 0.0, atol=1e-9)  # P and P_hat both sum to 1 per row
