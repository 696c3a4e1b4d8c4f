"""The notebook runs headless with papermill (QUICK=True) and writes every fixed-name output correctly.

Runs are shared between tests (each QUICK run < 60 s): a (3 experts, Top-2) run, and a second identical run with
two worker processes that fails on purpose in its last computing section (byte-identical CSVs and PNGs: results
depend neither on the run nor on N_JOBS; a crash keeps every earlier output). A misspelt parameter stops a papermill
run at the parameters cell; an invalid knob stops the same cells executed in this process. Under pytest-xdist each
shared run executes once per session, on the worker that needs it first (a file lock in the session's shared temp
folder); a worker that needs a run another is executing waits for it (tests/conftest.py orders the tests so that
rarely happens). The tests of one run form one xdist group (``--dist loadgroup``; pytest-xdist 3.8 does not yet
apply groups under pytest 9.2, where they are ignored and the lock alone keeps every run single).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jupytext
import matplotlib
import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
from filelock import FileLock

from analysis.assignment import relative_ownership, topk_gates_from_scores
from wordle_moe import parameters, progress, report
from wordle_moe.paths import PRED_COLUMNS

# xdist --dist loadgroup: the tests of the shared (3 experts, Top-2) run stay on one worker; the longer runs
# that compare with it carry their own groups, so they start on other workers at once
pytestmark = pytest.mark.xdist_group("notebook_three_top2")
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "moe_with_bootstrap.ipynb"
RUN_LIMIT_SECONDS = 90  # QUICK target is < 60 s; leave head-room for a loaded 2-core machine
THREE_TOP2 = {"NUM_EXPERTS": 3, "TOP_K": 2, "SEED": 0, "DROPOUT": 0.2, "GRID_TOP_K": "[1, 2]"}


def execute(out_dir: Path, **params) -> tuple[float, Exception | None]:
    """Execute the notebook into out_dir with QUICK=True; returns (seconds, the execution error or None)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(NOTEBOOK), str(out_dir / "executed.ipynb"), cwd=str(ROOT), kernel_name="python3",
                                   parameters={"QUICK": True, "OUTPUT_DIR": str(out_dir), **params},
                                   progress_bar=False, log_output=False, engine_name="wordle_moe")   # as make run
        err = None
    except papermill.PapermillExecutionError as exc:
        err = exc
    return time.perf_counter() - start, err


def shared_run(tmp_path_factory, name: str, **params) -> tuple[Path, float, str | None]:
    """Execute the notebook once per test session (across xdist workers) into a folder named ``name``;
    returns (folder, seconds, the error message or None)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session folder every worker's basetemp lives in
    out, done = root / f"notebook_{name}", root / f"notebook_{name}.json"
    with FileLock(str(root / f"notebook_{name}.lock")):
        if not done.exists():
            seconds, err = execute(out, **params)
            done.write_text(json.dumps({"seconds": seconds, "error": None if err is None else str(err)}))
    result = json.loads(done.read_text())
    return out, result["seconds"], result["error"]


@pytest.fixture(scope="module")
def three_expert_run(tmp_path_factory):
    out, seconds, err = shared_run(tmp_path_factory, "three_top2", **THREE_TOP2)
    assert err is None, err
    return out, seconds


SOURCE = ROOT / "moe_with_bootstrap.py"  # the jupytext percent-format twin: the text form users edit and diff


def _code_and_markdown(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def test_notebook_and_its_text_twin_are_in_sync():
    """moe_with_bootstrap.py and .ipynb hold the same cells (run `make notebook` after editing either)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"  # paired: JupyterLab saves both
    twin = jupytext.read(SOURCE, fmt="py:percent")
    assert _code_and_markdown(twin) == _code_and_markdown(nb), "run `make notebook` to sync the pair"


def _parameters_cell_values() -> dict:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    values: dict = {}
    exec(next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source, {}, values)
    return {k: v for k, v in values.items() if not k.startswith("_")}  # not __annotations__


