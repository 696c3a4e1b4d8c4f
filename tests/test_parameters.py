"""Tests of wordle_moe.parameters: the notebook's parameters are parsed, capped and validated before any training."""
from __future__ import annotations

import types
from pathlib import Path

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


@pytest.mark.parametrize("text, expected", [("false", False), ("False", False), ("FALSE", False), ("0", False),
                                            (0, False), ("true", True), ("True", True), ("1", True), (True, True)])
def test_switches_read_booleans_as_people_type_them(text, expected):
    assert parameters.parse_switches({"QUICK": text, "RUN_GRID_SEARCH": text}) == {"QUICK": expected,
                                                                                   "RUN_GRID_SEARCH": expected}


def test_a_switch_that_is_no_boolean_is_named():
    with pytest.raises(ConfigError, match="QUICK='maybe'"):
        parameters.parse_switches({"QUICK": "maybe"})
    with pytest.raises(ConfigError, match="RUN_GRID_SEARCH=2"):
        parameters.parse_switches({"RUN_GRID_SEARCH": 2})


def knob_module():
    """A stand-in for moe_booststrap with a few knobs at their defaults and config() built from them."""
    mod = types.SimpleNamespace(NUM_EXPERTS=2, TOP_K=1, LR=1e-2, EXPERT_SKIP=False, SHARED_BASE=True,
                                HOLDOUT_WORD="eerie", HOLDOUT_DATE="2023-03-01", GRID_TOP_K=[1, 2])
    mod.knobs = lambda: {k: getattr(mod, k) for k in ("NUM_EXPERTS", "TOP_K", "LR", "EXPERT_SKIP", "SHARED_BASE",
                                                      "HOLDOUT_WORD", "HOLDOUT_DATE", "GRID_TOP_K")}
    mod.config = lambda: MoEConfig.from_mapping(mod.knobs()).validate()
    return mod


def test_text_from_papermill_is_parsed_to_the_knob_type():
    mod = knob_module()
    applied = parameters.apply_parameters(mod, {"NUM_EXPERTS": "3", "TOP_K": "2", "LR": "0.001",
                                                "EXPERT_SKIP": "true", "SHARED_BASE": "False", "GRID_TOP_K": "[1]"})
    assert (mod.NUM_EXPERTS, mod.TOP_K, mod.LR, mod.EXPERT_SKIP, mod.GRID_TOP_K) == (3, 2, 1e-3, True, [1])
    assert mod.SHARED_BASE is False
    assert applied["EXPERT_SKIP"] is True
    fresh = knob_module()
    applied = parameters.apply_parameters(fresh, {"EXPERT_SKIP": "false"})
    assert fresh.EXPERT_SKIP is False and "EXPERT_SKIP" not in applied  # "false" is False, the default: nothing to set
    # a value equal to the declared default keeps the module's value (a knob edited in moe_booststrap.py)
    parameters.apply_parameters(mod, {"EXPERT_SKIP": "false", "NUM_EXPERTS": 2})
    assert mod.EXPERT_SKIP is True and mod.NUM_EXPERTS == 3


@pytest.mark.parametrize("knob, value, message", [
    ("NUM_EXPERTS", "two", "NUM_EXPERTS='two' is invalid: must be an integer at least 1"),
    ("LR", "fast", "LR='fast' is invalid: must be a number above 0"),
    ("TOP_K", 1.5, "TOP_K=1.5 is invalid"),
    ("GRID_TOP_K", 2, "GRID_TOP_K=2 is invalid: must be a non-empty list"),
    ("EXPERT_SKIP", "maybe", "EXPERT_SKIP='maybe' is invalid: must be True or False"),
])
def test_a_value_of_the_wrong_type_is_named(knob, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parameters.apply_parameters(knob_module(), {knob: value})


def test_parameter_lines_carry_type_default_and_rule():
    lines = parameters.parameter_lines(knob_module())
    assert lines[0] == "NUM_EXPERTS: int = 2  # number of experts [an integer at least 1]"
    assert lines[3] == "EXPERT_SKIP: bool = False  # each expert adds a linear (softmax-regression) path to its MLP " \
                       "[True or False]"
    assert lines[-1].startswith("GRID_TOP_K: list = [1, 2]  # ")


def test_docs_knob_table_is_generated_from_the_configuration_table():
    import moe_booststrap as mb

    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == parameters.with_knob_table(page, mb), "docs/configuration.md is stale: run `make docs`"
    table = parameters.knob_table(mb)
    assert table.count("\n") == len(parameters.module_knobs(mb)) + 2
    assert "| `TOP_K` | int | `1` |" in table and "\\| noisy_topk \\|" in table


def test_with_knob_table_replaces_only_between_the_markers():
    import moe_booststrap as mb

    start, end = parameters.KNOB_TABLE_MARKERS
    text = f"intro\n{start}\nstale\n{end}\noutro\n"
    out = parameters.with_knob_table(text, mb)
    assert out.startswith(f"intro\n{start}\n| knob |") and out.endswith(f"{end}\noutro\n") and "stale" not in out
