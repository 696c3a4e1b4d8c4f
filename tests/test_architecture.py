"""The import-layer contract of pyproject.toml covers every module, so a new module cannot slip past `make lint`."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_engine_and_analysis_module_sits_in_one_layer():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    listed = [name.strip() for layer in layers for name in layer.replace("|", ":").split(":")]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    modules = {f"wordle_moe.{p.stem}" for p in (ROOT / "wordle_moe").glob("*.py") if p.stem != "__init__"}
    covered = {m for m in modules if m in listed} | ({"analysis"} if "analysis" in listed else set())
    assert modules <= covered, f"add to a layer in pyproject.toml: {sorted(modules - covered)}"
    assert "analysis" in listed


def test_the_facade_is_forbidden_to_the_engine():
    forbidden = next(c for c in _contracts() if c["type"] == "forbidden")
    assert forbidden["forbidden_modules"] == ["moe_booststrap"]
    assert set(forbidden["source_modules"]) == {"wordle_moe", "analysis"}
