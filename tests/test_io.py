"""Atomic writers: a failed write leaves the previous file intact and no temporary files behind."""
import pandas as pd
import pytest

from wordle_moe.io import atomic_path, write_csv, write_json


def test_write_csv_round_trips(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": [0.1, 0.2]})
    path = write_csv(df, tmp_path / "x.csv")
    pd.testing.assert_frame_equal(pd.read_csv(path), df)


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "out.csv"
    write_csv(pd.DataFrame({"a": [1]}), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_json_is_byte_stable(tmp_path):
    a = write_json({"b": 1, "a": [1, 2]}, tmp_path / "a.json").read_bytes()
    b = write_json({"a": [1, 2], "b": 1}, tmp_path / "b.json").read_bytes()
    assert a == b


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_process_umask(tmp_path, umask, mode):
    """Outputs are readable as a plain open() would leave them, not 0600 like the temporary file."""
    import os

    old = os.umask(umask)
    try:
        csv = write_csv(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
        js = write_json({"a": 1}, tmp_path / "x.json")
    finally:
        os.umask(old)
    assert (csv.stat().st_mode & 0o777, js.stat().st_mode & 0o777) == (mode, mode)


def test_build_lock_excludes_other_processes_while_a_cache_is_built(tmp_path):
    """A second process cannot take the cache's lock while the first holds it (then it can)."""
    import subprocess
    import sys

    from wordle_moe.io import build_lock

    cache = tmp_path / "sub" / "features.csv"
    probe = ("import sys; from filelock import FileLock, Timeout\n"
             "try:\n    FileLock(sys.argv[1], timeout=0.2).acquire()\nexcept Timeout:\n    sys.exit(3)\n")
    lock = str(tmp_path / "sub" / ".features.csv.lock")
    with build_lock(cache):
        assert (tmp_path / "sub").is_dir() and not cache.exists()
        assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 0