def test_committed_notebook_has_no_outputs_and_one_tagged_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and all(c.outputs == [] and c.execution_count is None for c in code_cells)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def test_every_module_knob_is_a_notebook_parameter():
    """The parameters cell defines exactly the knobs of moe_booststrap.py (GRID_* included) plus the notebook's
    switches: a knob added to the module without a parameter (or a stale parameter) fails here."""
    import moe_booststrap as mb

    values = _parameters_cell_values()
    knobs = set(mb.knobs())
    assert {"ACTIVATION", "DROPOUT", "GATE", "N_WEIGHTING", "INPUT_CLIP", "EXPERT_SKIP", "SKIP_L2", "SKIP_ZERO_MLP",
            "ROUTER_ONLY_EPOCHS", "ROUTING_CE_COEF", "BIAS_UPDATE_RATE", "GRID_TOP_K"} <= knobs
    assert "KEY_FEATURES" not in knobs  # re-exported constants are not knobs
    missing, stale = sorted(knobs - set(values)), sorted(set(values) - knobs - set(parameters.NOTEBOOK_SWITCHES))
    assert not missing and not stale, f"add to the parameters cell: {missing}; remove: {stale}"
    assert set(values) == set(parameters.notebook_parameters(mb))


def test_parameters_cell_holds_the_declared_defaults_with_their_help():
    """The parameters cell's knob lines are the module's knobs at MoEConfig's / RunKnobs' declared defaults, each
    with its type and one-line help [rule] (what `papermill --help-notebook` shows): one table, three views."""
    import importlib

    import moe_booststrap as mb

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source.splitlines()
    knob_lines = [line for line in cell if line.split(":")[0] in set(parameters.module_knobs(mb))]
    assert knob_lines == parameters.parameter_lines(mb), "regenerate the cell from parameters.parameter_lines"
    fresh = importlib.reload(importlib.import_module("moe_booststrap"))  # the values in the file
    values = _parameters_cell_values()
    assert {k: values[k] for k in fresh.knobs()} == fresh.knobs()
    assert all("=" not in line.split("#", 1)[1] for line in knob_lines)  # papermill's --help-notebook drops those


def test_papermill_help_shows_type_default_and_meaning_of_every_parameter():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(NOTEBOOK)], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "NUM_EXPERTS: int (default 2)" in res.stdout and "QUICK: bool (default False)" in res.stdout
    assert "[one of topk | noisy_topk" in res.stdout and "GRID_TOP_K: list (default [1, 2])" in res.stdout
    import moe_booststrap as mb

    for name in parameters.module_knobs(mb):
        assert f"  {name}: " in res.stdout, name


def test_none_parameters_keep_edited_module_knobs(monkeypatch):
    import moe_booststrap as mb

    for knob in (*parameters.QUICK_CAPS, "HOLDOUT_WORD", "HOLDOUT_DATE", "GRID_TOP_K"):  # restored after the test
        monkeypatch.setattr(mb, knob, getattr(mb, knob))
    monkeypatch.setattr(mb, "NUM_EXPERTS", 3)
    monkeypatch.setattr(mb, "TOP_K", 2)
    monkeypatch.setattr(mb, "MAX_EPOCHS", 600)
    applied = parameters.apply_parameters(mb, {k: None for k in parameters.module_knobs(mb)}, quick=True)
    assert (mb.NUM_EXPERTS, mb.TOP_K) == (3, 2) and "NUM_EXPERTS" not in applied
    defaults = _parameters_cell_values()  # the cell as shipped: every knob at its declared default
    applied = parameters.apply_parameters(mb, defaults, quick=True)
    assert (mb.NUM_EXPERTS, mb.TOP_K) == (3, 2) and "NUM_EXPERTS" not in applied  # the module's edits are kept
    applied = parameters.apply_parameters(mb, {**defaults, "TOP_K": 3})  # a value that differs is applied
    assert (mb.NUM_EXPERTS, mb.TOP_K) == (3, 3) and applied["TOP_K"] == 3
    assert mb.MAX_EPOCHS == parameters.QUICK_CAPS["MAX_EPOCHS"]  # QUICK caps the module's own value too
    applied = parameters.apply_parameters(mb, {"GRID_TOP_K": "[2]"})  # papermill -p passes a list as text
    assert mb.GRID_TOP_K == [2] and applied["GRID_TOP_K"] == [2]
    with pytest.raises(mb.ConfigError, match="GRID_TOP_K"):
        parameters.apply_parameters(mb, {"GRID_TOP_K": "1, 2, oops"})


