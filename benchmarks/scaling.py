"""Benchmark: does more cores make `make run` faster, and how does the bootstrap's cost grow with its work?

1. `make run`'s notebook executed with N_JOBS = 1, 2, ... worker processes (default: 1, 2 and every core where
   the machine has more): wall time and every section's time from run_manifest.json.
2. The bootstrap (``fit_bootstrap`` with the module's configuration) at B = 50, 200, 800 replicas on the 359 MCM
   rows and on the 1,003 rows of both sources, with every worker: seconds against work (replicas x rows).

The fixed reference workload (../shared/tools/speed_ref.py) runs before and after; every time is also given as
a ratio to their mean. Writes benchmarks/results/scaling.json and benchmarks/results/scaling.png.

    python benchmarks/scaling.py [--workers 1 2] [--B 50 200 800] [--quick] [--skip-run] [--skip-bootstrap] [--replot]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "tools" / "speed_ref.py"

from common import RESULTS_DIR, machine_info, publish  # noqa: E402

from wordle_moe import parallel  # noqa: E402


def reference_seconds() -> float | None:
    """Seconds of the fixed reference workload in a fresh process (None when the script is not beside the repo)."""
    if not REFERENCE.exists():
        return None
    out = subprocess.run([sys.executable, str(REFERENCE)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def notebook_sections(n_jobs: int, quick: bool) -> dict:
    """Wall seconds of one papermill run of the notebook with ``n_jobs`` workers, and its sections' seconds."""
    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        papermill.execute_notebook(str(ROOT / "moe_with_bootstrap.ipynb"), str(Path(tmp) / "run.ipynb"), cwd=str(ROOT),
                                   kernel_name="python3", parameters={"QUICK": quick, "OUTPUT_DIR": tmp, "N_JOBS": n_jobs},
                                   progress_bar=False, log_output=False, engine_name="wordle_moe")   # as make run
        wall = time.perf_counter() - start
        manifest = json.loads((Path(tmp) / "run_manifest.json").read_text())
    return {"wall_seconds": round(wall, 2), "n_jobs_recorded": manifest["notes"]["n_jobs"],
            "sections": {s["name"]: s["seconds"] for s in manifest["sections"]}}


def _import_engine(_: object) -> None:
    import wordle_moe.bootstrap  # noqa: F401


def bootstrap_costs(Bs: list[int], n_jobs: int) -> list[dict]:
    """Seconds of fit_bootstrap at every B on the MCM rows and on both sources' rows (module configuration)."""
    import moe_booststrap as mb
    from wordle_moe.bootstrap import fit_bootstrap
    from wordle_moe.dataset import ALL_SOURCES

    cfg = mb.config()
    # the pool of workers started and the engine imported in each, untimed: every timed fit then pays what a run's
    # later sections pay (the first map of a run starts the pool once)
    parallel.parallel_map(_import_engine, range(n_jobs), n_jobs)
    rows = []
    for label, data in (("mcm", mb.load_dataset()), ("all_sources", mb.load_dataset(sources=ALL_SOURCES))):
        for B in Bs:
            start = time.perf_counter()
            _, info = fit_bootstrap(data.X, data.P, config=cfg, B=B, n_jobs=n_jobs)
            seconds = time.perf_counter() - start
            rows.append({"rows": label, "n_rows": len(data.X), "B": B, "n_jobs": n_jobs, "seconds": round(seconds, 2),
                         "replica_rows": B * len(data.X), "median_best_epoch": int(np.median(info["best_epochs"]))})
            print(f"bootstrap {label} ({len(data.X)} rows) B={B}: {seconds:.1f} s", flush=True)
    return rows


