"""run_manifest.json: what a run used and how long each part took, rewritten after every section.

The file is written atomically after each section (and when a section fails), so a crash midway
still leaves a manifest that says which sections finished, how long they took and what failed.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from wordle_moe.io import write_json

MANIFEST_NAME = "run_manifest.json"
DEFAULT_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "torch", "matplotlib", "seaborn", "wordcloud",
                    "wordfreq", "papermill", "nbformat", "openpyxl", "tqdm")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (streams, so large files are fine)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def package_versions(packages: tuple[str, ...] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _jsonable(value: Any) -> Any:
    """Plain JSON types for numpy scalars/arrays, paths and anything else (via str)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class RunManifest:
    """Parameters, data hashes, package versions, seed and per-section timings of one run."""

    def __init__(self, output_dir: str | os.PathLike, parameters: Mapping[str, Any] | None = None,
                 seed: int | None = None, name: str = MANIFEST_NAME, fail_at: str | None = None):
        self.path = Path(output_dir) / name
        self.fail_at = fail_at  # test hook: the section of this name raises on entry (checks partial runs)
        self.started = time.perf_counter()
        self.data: dict[str, Any] = {
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": "running",
            "seed": seed,
            "parameters": _jsonable(dict(parameters or {})),
            "data_files": {},
            "packages": package_versions(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "sections": [],
            "outputs": [],
            "notes": {},
            "total_seconds": 0.0,
        }
        self.write()

    def add_data_file(self, path: str | os.PathLike, label: str | None = None) -> str:
        """Record a data file's sha256 (and size) under ``label`` (default: its file name); returns the hash."""
        p = Path(path)
        digest = file_sha256(p)
        self.data["data_files"][label or p.name] = {"path": str(p), "sha256": digest, "bytes": p.stat().st_size}
        self.write()
        return digest

    def note(self, key: str, value: Any) -> None:
        """Record any extra fact about the run (e.g. the chosen grid configuration)."""
        self.data["notes"][key] = _jsonable(value)
        self.write()

    def add_outputs(self, paths: Any) -> None:
        """Record output files written so far (names relative to the manifest's folder)."""
        names = set(self.data["outputs"])
        for p in paths:
            names.add(Path(p).name)
        self.data["outputs"] = sorted(names)
        self.write()

    @contextmanager
    def section(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a notebook section; its entry (status ok/failed, seconds, error) is written when it ends."""
        entry: dict[str, Any] = {"name": name, "status": "running", "seconds": None}
        self.data["sections"].append(entry)
        self.write()
        t0 = time.perf_counter()
        try:
            if self.fail_at is not None and name == self.fail_at:
                raise RuntimeError(f"FAIL_AT_SECTION={name!r}: failing on purpose (test hook)")
            yield entry
        except BaseException as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            self.data["status"] = "failed"
            raise
        else:
            entry["status"] = "ok"
        finally:
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            self.write()

    def finish(self) -> None:
        """Mark the run complete."""
        if self.data["status"] == "running":
            self.data["status"] = "complete"
        self.write()

    @property
    def timings(self) -> dict[str, float | None]:
        return {s["name"]: s["seconds"] for s in self.data["sections"]}

    def write(self) -> Path:
        """Rewrite the manifest atomically."""
        self.data["total_seconds"] = round(time.perf_counter() - self.started, 3)
        return write_json(self.data, self.path)
