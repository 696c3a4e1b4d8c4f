"""One complete run per folder: a run is built in a staging folder and swapped in only when complete; a failed or
interrupted run is kept beside it (manifest, report, error) with the previous run untouched; a live run's lock
refuses a second run and a dead run's lock is taken over. Fake commands stand in for the notebook (fast)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wordle_moe import runfolder

ROOT = Path(__file__).resolve().parent.parent


def fake(status: str = "complete", exit_code: int = 0, files: tuple[str, ...] = ("a.csv",), sleep: float = 0.0,
         notebook: bool = False) -> list[str]:
    """A command writing files, a manifest of ``status`` and (optionally) an executed notebook into {staging}."""
    code = f"""
import json, sys, time
from pathlib import Path
d = Path(sys.argv[1])
for f in {list(files)!r}:
    (d / f).write_text(f)
json.dump({{"status": "running", "sections": [{{"name": "grid_search", "status": "running"}}]}},
          open(d / "run_manifest.json", "w"))
if {notebook!r}:
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# partial run")])
    nbformat.write(nb, str(d / "executed.ipynb"))
time.sleep({sleep})
json.dump({{"status": {status!r}, "sections": [{{"name": "grid_search", "status": "ok"}}]}},
          open(d / "run_manifest.json", "w"))
sys.exit({exit_code})
"""
    return [sys.executable, "-c", code, "{staging}"]


def run(out: Path, command: list[str], **kw) -> tuple[int, list[str]]:
    messages: list[str] = []
    return runfolder.run(out, command, log=messages.append, **kw), messages


def test_a_complete_run_is_swapped_in_and_replaces_the_previous(tmp_path):
    out = tmp_path / "out"
    assert run(out, fake(files=("a.csv", "b.csv")))[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv", "run_manifest.json"]
    code, messages = run(out, fake(files=("c.csv",)))
    assert code == 0 and messages == [f"complete run in {out.resolve()}"]
    assert sorted(p.name for p in out.iterdir()) == ["c.csv", "run_manifest.json"]  # exactly one run's files
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["run_folder"]["exit_code"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging, lock, previous or failed left


def test_a_failed_run_leaves_the_previous_run_untouched(tmp_path):
    out = tmp_path / "out"
    run(out, fake(files=("a.csv",)))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, messages = run(out, fake(exit_code=3, files=("half.csv",), notebook=True),
                         html=("executed.ipynb", "report.html"))
    assert code == 3
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    failed = tmp_path / "out.failed"
    manifest = json.loads((failed / "run_manifest.json").read_text())
    assert manifest["status"] == "failed" and "exit code 3" in manifest["error"]
    assert (failed / "error.txt").read_text().startswith("the command failed with exit code 3")
    assert (failed / "half.csv").exists() and (failed / "report.html").stat().st_size > 1000
    assert "previous complete run is untouched" in messages[-1]
    # a command that exits 0 without marking its manifest complete is no complete run either
    code, _ = run(out, fake(status="running"))
    assert code == 1 and {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert "says 'running', not 'complete'" in json.loads((failed / "run_manifest.json").read_text())["error"]
    # the next complete run clears the failed one
    assert run(out, fake())[0] == 0 and not failed.exists()


def test_a_live_run_holds_the_folder(tmp_path):
    out = tmp_path / "out"
    lock = runfolder.sibling(out.resolve(), runfolder.LOCK)
    lock.write_text(json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname(),
                                "started_utc": "2026-12-07T00:00:00+00:00"}))
    with pytest.raises(runfolder.RunFolderBusy, match=f"held by a live run \\(PID {os.getpid()}"):
        run(out, fake())
    assert not out.exists() and lock.exists()  # refused before touching anything
    res = subprocess.run([sys.executable, "-m", "wordle_moe.runfolder", str(out), "--", *fake()],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 75 and f"PID {os.getpid()}" in res.stderr and "Traceback" not in res.stderr


def test_a_stale_lock_is_taken_over_and_its_partial_run_kept(tmp_path):
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = runfolder.sibling(out.resolve(), runfolder.LOCK)
    lock.write_text(json.dumps({"pid": dead.pid, "host": __import__("socket").gethostname()}))
    leftover = runfolder.sibling(out.resolve(), runfolder.STAGING)
    leftover.mkdir()
    (leftover / "run_manifest.json").write_text(json.dumps({"status": "running"}))
    code, messages = run(out, fake())
    assert code == 0 and any(f"stale lock of a dead run (PID {dead.pid})" in m for m in messages)
    assert (out / "a.csv").exists() and not lock.exists()
    # the dead run's outputs were kept as the failed run until this complete run superseded them
    assert not (tmp_path / "out.failed").exists()


def test_sigterm_is_recorded_as_interrupted(tmp_path):
    out = tmp_path / "out"
    run(out, fake(files=("a.csv",)))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "wordle_moe.runfolder", str(out), "--",
                             *fake(sleep=30, files=("partial.csv",))], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / "out.staging"
    deadline = time.time() + 20
    while not (staging / "partial.csv").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    failed = tmp_path / "out.failed"
    manifest = json.loads((failed / "run_manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "SIGTERM" in manifest["error"]
    assert manifest["sections"][0]["status"] == "interrupted"  # the section it was in
    assert (failed / "partial.csv").exists() and "SIGTERM" in (failed / "error.txt").read_text()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not runfolder.sibling(out, runfolder.LOCK).exists() and "did not complete" in err


def test_a_swap_stopped_midway_is_repaired(tmp_path):
    out = (tmp_path / "out").resolve()
    prev = runfolder.sibling(out, runfolder.PREVIOUS)
    prev.mkdir()
    (prev / "a.csv").write_text("old")
    assert runfolder.recover(out) and (out / "a.csv").read_text() == "old" and not prev.exists()
