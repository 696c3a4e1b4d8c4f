"""One complete run per output folder: a lock, a staging folder, and a swap only when the run is complete.

``make run`` runs the notebook through this wrapper::

    python -m wordle_moe.runfolder moe_bootstrap_output -- python -m papermill moe_with_bootstrap.ipynb \
        {staging}/moe_with_bootstrap.executed.ipynb -p OUTPUT_DIR {staging} --cwd .

- **Lock.** ``moe_bootstrap_output.lock`` (beside the folder) names the PID, host and start time of the run that
  holds the folder. A second run into the same folder is refused while that process lives; a lock whose process
  is gone (killed, machine restarted) is stale: it is taken over, and the dead run's staging folder is kept as
  the failed run.
- **Staging.** The command writes into ``moe_bootstrap_output.staging/`` (``{staging}`` in the command).
- **Swap.** When the command succeeds and its ``run_manifest.json`` says ``complete``, the staging folder is renamed
  onto the output folder (the previous run is moved aside first and deleted after), so the output folder always
  holds exactly one complete run and the manifest that describes it.
- **Failure.** Otherwise (the command fails, or SIGINT/SIGTERM interrupts it: recorded as ``interrupted``) the
  staging folder becomes ``moe_bootstrap_output.failed/`` with its manifest (status ``failed`` or
  ``interrupted``), the HTML report of how far it got and ``error.txt``; the previous complete run is untouched.

The HTML report (``--html EXECUTED HTML``, names inside the staging folder) is built in both cases.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .io import write_json, write_text
from .manifest import MANIFEST_NAME

STAGING, FAILED, PREVIOUS, LOCK = ".staging", ".failed", ".previous", ".lock"
ERROR_FILE = "error.txt"
STOP_GRACE_SECONDS = 20.0  # after SIGINT/SIGTERM the command gets this long to stop before it is killed


class RunFolderBusy(RuntimeError):
    """Another live run holds the output folder."""


def sibling(output_dir: Path, suffix: str) -> Path:
    """``moe_bootstrap_output`` + suffix, beside it (staging, failed, previous, lock)."""
    return output_dir.with_name(output_dir.name + suffix)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# --------------------------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------------------------
def read_lock(lock: Path) -> dict[str, Any]:
    """The lock's record ({} when unreadable: a half-written lock counts as stale)."""
    try:
        rec = json.loads(lock.read_text())
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        return {}


def acquire(output_dir: Path, pid: int | None = None) -> tuple[Path, dict[str, Any] | None]:
    """Take the folder's lock for ``pid`` (default: this process); returns (lock path, the stale lock taken over
    or None). RunFolderBusy when a live run holds it."""
    lock = sibling(output_dir, LOCK)
    lock.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid or os.getpid(), "host": socket.gethostname(), "started_utc": _now(),
              "output_dir": str(output_dir)}
    stale = None
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_lock(lock)
            same_host = held.get("host", record["host"]) == record["host"]
            if held and (not same_host or pid_alive(int(held.get("pid", -1)))):
                where = "" if same_host else f" on host {held.get('host')}"
                raise RunFolderBusy(
                    f"{output_dir} is held by a live run (PID {held.get('pid')}{where}, started "
                    f"{held.get('started_utc', '?')}; lock {lock}): wait for it to finish, or give another "
                    f"OUTPUT_DIR (make run OUTPUT_DIR=...)" + ("" if same_host else
                                                               "; if no run is going on there, delete the lock")
                ) from None
            stale = held
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        return lock, stale
    raise RunFolderBusy(f"{lock}: could not take the lock (another run is starting at the same moment)")


def release(lock: Path) -> None:
    """Remove the lock if this process holds it."""
    if read_lock(lock).get("pid") == os.getpid():
        lock.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Staging, swap, failure
# --------------------------------------------------------------------------------------------
def recover(output_dir: Path) -> list[str]:
    """Repair what a run killed mid-swap left: the previous run moved aside but no new one in place."""
    prev = sibling(output_dir, PREVIOUS)
    notes = []
    if prev.exists():
        if output_dir.exists():
            shutil.rmtree(prev)
        else:
            os.replace(prev, output_dir)
            notes.append(f"restored {output_dir} from {prev} (a run was stopped in the middle of its swap)")
    return notes


def start_staging(output_dir: Path, stale: dict[str, Any] | None) -> tuple[Path, list[str]]:
    """A fresh, empty staging folder; a dead run's leftover staging is kept as the failed run."""
    staging = sibling(output_dir, STAGING)
    notes = recover(output_dir)
    if staging.exists():
        who = f"PID {stale.get('pid')}" if stale else "an earlier run"
        mark_failed(staging, "interrupted", f"the run's process died without finishing ({who}); found by the next "
                                            f"run at {_now()}")
        notes.append(f"a stale lock of a dead run ({who}) was taken over; its partial outputs are in "
                     f"{move_to_failed(output_dir, staging)}")
    elif stale is not None:
        notes.append(f"a stale lock of a dead run (PID {stale.get('pid')}) was taken over")
    staging.mkdir(parents=True)
    return staging, notes


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def mark_failed(folder: Path, status: str, error: str, extra: dict[str, Any] | None = None) -> None:
    """Set the manifest's status (failed | interrupted) and the error, and write error.txt beside it."""
    manifest = read_manifest(folder)
    manifest.update(status=status, error=error, **(extra or {}))
    for s in manifest.get("sections", []):
        if isinstance(s, dict) and s.get("status") == "running":
            s["status"] = status  # the section the run was in when it stopped
    write_json(manifest, folder / MANIFEST_NAME)
    write_text(error.rstrip() + "\n", folder / ERROR_FILE)


