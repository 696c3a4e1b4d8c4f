"""The public face: knobs read at call time, reload() re-reads edited knobs, invalid knobs fail early, CLI."""
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
    from moe_booststrap import (MoEDistributionRegressor, bootstrap_evaluate, bootstrap_predict,  # noqa: F401
                                bootstrap_summary, evaluate, predict_word, train_moe)


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


def test_cli_predicts_eerie_with_interval(mb, monkeypatch, capsys):
    monkeypatch.setattr(mb, "BOOTSTRAP_B", 3)
    assert mb._main(["predict", "EERIE", "--date", "2023-03-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("EERIE on 2023-03-01")
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6", "X"]
    means = np.array([float(r[1]) for r in rows])
    lows, highs = np.array([float(r[3]) for r in rows]), np.array([float(r[4]) for r in rows])
    assert means.sum() == pytest.approx(100, abs=0.1)
    assert np.all(lows <= means + 1e-9) and np.all(means <= highs + 1e-9)


def test_cli_rejects_a_word_that_is_not_five_letters(mb, capsys):
    with pytest.raises(SystemExit):
        mb._main(["predict", "eerier"])
    assert "eerier" in capsys.readouterr().err
