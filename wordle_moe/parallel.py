"""Independent work on every core: an order-keeping parallel map over joblib's loky worker processes.

Folds, peer models, bootstrap replica chunks and residual folds are independent tasks. ``parallel_map`` runs
them in ``n_jobs`` worker processes (``N_JOBS``: the environment variable, the notebook switch or
``set_n_jobs``; default every core this process may use) and returns their results in task order.

Results never depend on the number of workers: every task runs with the same thread settings — one torch
thread and one BLAS/OpenMP thread (``THREADS_PER_TASK``), in a worker or in this process alike — so the
sequential run (``n_jobs=1``) and a parallel one give byte-identical numbers, and two workers on two cores do
not oversubscribe them. The models are tiny and full-batch: more threads per fit save nothing measurable.
Inside a worker, a nested ``parallel_map`` runs sequentially (no pools of pools).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

N_JOBS_ENV = "N_JOBS"
THREADS_PER_TASK = 1
_n_jobs: int | None = None      # set_n_jobs; None: the environment variable or every core
_task = threading.local()       # .running is True inside a task (in a worker, or in this process's thread that runs it)
_background: Any = None         # the background threads of in_background (started on first use)
BACKGROUND_JOBS = 2             # in_background jobs running at a time


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def _parse(value: Any, source: str) -> int:
    """A worker count from ``value``: a positive integer, or -1 / "all" / "auto" for every core."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("all", "auto", "-1"):
            return available_cores()
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{source} must be a positive integer or 'all', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
        raise ValueError(f"{source} must be a positive integer or -1 (every core), got {value!r}")
    return available_cores() if value == -1 else value


def set_n_jobs(n_jobs: int | str | None) -> int:
    """Set the default worker count of this process (None: back to $N_JOBS or every core); returns it."""
    global _n_jobs
    _n_jobs = None if n_jobs is None else _parse(n_jobs, "N_JOBS")
    return n_jobs_in_force()


def n_jobs_in_force(n_jobs: int | str | None = None) -> int:
    """The worker count a map would use: ``n_jobs``, else set_n_jobs, else $N_JOBS, else every core
    (1 inside a worker)."""
    if getattr(_task, "running", False):
        return 1
    if n_jobs is not None:
        return _parse(n_jobs, "n_jobs")
    if _n_jobs is not None:
        return _n_jobs
    env = os.environ.get(N_JOBS_ENV, "").strip()
    return _parse(env, f"${N_JOBS_ENV}") if env else available_cores()


def _run_task(fn: Callable[..., Any], item: Any, threads: int) -> Any:
    """Run one task with ``threads`` torch and BLAS/OpenMP threads (restored afterwards), nested maps sequential."""
    import torch
    from threadpoolctl import threadpool_limits

    old_threads, old_flag = torch.get_num_threads(), getattr(_task, "running", False)
    torch.set_num_threads(threads)
    _task.running = True
    try:
        with threadpool_limits(threads):
            return fn(item)
    finally:
        torch.set_num_threads(old_threads)
        _task.running = old_flag


def shared_pool_config() -> Any:
    """The joblib settings of every map here: loky workers with THREADS_PER_TASK threads each, so all maps of a run
    reuse ONE pool (a map under other settings makes loky start a new pool: ~2 s and every import again). Another
    backend the caller made active (e.g. dask) is left in force."""
    import contextlib

    import joblib
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if type(backend).__name__ != "LokyBackend":
        return contextlib.nullcontext()
    # max_nbytes=None: arguments are pickled, never memory-mapped read-only (torch warns on those)
    return joblib.parallel_config(backend="loky", inner_max_num_threads=THREADS_PER_TASK, max_nbytes=None)


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], n_jobs: int | str | None = None, *,
                 threads: int = THREADS_PER_TASK, desc: str | None = None, progress: bool = False) -> list[Any]:
    """``[fn(item) for item in items]``, computed in up to ``n_jobs`` worker processes, results in item order.

    ``fn`` and the items must pickle (module-level functions, arrays, estimators). Tasks run in order of
    ``items``, so put the longest first when sizes differ. With one worker (or one item, or inside a worker)
    everything runs in this process, with the same thread settings as in a worker.
    """
    tasks: Sequence[Any] = list(items)
    # the pool keeps its size whatever the number of tasks: loky resizes (restarts workers) on any change
    workers = n_jobs_in_force(n_jobs) if len(tasks) > 1 else 1
    from tqdm.auto import tqdm  # looked up at call time: the notebook may have swapped the bar class

    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=False)
    try:
        if workers <= 1:
            results = []
            for item in tasks:
                results.append(_run_task(fn, item, threads))
                bar.update(1)
            return results
        import joblib

        results = []
        with joblib.parallel_config(backend="loky", inner_max_num_threads=threads, max_nbytes=None):
            parallel = joblib.Parallel(n_jobs=workers, return_as="generator")   # shared_pool_config's pool
            for result in parallel(joblib.delayed(_run_task)(fn, item, threads) for item in tasks):
                results.append(result)
                bar.update(1)
        return results
    finally:
        bar.close()


def _imported(module: str) -> int:
    """A warm-up task: import ``module`` in this worker; returns the worker's pid."""
    import importlib

    importlib.import_module(module)
    return os.getpid()


def in_background(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
    """``fn(*args, **kwargs)`` in a background thread of this process (with one worker: at once, in this thread);
    returns its Future (``.result()`` waits and re-raises). For work whose fits run in the worker pool anyway (the
    thread only waits on them): started early, it keeps the pool busy while this process does serial work such as
    drawing figures. Two jobs run at a time, in submission order, so one job's tail (fewer tasks than workers) does
    not leave the pool idle; results are those of a direct call (every task carries its own random streams)."""
    global _background
    if n_jobs_in_force() <= 1:   # one process asked for: the job runs now, here (no thread shares its settings)
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as exc:
            done.set_exception(exc)
        return done
    if _background is None:
        from concurrent.futures import ThreadPoolExecutor

        _background = ThreadPoolExecutor(max_workers=BACKGROUND_JOBS, thread_name_prefix="wordle_moe-background")
    return _background.submit(fn, *args, **kwargs)


def warm_up(n_jobs: int | str | None = None, module: str = "torch") -> Future | None:
    """Start the worker pool in the background and let each worker import ``module`` (the notebook names the
    engine's top, ~2 s), so that the first map finds the pool ready while this process does other work (its own
    imports, the data). None when maps would run in this process, or when ``n_jobs`` is invalid (whoever sets it
    reports that)."""
    try:
        workers = n_jobs_in_force(n_jobs)
    except ValueError:
        return None
    return in_background(parallel_map, _imported, [module] * workers, n_jobs=workers) if workers > 1 else None


def chunks(n: int, size: int) -> list[range]:
    """``range(n)`` cut into ceil(n / size) consecutive pieces of near-equal length (at most ``size``; lengths
    differ by at most one), so no piece is left with a single item unless ``n`` is 1 or ``size`` is."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    k = -(-n // size)
    bounds = [n * i // k for i in range(k + 1)] if k else []
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]
