"""The notebook's parameters: the companion module's knobs plus the notebook's own switches, checked and applied.

Papermill injects ``-p NAME VALUE`` into the parameters cell; ``apply_parameters`` parses what arrives as text
(lists, booleans), applies the QUICK caps, sets the knobs on the module and validates them together, so a bad
value stops the run before any training with a ``ConfigError`` naming the knob.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

# The notebook's own switches; every other parameter is a knob of moe_booststrap.py (see module_knobs).
NOTEBOOK_SWITCHES = ("QUICK", "RUN_GRID_SEARCH", "OUTPUT_DIR", "FAIL_AT_SECTION")
# QUICK mode: a small run for tests and smoke checks (caps, never raises a value the user set lower)
QUICK_CAPS = {"MAX_EPOCHS": 60, "PATIENCE": 15, "BOOTSTRAP_B": 6, "HIDDEN_SIZE": 32}

def module_knobs(module: Any) -> tuple[str, ...]:
    """Every upper-case knob of the companion module, in file order (read from the module, never hand-listed)."""
    names = module.knobs() if hasattr(module, "knobs") else vars(module)
    return tuple(n for n in names if n.isupper() and not n.startswith("_"))


def notebook_parameters(module: Any) -> tuple[str, ...]:
    """The names the notebook's parameters cell defines: every module knob plus the notebook switches."""
    return module_knobs(module) + NOTEBOOK_SWITCHES


def check_parameter_names(names: Iterable[str], module: Any) -> None:
    """Raise ConfigError naming any injected name that is neither a module knob nor a notebook switch.

    Papermill only warns about an unknown ``-p NAME`` and runs on with the defaults; a misspelt knob would
    silently change nothing, so the notebook stops instead.
    """
    from wordle_moe.config import ConfigError

    known = set(notebook_parameters(module))
    unknown = sorted(set(names) - known)
    if unknown:
        import difflib

        close = {u: difflib.get_close_matches(u.upper(), known, n=1) for u in unknown}
        hints = "; ".join(f"{u} (did you mean {c[0]}?)" for u, c in close.items() if c)
        raise ConfigError(f"unknown notebook parameter(s) {unknown}: not a knob of moe_booststrap.py nor a notebook "
                          f"switch{'; ' + hints if hints else ''}. Known: {sorted(known)}")


def _coerce(knob: str, value: Any, current: Any) -> Any:
    """A papermill string for a list knob (``-p GRID_TOP_K "[1, 2]"``) parsed as a Python literal."""
    import ast

    from wordle_moe.config import ConfigError

    if isinstance(current, (list, tuple)) and isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ConfigError(f"{knob}={value!r} is invalid: give a list such as [1, 2]") from None
    if isinstance(current, (list, tuple)) and not (isinstance(value, (list, tuple)) and len(value) > 0):
        raise ConfigError(f"{knob}={value!r} is invalid: must be a non-empty list")
    return list(value) if isinstance(value, tuple) else value


def apply_parameters(module: Any, params: Mapping[str, Any], quick: bool = False) -> dict[str, Any]:
    """Set every module knob in ``params`` that is not None on the module (QUICK caps applied), validate, return them.

    Raises ConfigError naming the knob before any training (TOP_K > NUM_EXPERTS, negative coefficient,
    unknown router, a grid that is not a list, ...), and for a malformed HOLDOUT_WORD / HOLDOUT_DATE.
    """
    from wordle_moe.config import ConfigError

    knobs = module_knobs(module)
    applied = {k: _coerce(k, params[k], getattr(module, k, None)) for k in knobs
               if params.get(k) is not None}  # None: keep the module's value
    if quick:
        for knob, cap in QUICK_CAPS.items():
            value = applied.get(knob, getattr(module, knob, None))
            if isinstance(value, (int, float)):
                applied[knob] = min(value, cap)
    word = str(applied.get("HOLDOUT_WORD", getattr(module, "HOLDOUT_WORD", "eerie"))).strip().lower()
    if len(word) != 5 or not word.isalpha():
        raise ConfigError(f"HOLDOUT_WORD={word!r} is invalid: must be a five-letter word")
    applied["HOLDOUT_WORD"] = word
    try:
        pd.Timestamp(applied.get("HOLDOUT_DATE", getattr(module, "HOLDOUT_DATE", None)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"HOLDOUT_DATE={applied.get('HOLDOUT_DATE')!r} is invalid: {exc}") from None
    for knob, value in applied.items():
        setattr(module, knob, value)
    module.config()  # validates every knob together; the message names the offending knob
    return applied


def grid_for_run(module: Any, full: bool) -> dict[str, list]:
    """The GRID_* grids of the module when ``full``; otherwise a real two-configuration grid around the knobs
    (TOP_K 1 vs 2, or two hidden sizes for a single expert) so grid_search_results.csv is never a stub."""
    if full:
        return {"num_experts": list(module.GRID_NUM_EXPERTS), "top_k": list(module.GRID_TOP_K),
                "hidden_size": list(module.GRID_HIDDEN_SIZE), "aux_loss_weight": list(module.GRID_AUX_COEF),
                "expert_diversity_coef": list(module.GRID_DIVERSITY_COEF)}
    if module.NUM_EXPERTS >= 2:
        return {"num_experts": [module.NUM_EXPERTS], "top_k": sorted({1, 2, module.TOP_K} & {1, 2})}
    return {"num_experts": [1], "hidden_size": sorted({module.HIDDEN_SIZE, 2 * module.HIDDEN_SIZE})}
