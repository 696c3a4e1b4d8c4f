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


def test_saved_model_functions_are_public():
    from moe_booststrap import load_model, save_model  # noqa: F401
    from wordle_moe.persistence import load_model as engine_load

    assert load_model is engine_load


def test_predict_word_refuses_a_word_that_is_not_five_letters(mb):
    from wordle_moe.cli import CLIError

    with pytest.raises(CLIError, match="eerier"):
        mb.predict_word("eerier")
