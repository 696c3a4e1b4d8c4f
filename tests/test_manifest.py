"""Tests of run_manifest.json: sections timed, written after each section, failures recorded."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from wordle_moe.manifest import RunManifest, file_sha256, package_versions


def read(path):
    return json.loads(path.read_text())


def test_manifest_records_parameters_sections_and_hashes(tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(b"wordle" * 1000)
    m = RunManifest(tmp_path / "out", parameters={"NUM_EXPERTS": 3, "arr": np.arange(3), "path": tmp_path},
                    seed=7)
    first = read(m.path)
    assert first["status"] == "running" and first["seed"] == 7
    assert first["parameters"]["NUM_EXPERTS"] == 3 and first["parameters"]["arr"] == [0, 1, 2]
    assert first["packages"]["numpy"] == np.__version__
    digest = m.add_data_file(data)
    assert digest == hashlib.sha256(b"wordle" * 1000).hexdigest() == file_sha256(data)
    with m.section("data") as entry:
        on_disk = read(m.path)["sections"][-1]
        assert on_disk["status"] == "running" and entry["name"] == "data"
    after = read(m.path)
    assert after["sections"][0]["status"] == "ok" and after["sections"][0]["seconds"] >= 0
    assert after["data_files"]["data.bin"]["sha256"] == digest
    m.note("chosen", {"k": np.float64(0.5)})
    m.add_outputs([tmp_path / "out" / "b.csv", "a.png"])
    m.finish()
    final = read(m.path)
    assert final["status"] == "complete" and final["notes"]["chosen"] == {"k": 0.5}
    assert final["outputs"] == ["a.png", "b.csv"] and m.timings == {"data": final["sections"][0]["seconds"]}


def test_failed_section_is_written_before_the_error_propagates(tmp_path):
    m = RunManifest(tmp_path, seed=0)
    with m.section("ok_part"):
        pass
    with pytest.raises(ZeroDivisionError):
        with m.section("broken"):
            raise ZeroDivisionError("a failing section")
    state = read(m.path)
    assert [s["status"] for s in state["sections"]] == ["ok", "failed"]
    assert state["status"] == "failed" and "ZeroDivisionError" in state["sections"][1]["error"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_fail_at_hook_raises_on_entry(tmp_path):
    m = RunManifest(tmp_path, fail_at="grid_search")
    ran = []
    with pytest.raises(RuntimeError, match="FAIL_AT_SECTION='grid_search'"):
        with m.section("grid_search"):
            ran.append(True)
    assert not ran and read(m.path)["sections"][0]["status"] == "failed"


def test_package_versions_marks_missing():
    v = package_versions(("numpy", "surely-not-a-package-xyz"))
    assert v["numpy"] == np.__version__ and v["surely-not-a-package-xyz"] is None