def plot(result: dict, path: Path) -> None:
    """Left: seconds of each notebook section per worker count; right: bootstrap seconds against replicas x rows."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = result["reference_seconds_mean"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1.5, 1]})
    runs = result.get("notebook", {})
    if runs:
        longest = {s: max(r["sections"].get(s, 0) for r in runs.values()) for s in next(iter(runs.values()))["sections"]}
        sections = sorted((s for s in longest if longest[s] >= 0.5), key=lambda s: -longest[s])  # where time goes
        width = 0.8 / len(runs)
        for i, (k, run) in enumerate(sorted(runs.items(), key=lambda kv: int(kv[0]))):
            vals = [run["sections"].get(s, 0) for s in sections]
            ax.bar(np.arange(len(sections)) + i * width, vals, width,
                   label=f"N_JOBS={k}: wall {run['wall_seconds']:.0f} s" + (f" = {run['wall_seconds'] / ref:.1f} x ref"
                                                                          if ref else ""))
        if ref:
            ax.axhline(ref, color="black", ls="--", lw=1, label=f"reference workload {ref:.1f} s")
        ax.set_xticks(np.arange(len(sections)) + 0.4 - width / 2, sections, rotation=35, ha="right")
        ax.set_ylabel("seconds")
        ax.set_title(f"notebook sections by worker processes ({'QUICK' if result['quick'] else 'full'} run, "
                     f"{result['machine']['cpu_count']} cores, load average {result['machine']['load_average'][0]:.1f} "
                     "at the start)")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    boot = result.get("bootstrap", [])
    for label, marker in (("mcm", "o"), ("all_sources", "s")):
        pts = [r for r in boot if r["rows"] == label]
        if pts:
            ax2.plot([r["replica_rows"] for r in pts], [r["seconds"] for r in pts], marker=marker,
                     label=f"{pts[0]['n_rows']} training rows", lw=1)
            for r in pts:
                ax2.annotate(f"B={r['B']}", (r["replica_rows"], r["seconds"]), fontsize=8, xytext=(4, -10),
                             textcoords="offset points")
    if boot:
        if ref:
            ax2.axhline(ref, color="black", ls="--", lw=1, label=f"reference workload {ref:.1f} s")
        ax2.set(xscale="log", yscale="log", xlabel="work: replicas x training rows", ylabel="seconds",
                title=f"bootstrap cost against work (N_JOBS={boot[0]['n_jobs']})")
        ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades only: minor labels collide
        ax2.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())   # seconds as plain numbers
        ax2.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    cores = parallel.available_cores()
    default_workers = sorted({1, 2, cores})
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=default_workers, help="N_JOBS values of the runs")
    parser.add_argument("--B", type=int, nargs="+", default=[50, 200, 800], help="bootstrap replica counts")
    parser.add_argument("--quick", action="store_true", help="QUICK notebook runs (smoke test of this script)")
    parser.add_argument("--skip-run", action="store_true", help="no notebook runs")
    parser.add_argument("--skip-bootstrap", action="store_true", help="no bootstrap timings")
    parser.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON of the last run")
    args = parser.parse_args()
    name = "scaling_quick" if args.quick else "scaling"
    if args.replot:
        plot(json.loads((RESULTS_DIR / f"{name}.json").read_text()), RESULTS_DIR / f"{name}.png")
        return
    for key, value in (("MPLBACKEND", "Agg"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                       ("PYTHONHASHSEED", "0")):  # as `make run` sets them (the notebook kernels inherit them)
        os.environ.setdefault(key, value)
    before = reference_seconds()
    result: dict = {"command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]), "quick": args.quick,
                    "machine": machine_info()}
    if not args.skip_run:
        result["notebook"] = {str(k): notebook_sections(k, args.quick) for k in args.workers}
        for k, run in result["notebook"].items():
            print(f"notebook N_JOBS={k}: {run['wall_seconds']:.1f} s", flush=True)
    if not args.skip_bootstrap:
        result["bootstrap"] = bootstrap_costs(args.B, max(args.workers))
    after = reference_seconds()
    refs = [r for r in (before, after) if r is not None]
    result["reference_seconds"] = [before, after]
    result["reference_seconds_mean"] = round(float(np.mean(refs)), 2) if refs else None
    if refs and "notebook" in result:
        result["notebook_wall_ratio_to_reference"] = {k: round(r["wall_seconds"] / result["reference_seconds_mean"], 2)
                                                      for k, r in result["notebook"].items()}
    plot(result, RESULTS_DIR / f"{name}.png")
    result["figure"] = f"benchmarks/results/{name}.png"
    publish(name, result)


if __name__ == "__main__":
    main()
