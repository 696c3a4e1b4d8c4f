"""The public face: knobs read at call time, reload() re-reads edited knobs, invalid knobs fail early, CLI."""
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import moe_booststrap


@pytest.fixture
def mb(monkeypatch):
    """The module with short training so API calls stay fast; knobs restored afterwards."""
    monkeypatch.setattr(moe_booststrap, "MAX_EPOCHS", 15)
    monkeypatch.setattr(moe_booststrap, "PATIENCE", 5)
    return moe_booststrap


def test_public_names_importable():
    from moe_booststrap import (  # noqa: F401
        MoEDistributionRegressor,
        bootstrap_evaluate,
        bootstrap_predict,
        bootstrap_summary,
        evaluate,
        predict_word,
        train_moe,
    )


def test_runtime_knob_change_is_used_by_config(mb, monkeypatch):
    monkeypatch.setattr(mb, "NUM_EXPERTS", 3)
    monkeypatch.setattr(mb, "TOP_K", 2)
    cfg = mb.config()
    assert (cfg.num_experts, cfg.top_k, cfg.max_epochs) == (3, 2, 15)


def test_reload_picks_up_an_edited_knob(tmp_path, monkeypatch):
    source = Path(moe_booststrap.__file__).read_text()
    copy = tmp_path / "moe_booststrap.py"
    copy.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))  # reload() finds the module by name on sys.path
    spec = importlib.util.spec_from_file_location("moe_booststrap", copy)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "moe_booststrap", module)
    spec.loader.exec_module(module)
    config_before = module.config  # a function imported before the edit
    assert module.config().num_experts == 2
    copy.write_text(source.replace("NUM_EXPERTS = 2\n", "NUM_EXPERTS = 3  # edited by the test\n", 1))
    fresh = module.reload()
    assert fresh.config().num_experts == 3
    assert config_before().num_experts == 3


@pytest.mark.parametrize("knob, value", [("TOP_K", 5), ("AUX_LOSS_WEIGHT", -1.0), ("ROUTER", "nope"),
                                         ("BOOTSTRAP_CI", 1.5)])
def test_invalid_knob_fails_before_training(mb, monkeypatch, knob, value):
    monkeypatch.setattr(mb, knob, value)
    X = np.zeros((4, 3))
    P = np.full((4, 7), 1 / 7)
    with pytest.raises(mb.ConfigError, match=knob):
        mb.train_moe(X, P, X, P)
    with pytest.raises(mb.ConfigError, match=knob):
        mb.bootstrap_predict(X, P, X, B=2)


def test_module_knobs_as_imported_are_the_moeconfig_defaults():
    """One source of defaults: the knobs of moe_booststrap.py (as shipped) equal MoEConfig() field by field, so the
    module, the config and the estimator (whose defaults are MoEConfig's) train the same default model."""
    import dataclasses

    from wordle_moe.config import MoEConfig

    fresh = importlib.import_module("moe_booststrap")
    fresh = importlib.reload(fresh)  # the values in the file, not ones a test set at run time
    defaults = MoEConfig()
    knobs = fresh.knobs()
    shared = [f.name for f in dataclasses.fields(MoEConfig) if f.name.upper() in knobs]
    assert len(shared) >= 20
    differ = {k: (knobs[k.upper()], getattr(defaults, k)) for k in shared if knobs[k.upper()] != getattr(defaults, k)}
    assert not differ, f"module knob vs MoEConfig default: {differ}"
    assert fresh.config() == defaults
    from wordle_moe.config import RunKnobs, knob_fields

    assert set(knobs) <= set(knob_fields()), "every knob is declared in config.py (MoEConfig or RunKnobs)"
    run = dataclasses.asdict(RunKnobs())
    assert {k.upper(): v for k, v in run.items()} == {k: knobs[k] for k in (n.upper() for n in run)}


def test_reexported_objects_honour_the_knobs_when_built(mb, monkeypatch):
    """After ``mb.TOP_K = 2`` the estimator the module re-exports is top-2 (explicit arguments still win, clones keep
    the values), and bootstrap_evaluate / bootstrap_summary use BOOTSTRAP_CI unless given a level."""
    import pickle

    from sklearn.base import clone

    from wordle_moe.estimator import MoEDistributionRegressor as Engine

    monkeypatch.setattr(mb, "NUM_EXPERTS", 3)
    monkeypatch.setattr(mb, "TOP_K", 2)
    est = mb.MoEDistributionRegressor()
    assert isinstance(est, Engine) and (est.num_experts, est.top_k, est.max_epochs) == (3, 2, 15)
    assert (est.n_bootstrap, est.calibration_cv) == (0, 5)  # the estimator's own defaults
    assert mb.MoEDistributionRegressor(top_k=1).top_k == 1
    assert clone(est).top_k == 2 and pickle.loads(pickle.dumps(est)).top_k == 2
    monkeypatch.setattr(mb, "BOOTSTRAP_CI", 0.5)
    rng = np.random.default_rng(0)
    P_boot, P_true = rng.dirichlet(np.ones(7), (40, 3)), rng.dirichlet(np.ones(7), 3)
    from wordle_moe.bootstrap import bootstrap_evaluate as engine_evaluate

    assert mb.bootstrap_evaluate(P_boot, P_true) == engine_evaluate(P_boot, P_true, 0.5)
    assert mb.bootstrap_evaluate(P_boot, P_true, 0.9) == engine_evaluate(P_boot, P_true, 0.9)
    np.testing.assert_array_equal(mb.bootstrap_summary(P_boot)["low"], np.quantile(P_boot, 0.25, axis=0))


