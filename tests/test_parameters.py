"""Tests of wordle_moe.parameters: the notebook's parameters are parsed, capped and validated before any training."""
from __future__ import annotations

import types

import pytest

from wordle_moe import parameters
from wordle_moe.config import ConfigError, MoEConfig


def fake_module(**knobs):
    mod = types.SimpleNamespace(HOLDOUT_WORD="eerie", HOLDOUT_DATE="2023-03-01", NUM_EXPERTS=2, TOP_K=1, MAX_EPOCHS=600)
    for k, v in knobs.items():
        setattr(mod, k, v)
    mod.config = lambda: MoEConfig(num_experts=mod.NUM_EXPERTS, top_k=mod.TOP_K,
                                   max_epochs=getattr(mod, "MAX_EPOCHS", 600)).validate()
    return mod


def test_apply_parameters_sets_caps_and_validates():
    mod = fake_module()
    applied = parameters.apply_parameters(mod, {"NUM_EXPERTS": 3, "TOP_K": 2, "MAX_EPOCHS": 600, "QUICK": True},
                                      quick=True)
    assert mod.NUM_EXPERTS == 3 and mod.MAX_EPOCHS == parameters.QUICK_CAPS["MAX_EPOCHS"] and "QUICK" not in applied
    with pytest.raises(ConfigError, match="TOP_K"):
        parameters.apply_parameters(fake_module(), {"NUM_EXPERTS": 2, "TOP_K": 3})
    with pytest.raises(ConfigError, match="HOLDOUT_WORD"):
        parameters.apply_parameters(fake_module(), {"HOLDOUT_WORD": "toolong"})
    with pytest.raises(ConfigError, match="HOLDOUT_DATE"):
        parameters.apply_parameters(fake_module(), {"HOLDOUT_DATE": "not a date"})


def test_grid_for_run_is_small_unless_full():
    mod = types.SimpleNamespace(NUM_EXPERTS=3, TOP_K=2, HIDDEN_SIZE=64, GRID_NUM_EXPERTS=[2, 3, 4],
                                GRID_TOP_K=[1, 2], GRID_HIDDEN_SIZE=[64, 128], GRID_AUX_COEF=[1e-3],
                                GRID_DIVERSITY_COEF=[1e-4, 5e-4])
    assert parameters.grid_for_run(mod, full=False) == {"num_experts": [3], "top_k": [1, 2]}
    assert parameters.grid_for_run(mod, full=True)["hidden_size"] == [64, 128]
    mod.NUM_EXPERTS = 1
    assert parameters.grid_for_run(mod, full=False) == {"num_experts": [1], "hidden_size": [64, 128]}