def test_unknown_parameter_names_are_refused_with_a_hint():
    import moe_booststrap as mb

    parameters.check_parameter_names(["ACTIVATION", "QUICK", "GRID_TOP_K"], mb)  # known: fine
    with pytest.raises(mb.ConfigError, match=r"\['ACTIVATON'\].*did you mean ACTIVATION"):
        parameters.check_parameter_names(["ACTIVATON", "QUICK"], mb)


def test_text_progress_bars_for_logs(monkeypatch):
    """Under papermill (or WORDLE_MOE_PROGRESS=text) the engine's tqdm.auto bars become log-friendly text."""
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.auto.tqdm)  # restored afterwards
    monkeypatch.setattr(tqdm.auto, "trange", tqdm.auto.trange)
    monkeypatch.setenv(progress.PROGRESS_ENV, "widgets")
    assert progress.configure_progress() == "widgets"
    monkeypatch.setenv(progress.PROGRESS_ENV, "text")
    assert progress.configure_progress() == "text"
    import io

    buf = io.StringIO()
    for _ in tqdm.auto.tqdm(range(3), desc="work", file=buf):
        pass
    assert "work: 100%" in buf.getvalue() and "3/3" in buf.getvalue()


def test_quick_run_writes_every_fixed_output(three_expert_run):
    out, seconds = three_expert_run
    assert seconds < RUN_LIMIT_SECONDS, f"QUICK run took {seconds:.0f} s"
    missing = [f for f in report.expected_outputs("eerie") if not (out / f).exists()]
    assert not missing
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, png.name
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 0
    assert all(s["status"] == "ok" for s in manifest["sections"])
    assert manifest["parameters"]["NUM_EXPERTS"] == 3
    assert len(manifest["data_files"]["Problem_C_Data_Wordle.xlsx"]["sha256"]) == 64
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files