def test_the_facade_imports_no_scikit_learn_until_asked():
    import subprocess

    code = "import sys, moe_booststrap; print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_saved_model_functions_are_public():
    from moe_booststrap import load_model, save_model  # noqa: F401
    from wordle_moe.persistence import load_model as engine_load

    assert load_model is engine_load


def test_predict_word_refuses_a_word_that_is_not_five_letters(mb):
    from wordle_moe.cli import CLIError

    with pytest.raises(CLIError, match="eerier"):
        mb.predict_word("eerier")


@pytest.fixture
def restored(monkeypatch):
    """The module with every knob restored after the test (apply_run sets them on the module itself)."""
    for name, value in moe_booststrap.knobs().items():
        monkeypatch.setattr(moe_booststrap, name, value)
    return moe_booststrap


def _manifest(tmp_path, **knobs):
    import json

    values = {**moe_booststrap.knobs(), **knobs}
    path = tmp_path / "run_manifest.json"
    path.write_text(json.dumps({"status": "complete", "parameters": {"QUICK": True}, "notes": {"knobs": values}}))
    return path


def test_apply_run_sets_the_knobs_of_a_run(restored, tmp_path):
    path = _manifest(tmp_path, NUM_EXPERTS=3, TOP_K=2, LR=0.005, GRID_TOP_K=[1], HOLDOUT_WORD="crane")
    changed = restored.apply_run(path)
    assert changed == {"NUM_EXPERTS": 3, "TOP_K": 2, "LR": 0.005, "GRID_TOP_K": [1], "HOLDOUT_WORD": "crane"}
    cfg = restored.config()
    assert (cfg.num_experts, cfg.top_k, cfg.lr) == (3, 2, 0.005) and restored.HOLDOUT_WORD == "crane"
    assert restored.apply_run(tmp_path) == {}  # the folder holding the manifest works too; nothing left to change


def test_apply_run_names_unknown_and_invalid_entries_and_sets_nothing(restored, tmp_path):
    import json

    path = _manifest(tmp_path, NUM_EXPERTS="two", WARP_DRIVE=9, CAPACITY_FACTOR=3.0, LR=0.5)
    with pytest.raises(restored.ConfigError) as exc:
        restored.apply_run(path)
    text = str(exc.value)
    assert "NUM_EXPERTS='two' is invalid" in text and "WARP_DRIVE=9 (unknown)" in text
    assert "CAPACITY_FACTOR=3.0 (no knob of moe_booststrap.py sets it)" in text
    assert restored.LR == 0.01  # nothing was set
    path.write_text(json.dumps({"notes": {"knobs": {**restored.knobs(), "NUM_EXPERTS": 2, "TOP_K": 3}}}))
    with pytest.raises(restored.ConfigError, match="TOP_K"):
        restored.apply_run(path)
    assert restored.TOP_K == 1
    with pytest.raises(restored.ConfigError, match="no such run manifest"):
        restored.apply_run(tmp_path / "missing.json")


def test_apply_run_reads_an_older_manifest_from_its_config(restored, tmp_path):
    """A manifest without notes.knobs: the MoEConfig it validated, plus the holdout knobs from its parameters."""
    import json

    from wordle_moe.config import MoEConfig

    cfg = MoEConfig(hidden_size=16, top_k=1, num_experts=4).to_dict()
    path = tmp_path / "run_manifest.json"
    path.write_text(json.dumps({"parameters": {"HOLDOUT_WORD": "slate", "QUICK": False, "OUTPUT_DIR": "x"},
                                "notes": {"config": cfg}}))
    changed = restored.apply_run(path)
    assert changed == {"HIDDEN_SIZE": 16, "NUM_EXPERTS": 4, "HOLDOUT_WORD": "slate"}


def test_reload_resets_knobs_set_at_run_time_or_by_apply_run(restored, tmp_path):
    restored.apply_run(_manifest(tmp_path, HIDDEN_SIZE=16))
    restored.TOP_K = 2
    fresh = restored.reload()
    assert (fresh.HIDDEN_SIZE, fresh.TOP_K) == (64, 1)  # the values written in the file
