"""The notebook's parameters: the companion module's knobs plus the notebook's own switches, checked and applied.

Papermill injects ``-p NAME VALUE`` into the parameters cell; ``apply_parameters`` parses what arrives as text
(lists, booleans), applies the QUICK caps, sets the knobs on the module and validates them together, so a bad
value stops the run before any training with a ``ConfigError`` naming the knob.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from wordle_moe.config import ConfigError, check_value, field_default, field_type, knob_fields, parse_value, rule

# The notebook's own switches; every other parameter is a knob of moe_booststrap.py (see module_knobs).
NOTEBOOK_SWITCHES = ("QUICK", "RUN_GRID_SEARCH", "OUTPUT_DIR", "FAIL_AT_SECTION", "N_JOBS")
# QUICK mode: a small run for tests and smoke checks (caps, never raises a value the user set lower)
QUICK_CAPS = {"MAX_EPOCHS": 60, "PATIENCE": 15, "BOOTSTRAP_B": 6, "HIDDEN_SIZE": 32,
              "PENALTY_CV": 0}   # QUICK: ridge strengths as set, no inner CV (tests/test_training.py covers it)


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
    known = set(notebook_parameters(module))
    unknown = sorted(set(names) - known)
    if unknown:
        import difflib

        close = {u: difflib.get_close_matches(u.upper(), known, n=1) for u in unknown}
        hints = "; ".join(f"{u} (did you mean {c[0]}?)" for u, c in close.items() if c)
        raise ConfigError(f"unknown notebook parameter(s) {unknown}: not a knob of moe_booststrap.py nor a notebook "
                          f"switch{'; ' + hints if hints else ''}. Known: {sorted(known)}")


def parse_switches(params: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook switches QUICK and RUN_GRID_SEARCH as booleans (``-p QUICK false`` is False, never a QUICK run);
    ConfigError naming the switch for anything else."""
    out = {}
    for name in ("QUICK", "RUN_GRID_SEARCH"):
        value = parse_value(params.get(name, False), bool)
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r} is invalid: must be True or False (or true/false, 1/0)")
        out[name] = value
    return out


def apply_parameters(module: Any, params: Mapping[str, Any], quick: bool = False) -> dict[str, Any]:
    """Set the module knobs that ``params`` change on the module (QUICK caps applied), validate, return them.

    Text from papermill is parsed to the knob's type (``-p LR 0.01``, ``-p EXPERT_SKIP false``, ``-p GRID_TOP_K
    "[1, 2]"``). A parameter left at its default (the parameters cell's value, which is the knob's declared default)
    or None keeps the module's value, so knobs edited in moe_booststrap.py are what the notebook runs.
    Raises ConfigError naming the knob before any training (a number given as text that is no number, a list
    given as a number, TOP_K > NUM_EXPERTS, a negative coefficient, an unknown router, a malformed HOLDOUT_WORD /
    HOLDOUT_DATE, ...).
    """
    fields = knob_fields()
    applied: dict[str, Any] = {}
    for knob in module_knobs(module):
        value, f = params.get(knob), fields.get(knob)
        if value is None:
            continue  # None: keep the module's value
        if f is not None:
            value = parse_value(value, field_type(f))
            check_value(f, value)
            if type(value) is type(field_default(f)) and value == field_default(f):
                continue  # the declared default: keep the module's value (edited there, or set at run time)
        applied[knob] = value
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


def parameter_lines(module: Any) -> list[str]:
    """The knob lines of the notebook's parameters cell: ``NAME: type = <declared default>  # <help> [<rule>]``, in
    the module's order. The cell holds these literals so ``papermill --help-notebook`` shows each type, default and
    meaning (no "=" in a comment: papermill would drop the line); tests/test_notebook.py keeps the cell equal to them."""
    fields = knob_fields()
    lines = []
    for k in module_knobs(module):
        f = fields[k]
        lines.append(f"{k}: {field_type(f).__name__} = {_literal(field_default(f))}  # {parameter_help(f)}")
    return lines


def knob_table(module: Any) -> str:
    """The Markdown table of every knob of ``module`` (name, type, default, rule, meaning), generated from the field
    metadata: docs/configuration.md holds it between ``<!-- knobs -->`` markers and a test keeps the two equal."""
    fields = knob_fields()
    rows = ["| knob | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for k in module_knobs(module):
        f = fields[k]
        cells = [f"`{k}`", field_type(f).__name__, f"`{_literal(field_default(f))}`", rule(f), f.metadata["help"]]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


KNOB_TABLE_MARKERS = ("<!-- knobs: generated by `make docs` from the configuration table -->", "<!-- /knobs -->")


def with_knob_table(text: str, module: Any) -> str:
    """``text`` (a Markdown page) with the part between KNOB_TABLE_MARKERS replaced by ``knob_table(module)``."""
    start, end = KNOB_TABLE_MARKERS
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{knob_table(module)}{end}{tail}"


def parameter_help(f: Any) -> str:
    """A knob's one-line help with its rule, e.g. "number of experts [an integer >= 1]"."""
    return f"{f.metadata['help']} [{rule(f)}]"


def _literal(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


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


def run_knobs(manifest: Mapping[str, Any], module: Any, where: str = "the run manifest") -> dict[str, Any]:
    """The knob values a run used, read from its manifest and checked: {KNOB: value} for every knob of ``module``.

    Source: the manifest's ``notes.knobs`` (every knob in force, recorded by the notebook), else ``notes.config``
    (the validated MoEConfig) with the RunKnobs from ``parameters`` (older manifests). Raises ConfigError naming
    every entry that is no knob, has an invalid value, or is a training setting this module has no knob for
    (at a non-default value: applying the rest would silently give another configuration).
    """
    import dataclasses

    from wordle_moe.config import MoEConfig

    notes = manifest.get("notes") or {}
    if isinstance(notes.get("knobs"), Mapping):
        values = dict(notes["knobs"])
    elif isinstance(notes.get("config"), Mapping):
        params = manifest.get("parameters") or {}
        values = {k: v for k, v in params.items() if k not in NOTEBOOK_SWITCHES}
        values.update({k.upper(): v for k, v in notes["config"].items()})
    else:
        raise ConfigError(f"{where} records no configuration (no notes.knobs nor notes.config): is it a "
                          "run_manifest.json written by the notebook?")
    knobs, fields = set(module_knobs(module)), knob_fields()
    defaults = {f.name.upper(): field_default(f) for f in dataclasses.fields(MoEConfig)}
    problems, out = [], {}
    for name, value in values.items():
        if name not in knobs:
            if name in defaults and value == defaults[name]:
                continue  # a training setting without a module knob, at its default: nothing to apply
            why = "no knob of moe_booststrap.py sets it" if name in defaults else "unknown"
            problems.append(f"{name}={value!r} ({why})")
            continue
        try:
            parsed = parse_value(value, field_type(fields[name])) if name in fields else value
            if name in fields:
                check_value(fields[name], parsed)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        out[name] = parsed
    if problems:
        raise ConfigError(f"{where}: cannot apply " + "; ".join(problems))
    return out