def test_quick_run_tables(three_expert_run):
    out, _ = three_expert_run
    weights = ["expert_0_weight", "expert_1_weight", "expert_2_weight"]  # NUM_EXPERTS=3 was injected
    for name in ("expert_assignment_all_data.csv", "expert_assignment_fixed.csv"):
        df = pd.read_csv(out / name)
        assert list(df.columns) == ["word", "primary_expert", *weights, *PRED_COLUMNS], name
        np.testing.assert_allclose(df[weights].sum(axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(df[PRED_COLUMNS].sum(axis=1), 1, atol=1e-6)
        assert len(df) == 359
    topk = pd.read_csv(out / "expert_assignment_all_data.csv")
    fixed = pd.read_csv(out / "expert_assignment_fixed.csv")
    assert (topk["word"] == fixed["word"]).all()
    # the Top-K weights are the softmax weights' top-2, renormalised (the model's router, recomputed from the CSVs)
    expected = topk_gates_from_scores(fixed[weights].to_numpy(), 2)["gates"]
    np.testing.assert_allclose(topk[weights].to_numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(topk["primary_expert"], topk[weights].to_numpy().argmax(axis=1))
    # the softmax table's owners follow the relative-affinity rule applied to its own weights
    np.testing.assert_array_equal(fixed["primary_expert"], relative_ownership(fixed[weights].to_numpy()))
    log = pd.read_csv(out / "data_cleaning_log.csv")
    assert list(log.columns) == ["contest", "column", "old_value", "new_value", "rule"] and len(log) > 0
    loss = pd.read_csv(out / "moe_loss_log.csv")
    assert {"epoch", "total_loss", "main_loss", "lb_loss", "div", "out_div", "js", "val_loss",
            "routing_prob_expert_2"} <= set(loss.columns)
    hold = pd.read_csv(out / "holdout_eerie_predictions_with_ci.csv")
    assert len(hold) == 7 and (hold["low"] <= hold["mean"]).all() and (hold["mean"] <= hold["high"]).all()
    np.testing.assert_allclose(hold["mean"].sum(), 1, atol=1e-6)
    summ = pd.read_csv(out / "moe_bootstrap_pred_summary.csv")
    assert {"word", "bucket", "mean", "std", "low", "high"} <= set(summ.columns) and len(summ) == 360 * 7
    pred = pd.read_csv(out / "moe_softmax_pred_output.csv")
    np.testing.assert_allclose(pred[PRED_COLUMNS].sum(axis=1), 1, atol=1e-6)
    stats = pd.read_csv(out / "expert_feature_statistics_fixed.csv")
    assert set(stats["expert"]) == {0, 1, 2} and stats["key_feature"].sum() == 18
    for name in ("grid_search_results.csv", "router_comparison.csv", "model_comparison.csv"):
        assert len(pd.read_csv(out / name)) >= 2, name
    comparison = pd.read_csv(out / "model_comparison.csv")  # every row carries its own protocol's label
    assert all(m.startswith(f"quick, protocol {p}:") for p, m in zip(comparison["protocol"], comparison["mode"]))


def test_quick_run_grouping_stability(three_expert_run):
    """The bootstrap replicas' consensus grouping: a consistent table and the ARI beside its baseline."""
    out, _ = three_expert_run
    stab = pd.read_csv(out / "expert_assignment_stability.csv")
    shares = ["expert_0_share", "expert_1_share", "expert_2_share"]
    assert list(stab.columns) == ["word", "consensus_expert", "confidence", *shares] and len(stab) == 359
    S = stab[shares].to_numpy()
    np.testing.assert_allclose(S.sum(axis=1), 1, atol=1e-9)
    np.testing.assert_allclose(stab["confidence"], S.max(axis=1), atol=1e-12)
    np.testing.assert_array_equal(stab["consensus_expert"], S.argmax(axis=1))
    B = parameters.QUICK_CAPS["BOOTSTRAP_B"]
    np.testing.assert_allclose(S * B, np.round(S * B), atol=1e-6)   # shares are counts of the B replicas
    assert (stab["confidence"] >= 1 / 3 - 1e-9).all()
    notes = json.loads((out / "run_manifest.json").read_text())["notes"]["grouping_stability"]
    assert notes["n_replicas"] == B and notes["n_words"] == 359
    assert -1 <= notes["mean_pairwise_ari"] <= 1 and abs(notes["baseline_ari"]) < 0.05
    assert notes["consensus_group_sizes"] == np.bincount(stab["consensus_expert"], minlength=3).tolist()
    assert "reproducible" in notes["verdict"]


def test_quick_run_beyond_2022(three_expert_run):
    """Protocol C forecast table: the 184 test days, shares summing to 1, intervals around the forecast."""
    out, _ = three_expert_run
    fc = pd.read_csv(out / "forecast_wordlebot.csv")
    labels = ["1", "2", "3", "4", "5", "6", "X"]
    assert len(fc) == 184 and fc["date"].iloc[0] == "2024-07-01" and fc["date"].iloc[-1] == "2024-12-31"
    assert fc["date"].is_unique
    for prefix in ("observed", "pred"):
        np.testing.assert_allclose(fc[[f"{prefix}_{b}" for b in labels]].sum(axis=1), 1, atol=1e-6)
    for b in [*labels, "mean_tries"]:
        assert (fc[f"pi_low_{b}"] <= fc[f"pred_{b}"] + 1e-12).all() and (fc[f"pred_{b}"] <= fc[f"pi_high_{b}"] + 1e-12).all()
        assert (fc[f"boot_low_{b}"] <= fc[f"boot_high_{b}"]).all()
        assert (fc[f"pi_low_{b}"] <= fc[f"boot_low_{b}"] + 1e-12).all()  # the predictive interval contains the mean's
    observed = fc[[f"observed_{b}" for b in labels]].to_numpy()
    np.testing.assert_allclose(fc["observed_mean_tries"], observed @ np.arange(1, 8), atol=1e-9)
    comparison = pd.read_csv(out / "forecast_wordlebot_comparison.csv")
    assert {"moe", "softmax_regression", "mean_distribution"} <= set(comparison["model"])
    assert (comparison["n_test"] == 184).all() and comparison["rps"].is_monotonic_increasing
    moe = comparison.set_index("model").loc["moe"]
    inside = ((observed >= fc[[f"pi_low_{b}" for b in labels]].to_numpy())
              & (observed <= fc[[f"pi_high_{b}" for b in labels]].to_numpy())).mean()
    assert moe["coverage_calibrated"] == pytest.approx(inside)
    notes = json.loads((out / "run_manifest.json").read_text())["notes"]["beyond_2022_model"]
    assert notes["date_range"] == ["2022-01-07", "2024-12-31"] and notes["n_rows"] == 359 + 644
    assert (out / "model" / "all_sources").is_dir()


def test_quick_run_grid_and_router_tables(three_expert_run):
    out, _ = three_expert_run
    grid = pd.read_csv(out / "grid_search_results.csv")
    for col in ("stability_ari", "stability_ari_baseline", "routed_js", "min_group_share", "within_1se", "balanced"):
        assert col in grid, col
    assert grid["stability_ari"].between(-1, 1).all() and grid["selected"].sum() == 1
    chosen = grid[grid["selected"]].iloc[0]
    assert bool(chosen["within_1se"])  # the rule never trades accuracy beyond one standard error
    routers = pd.read_csv(out / "router_comparison.csv")
    assert len(routers) == 8 and (routers["num_experts"] == 3).all()
    assert sorted(zip(routers["router"], routers["top_k"])) == sorted(
        (r, k) for r in ("topk", "noisy_topk", "expert_choice", "reputation") for k in (1, 2))
    for col in ("rps", "load_cv", "usage_entropy", "routed_js", "stability_ari", "override_rate"):
        assert routers[col].notna().all(), col
    assert routers["stability_ari"].between(-1, 1).all() and routers["override_rate"].between(0, 1).all()
    assert (routers.loc[routers["router"] == "topk", "override_rate"] == 0).all()
    assert (routers["usage_entropy"] <= 1 + 1e-9).all()


# The two-worker run fails on purpose in its last computing section, beyond_2022_model (it writes only
# model/all_sources/, no CSV or PNG): one run checks both that N_JOBS changes no byte of any CSV or PNG and that a
# crash keeps everything written before it, where a separate failing run used to cost a third QUICK execution.
TWO_WORKERS_FAILING_LAST = {**THREE_TOP2, "N_JOBS": 2, "FAIL_AT_SECTION": "beyond_2022_model"}


@pytest.mark.xdist_group("notebook_rerun")
def test_same_seed_gives_byte_identical_csvs_and_pngs_with_two_workers(tmp_path_factory):
    """A second run with the same seed, its independent fits in 2 worker processes, writes the same bytes."""
    # this test's own run first: under xdist another worker is meanwhile executing the run it compares with
    out_b, _, err = shared_run(tmp_path_factory, "three_top2_two_workers", **TWO_WORKERS_FAILING_LAST)
    assert err is not None and "FAIL_AT_SECTION='beyond_2022_model'" in err
    out_a, _, err = shared_run(tmp_path_factory, "three_top2", **THREE_TOP2)
    assert err is None, err
    assert json.loads((out_b / "run_manifest.json").read_text())["notes"]["n_jobs"] == 2
    assert json.loads((out_a / "run_manifest.json").read_text())["notes"]["n_jobs"] == 1
    csvs = sorted(p.name for p in out_a.glob("*.csv"))
    assert len(csvs) == sum(f.endswith(".csv") for f in report.expected_outputs("eerie"))
    pngs = sorted(p.name for p in out_a.glob("*.png"))
    assert len(pngs) >= sum(f.endswith(".png") for f in report.expected_outputs("eerie"))
    missing = [n for n in csvs + pngs if not (out_b / n).exists()]
    assert not missing  # the failed section writes no CSV or PNG: every one is compared
    differ = [n for n in csvs + pngs if (out_a / n).read_bytes() != (out_b / n).read_bytes()]
    assert not differ


@pytest.mark.xdist_group("notebook_rerun")
def test_failure_late_leaves_every_earlier_output_and_a_failed_manifest(tmp_path_factory):
    """A crash in a section keeps what the sections before it wrote (complete, parseable files: byte for byte the
    complete run's, checked above), writes nothing of its own, runs nothing after it and marks the manifest failed."""
    out, _, err = shared_run(tmp_path_factory, "three_top2_two_workers", **TWO_WORKERS_FAILING_LAST)
    assert err is not None and "FAIL_AT_SECTION" in str(err)
    earlier = [f for f in report.expected_outputs("eerie") if f != "run_manifest.json"]
    assert earlier and not [f for f in earlier if not (out / f).exists()]
    assert (out / "model" / "single").is_dir() and (out / "model" / "bootstrap").is_dir()
    assert not (out / "model" / "all_sources").exists()  # the failed section's own output
    loss = pd.read_csv(out / "moe_loss_log.csv")  # complete, parseable
    assert "routing_prob_expert_2" in loss and "routing_prob_expert_3" not in loss  # injected NUM_EXPERTS=3 mattered
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "failed"
    status = {s["name"]: s["status"] for s in manifest["sections"]}
    assert status["beyond_2022"] == "ok" and status["beyond_2022_model"] == "failed" and "outputs" not in status
    assert all(v == "ok" for k, v in status.items() if k != "beyond_2022_model")
    assert "notes" in manifest and "beyond_2022_model" not in manifest["notes"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert not [p for p in (out / "model").rglob(".*")]  # no temp files of an interrupted save


def _run_notebook_in_process(out_dir: Path, monkeypatch, **params) -> Exception | None:
    """Execute the notebook's code cells, papermill's injected-parameters cell included (papermill's own
    parameterize_notebook), in this process until the parameters section has run or a cell raises; returns the
    error. The same cell sources as a kernel runs, without a kernel's start-up and imports (~10 s); module state the
    cells change (the knobs of moe_booststrap, tqdm.auto's bar class, the worker count) is restored afterwards."""
    import tqdm.auto
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    import moe_booststrap as mb
    from wordle_moe import parallel

    for knob in parameters.module_knobs(mb):
        monkeypatch.setattr(mb, knob, getattr(mb, knob))
    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.auto.tqdm)
    monkeypatch.setattr(tqdm.auto, "trange", tqdm.auto.trange)
    monkeypatch.setattr(parallel, "_n_jobs", parallel._n_jobs)
    monkeypatch.setenv(progress.PROGRESS_ENV, "text")  # as under papermill
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)),  # papermill's own loading and injection
                               {"QUICK": True, "OUTPUT_DIR": str(out_dir), **params})

    class _Shell:  # what the setup cell asks of IPython: the names it defines itself, hidden from the user's
        user_ns_hidden = {"get_ipython": None}

    namespace = {"__name__": "__main__", "get_ipython": lambda: _Shell}
    # the set-up cell styles matplotlib and pandas for the whole process: restored on leaving
    with matplotlib.rc_context(), pd.option_context("display.precision", pd.get_option("display.precision")):
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            try:
                exec(compile(cell.source, "<notebook cell>", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - the cell's error is what the caller checks
                return exc
            if "run" in namespace and any(s["name"] == "parameters" and s["status"] == "ok"
                                          for s in namespace["run"].data["sections"]):
                return None
    raise AssertionError("the notebook has no parameters section")


def test_invalid_knob_stops_before_training_naming_it(tmp_path, monkeypatch):
    """TOP_K > NUM_EXPERTS stops the run in the parameters section, naming the knob, before any training. Executed
    in this process (the kernel path of a stopped run is test_unknown_parameter_stops_the_run_naming_it's)."""
    import moe_booststrap as mb

    err = _run_notebook_in_process(tmp_path, monkeypatch, TOP_K=5)
    assert isinstance(err, mb.ConfigError) and "TOP_K" in str(err)
    manifest = json.loads((tmp_path / "run_manifest.json").read_text())
    assert [s["name"] for s in manifest["sections"]] == ["parameters"] and manifest["status"] == "failed"
    assert not (tmp_path / "moe_loss_log.csv").exists()
    # the same cells with a valid TOP_K pass the parameters section (the stop above is the knob's, not the harness's)
    assert _run_notebook_in_process(tmp_path / "valid", monkeypatch, TOP_K=2, NUM_EXPERTS=3) is None
    manifest = json.loads((tmp_path / "valid" / "run_manifest.json").read_text())
    assert manifest["sections"][0]["status"] == "ok" and manifest["notes"]["config"]["top_k"] == 2


@pytest.mark.xdist_group("notebook_stops")
def test_unknown_parameter_stops_the_run_naming_it(tmp_path):
    seconds, err = execute(tmp_path, ACTIVATON="gelu")
    assert err is not None and "ACTIVATON" in str(err) and "did you mean ACTIVATION" in str(err)
    manifest = json.loads((tmp_path / "run_manifest.json").read_text())
    assert [s["name"] for s in manifest["sections"]] == ["parameters"]
    assert not (tmp_path / "moe_loss_log.csv").exists()


def test_injected_knobs_reach_the_module(three_expert_run):
    """Knobs that papermill used to drop (DROPOUT, the GRID_* lists) now change the run."""
    out, _ = three_expert_run
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["notes"]["config"]["dropout"] == 0.2 and manifest["parameters"]["DROPOUT"] == 0.2


def test_quick_run_saves_models_that_predict(three_expert_run):
    """model/single and model/bootstrap load and reproduce the run's holdout prediction; both intervals in the CSV."""
    from wordle_moe.cli import predict_frame
    from wordle_moe.persistence import load_model

    out, _ = three_expert_run
    single, boot = load_model(out / "model" / "single"), load_model(out / "model" / "bootstrap")
    assert single.replicas == 1 and boot.replicas == parameters.QUICK_CAPS["BOOTSTRAP_B"]
    assert boot.config.num_experts == 3 and boot.residuals.shape == (359, 7)
    assert boot.date_range == ("2022-01-07", "2022-12-31")
    hold = pd.read_csv(out / "holdout_eerie_predictions_with_ci.csv")
    assert (hold["pred_low"] <= hold["low"] + 1e-9).all() and (hold["pred_high"] >= hold["high"] - 1e-9).all()
    frame, _ = predict_frame(boot, ["eerie"], [pd.Timestamp("2023-03-01")])  # the CLI's answer, date clamped
    np.testing.assert_allclose(frame["mean"], hold["mean"], atol=1e-6)
    np.testing.assert_allclose(frame["pred_low"], hold["pred_low"], atol=1e-6)


def test_html_report_of_a_run_embeds_every_figure_and_loads_nothing(three_expert_run, tmp_path):
    """The page `make run` writes: every PNG of the run embedded byte for byte, code hidden, no external fetch."""
    import base64

    from wordle_moe.html_report import external_loads, write_html_report

    out, _ = three_expert_run
    html = write_html_report(out / "executed.ipynb", tmp_path / "moe_with_bootstrap.html").read_text()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 10
    missing = [p.name for p in pngs if base64.b64encode(p.read_bytes()).decode() not in html]
    assert not missing, missing
    assert external_loads(html) == []
    assert "run.section(" not in html  # code cells are hidden