def move_to_failed(output_dir: Path, staging: Path) -> Path:
    """Rename the staging folder to ``<output>.failed`` (replacing an older failed run)."""
    failed = sibling(output_dir, FAILED)
    if failed.exists():
        shutil.rmtree(failed)
    os.replace(staging, failed)
    return failed


def swap_in(output_dir: Path, staging: Path) -> None:
    """Put the complete staging folder in place of the output folder (two renames; ``recover`` repairs a stop
    between them), then delete the previous run and any failed run it superseded."""
    prev = sibling(output_dir, PREVIOUS)
    if prev.exists():
        shutil.rmtree(prev)
    if output_dir.exists():
        os.replace(output_dir, prev)
    os.replace(staging, output_dir)
    if prev.exists():
        shutil.rmtree(prev)
    failed = sibling(output_dir, FAILED)
    if failed.exists():
        shutil.rmtree(failed)


# --------------------------------------------------------------------------------------------
# Running a command in the staging folder
# --------------------------------------------------------------------------------------------
class _Stop:
    """Records SIGINT/SIGTERM and forwards them to the command's process group."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.child: subprocess.Popen | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.signal = self.signal or signum
        if self.child is not None and self.child.poll() is None:
            try:
                os.killpg(self.child.pid, signum)
            except ProcessLookupError:
                pass


def _wait(child: subprocess.Popen, stop: _Stop) -> int:
    while True:
        try:
            code = child.wait(timeout=0.2)
            return code
        except subprocess.TimeoutExpired:
            if stop.signal is not None:
                try:
                    return child.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    return child.wait()


def build_report(staging: Path, html: Sequence[str] | None) -> str | None:
    """The HTML report of the executed notebook (how far the run got); an error message when it cannot be built."""
    if not html:
        return None
    executed, page = staging / html[0], staging / html[1]
    if not executed.exists():
        return f"no executed notebook {executed.name}: no HTML report"
    res = subprocess.run([sys.executable, "-m", "wordle_moe.html_report", str(executed), str(page)],
                         capture_output=True, text=True)
    return None if res.returncode == 0 else f"HTML report failed: {res.stderr.strip().splitlines()[-1:]}"


def run(output_dir: str | os.PathLike, command: Sequence[str], html: Sequence[str] | None = None,
        log=print) -> int:
    """Run ``command`` ({staging} replaced by the staging folder) under the folder's lock; swap its outputs in
    when it is complete, else keep them as the failed run. Returns the exit code (the command's, 1 when it said
    0 without a complete manifest, 130/143 when interrupted)."""
    output_dir = Path(output_dir).resolve()
    lock, stale = acquire(output_dir)
    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        staging, notes = start_staging(output_dir, stale)
        for n in notes:
            log(f"note: {n}")
        argv = [a.replace("{staging}", str(staging)) for a in command]
        started = time.time()
        code = None
        start_error = None
        if stop.signal is None:
            try:
                stop.child = subprocess.Popen(argv, start_new_session=True)  # its own group: signals reach it via us
                code = _wait(stop.child, stop)
            except OSError as exc:
                start_error, code = f"cannot start the command {argv[0]!r}: {exc.strerror or exc}", 127
        report_error = build_report(staging, html)
        record = {"run_folder": {"output_dir": str(output_dir), "pid": os.getpid(), "command": argv, "exit_code": code,
                                 "wall_seconds": round(time.time() - started, 1), "finished_utc": _now()}}
        status = read_manifest(staging).get("status")
        if stop.signal is None and code == 0 and status == "complete":
            manifest = read_manifest(staging)
            manifest.update(record)
            write_json(manifest, staging / MANIFEST_NAME)
            swap_in(output_dir, staging)
            log(f"complete run in {output_dir}")
            return 0
        if stop.signal is not None:
            name = signal.Signals(stop.signal).name
            mark_failed(staging, "interrupted", f"interrupted by {name} (the command stopped with exit code {code})",
                        record)
            code = 128 + stop.signal
        else:
            why = start_error or (f"the command failed with exit code {code}" if code else
                   f"the command exited 0 but its {MANIFEST_NAME} says {status!r}, not 'complete'")
            error = read_manifest(staging).get("error") or next(
                (f"section {s.get('name')}: {s.get('error')}" for s in read_manifest(staging).get("sections", [])
                 if isinstance(s, dict) and s.get("error")), None)
            mark_failed(staging, "failed", why + (f": {error}" if error else ""), record)
            code = code or 1
        if report_error:
            write_text(report_error + "\n", staging / "report_error.txt")
        failed = move_to_failed(output_dir, staging)
        kept = "the previous complete run is untouched in " + str(output_dir) if output_dir.exists() else \
            "there is no earlier complete run"
        log(f"error: the run did not complete ({read_manifest(failed).get('error')}); its manifest, report and "
            f"error are in {failed}; {kept}")
        return code
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        release(lock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wordle_moe.runfolder", description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", help="the output folder (one complete run)")
    parser.add_argument("--html", nargs=2, metavar=("EXECUTED", "HTML"), default=None,
                        help="build the HTML report of EXECUTED into HTML (names inside the run's folder)")
    parser.usage = "%(prog)s OUTPUT_DIR [--html EXECUTED HTML] -- COMMAND...  ({staging} = the staging folder)"
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command after --")
    cut = argv.index("--")
    args, command = parser.parse_args(argv[:cut]), argv[cut + 1:]
    log = lambda msg: print(f"runfolder: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        return run(args.output_dir, command, args.html, log=log)
    except RunFolderBusy as exc:
        log(f"error: {exc}")
        return 75  # EX_TEMPFAIL: try again later


if __name__ == "__main__":
    sys.exit(main())
