"""Every ordinary mistake on the command line and every damaged or unsupported saved model ends in one line
``wordle-moe: error: …`` naming the file, word or option and the fix, with exit code 2 (usage) or 1 (otherwise),
and no traceback. The damaged folders are built from a tiny untrained model saved here (no `make run` needed)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wordle_moe import cli
from wordle_moe.config import MoEConfig
from wordle_moe.model import MoEModel
from wordle_moe.persistence import META_FILE, WEIGHTS_FILE, save_model

TINY = MoEConfig(hidden_size=4, max_epochs=2, patience=1)
NAMES = [f"x{i}" for i in range(5)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A tiny saved ensemble and damaged copies of it, plus bad words files."""
    root = tmp_path_factory.mktemp("damaged")
    X = np.random.default_rng(0).normal(size=(20, len(NAMES)))
    model = MoEModel(len(NAMES), TINY, replicas=2).fit_standardizer(X)
    good = save_model(root / "good", model, feature_names=NAMES, date_range=("2022-01-07", "2022-12-31"),
                      extra={"populations": ["mcm"]})
    out = {"good": good}

    def copy(name: str) -> Path:
        dst = root / name
        shutil.copytree(good, dst)
        out[name] = dst
        return dst

    weights = (good / WEIGHTS_FILE).read_bytes()
    meta = json.loads((good / META_FILE).read_text())
    (copy("truncated") / WEIGHTS_FILE).write_bytes(weights[: len(weights) // 3])
    (copy("tiny_weights") / WEIGHTS_FILE).write_bytes(weights[:5])
    (copy("random") / WEIGHTS_FILE).write_bytes(np.random.default_rng(1).bytes(4000))
    (copy("empty_weights") / WEIGHTS_FILE).write_bytes(b"")
    (copy("broken_json") / META_FILE).write_text('{"format_version": 1, "kind": ')
    (copy("json_list") / META_FILE).write_text("[1, 2]")
    (copy("latin1_json") / META_FILE).write_bytes(b'{"kind": "caf\xe9"}')
    for name, change in (("no_kind", lambda m: m.pop("kind")),
                         ("unknown_kind", lambda m: m.update(kind="pickle")),
                         ("old_format", lambda m: m.update(format_version=0)),
                         ("no_features", lambda m: m.pop("feature_names")),
                         ("no_config", lambda m: m.pop("config")),
                         ("bad_knob_value", lambda m: m["config"].update(top_k=9)),
                         ("unknown_knob", lambda m: m["config"].update(warp_drive=1)),
                         ("wrong_shape", lambda m: m.update(n_features=7)),
                         ("damaged_hash_record", lambda m: m["data_files"].update(mcm="?"))):
        m = json.loads(json.dumps(meta))
        change(m)
        (copy(name) / META_FILE).write_text(json.dumps(m))
    (copy("no_weights") / WEIGHTS_FILE).unlink()
    holder = root / "holder"
    shutil.copytree(good, holder / "bootstrap")
    out["holder"] = holder
    files = {"empty.csv": b"", "blank.csv": b"\n  \n\n", "latin1.csv": b"word\ncaf\xe9s\n",
             "bare.txt": b"crane\nslate\n\nxy\n", "header_only.csv": b"word,date\n",
             "bad_date.csv": b"word,date\ncrane,2022-01-05\nslate,yesterday\n",
             "far_date.csv": b"word,date\ncrane,9999-12-31\n"}
    for name, content in files.items():
        (root / name).write_bytes(content)
        out[name.replace(".", "_")] = root / name
    (root / "folder.csv").mkdir()
    out["folder_csv"] = root / "folder.csv"
    return out


# (argv with {placeholders}, exit code, text the one-line message must contain)
CASES = [
    ("predict", 2, "give a WORD or --words-file"),
    ("predict eerier", 2, "'eerier' is not a five-letter word"),
    ("predict cr4ne", 2, "'cr4ne' is not a five-letter word"),
    ("predict crane --date soon", 2, "'soon' (--date) is not a date: use YYYY-MM-DD"),
    ("predict crane --date 2022-13-45", 2, "is not a date"),
    ("predict crane --date 2262-05-01", 2, "date 2262-05-01 (--date) is out of range: give a date between"),
    ("predict crane --date 9999-12-31", 2, "date 9999-12-31 (--date) is out of range"),
    ("predict crane --ci 1.5", 2, "--ci 1.5: must be in (0, 1)"),
    ("predict crane --ci 0", 2, "--ci 0.0: must be in (0, 1)"),
    ("predict crane --format xml", 2, "argument --format: invalid choice: 'xml'"),
    ("predict crane --B two", 2, "argument --B: invalid int value: 'two'"),
    ("predict crane --B 3", 2, "--B 3 applies to --retrain only"),
    ("predict crane --retrain --B -1", 2, "--B -1: must be at least 2"),
    ("predict crane --retrain --B 0", 2, "--B 0: must be at least 2"),
    ("predict crane --retrain --B 1", 2, "--B 1: must be at least 2"),
    ("predict crane --retrain --model-dir {good}", 2, "give --model-dir or --retrain, not both"),
    ("predict crane --population martians", 2, "argument --population: invalid choice"),
    ("predict crane --population wordlebot --model-dir {good}", 2, "this model knows only ['mcm']"),
    ("frobnicate", 2, "invalid choice: 'frobnicate'"),
    ("explain", 2, "the following arguments are required: WORD"),
    ("explain crane --neighbours 0 --model-dir {good}", 2, "--neighbours and --top-inputs must be at least 1"),
    ("predict crane --words-file {empty_csv}", 2, "not both"),
    ("predict --words-file {empty_csv}", 1, "empty.csv: no words (the file is empty or holds only blank lines)"),
    ("predict --words-file {blank_csv}", 1, "blank.csv: no words"),
    ("predict --words-file {latin1_csv}", 1, "latin1.csv: line 2 is not UTF-8 (byte 0xe9): save the file as UTF-8"),
    ("predict --words-file {bare_txt}", 2, "'xy' ({bare_txt} line 4) is not a five-letter word"),
    ("predict --words-file {header_only_csv}", 1, "a header and no words below it"),
    ("predict --words-file {bad_date_csv}", 2, "'yesterday' ({bad_date_csv} line 3) is not a date"),
    ("predict --words-file {far_date_csv}", 2, "9999-12-31 ({far_date_csv} line 2) is out of range"),
    ("predict --words-file {folder_csv}", 1, "is a folder, not a file"),
    ("predict --words-file /nonexistent/words.csv", 1, "--words-file /nonexistent/words.csv: no such file"),
    ("predict crane --out /proc/x.csv --model-dir {good}", 1, "--out /proc/x.csv: cannot write in the folder /proc"),
    ("predict crane --out /nonexistent/x.csv --model-dir {good}", 1, "the folder /nonexistent does not exist"),
    ("predict crane --out {holder} --model-dir {good}", 1, "is a folder; give a file name"),
    ("predict crane --model-dir /nonexistent/model", 1, "--model-dir /nonexistent/model: no such folder"),
    ("predict crane --model-dir {empty_csv}", 1, "is a file; give the folder that holds model.json"),
    ("predict crane --model-dir {holder}", 1, "holds saved models, not one: give one of"),
    ("predict crane --model-dir {truncated}", 1, "weights.safetensors is damaged (truncated or not a safetensors"),
    ("predict crane --model-dir {tiny_weights}", 1, "weights.safetensors is damaged"),
    ("predict crane --model-dir {random}", 1, "weights.safetensors is damaged"),
    ("predict crane --model-dir {empty_weights}", 1, "weights.safetensors is damaged"),
    ("predict crane --model-dir {no_weights}", 1, "is not a saved model (needs model.json and weights.safetensors)"),
    ("predict crane --model-dir {broken_json}", 1, "model.json is damaged: not readable JSON"),
    ("predict crane --model-dir {json_list}", 1, "model.json is damaged: a JSON object was expected"),
    ("predict crane --model-dir {latin1_json}", 1, "model.json is damaged: not readable JSON"),
    ("predict crane --model-dir {no_kind}", 1, "model.json is damaged: it lacks 'kind'"),
    ("predict crane --model-dir {unknown_kind}", 1, "unknown saved kind 'pickle'"),
    ("predict crane --model-dir {old_format}", 1, "saved with format version 0, this code reads version 1"),
    ("predict crane --model-dir {no_features}", 1, "model.json is damaged: it lacks 'feature_names'"),
    ("predict crane --model-dir {no_config}", 1, "a model record lacks its config"),
    ("predict crane --model-dir {bad_knob_value}", 1, "its configuration cannot build a model"),
    ("predict crane --model-dir {unknown_knob}", 1, "saved with knob(s) this code does not know: ['WARP_DRIVE']"),
    ("predict crane --model-dir {wrong_shape}", 1, "the saved weights do not fit this code's model"),
    ("predict crane --model-dir {damaged_hash_record}", 1, "the record of training data 'mcm' is damaged"),
    ("explain crane --model-dir {random}", 1, "weights.safetensors is damaged"),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("argv, code, message", CASES, ids=[c[0].split("{")[0].strip() + f"#{i}"
                                                               for i, c in enumerate(CASES)])
def test_every_mistake_ends_in_one_line(argv, code, message, folders, capsys):
    fill = {k: str(v) for k, v in folders.items()}
    args = argv.format(**fill).split()
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    captured = capsys.readouterr()
    err = captured.err
    assert exc.value.code == code, err
    assert "Traceback" not in err and captured.out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wordle-moe: error: ") or lines[0].startswith("wordle-moe predict: error: ") \
        or lines[0].startswith("wordle-moe explain: error: ")
    assert message.format(**fill) in lines[0]


def test_fixes_are_named(folders, capsys):
    """A damaged model names both ways out; a changed data file names --no-verify."""
    with pytest.raises(SystemExit):
        cli.main(["predict", "crane", "--model-dir", str(folders["truncated"])])
    err = capsys.readouterr().err
    assert "`make run`" in err and "--retrain" in err
    with pytest.raises(SystemExit):
        cli.main(["predict", "crane", "--model-dir", str(folders["damaged_hash_record"])])
    assert "--no-verify" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("wordle-moe 0.")


def test_few_replicas_are_refused_or_warned():
    with pytest.raises(cli.UsageError, match="at least 2"):
        cli.check_replicas(1, 200)
    with pytest.raises(cli.UsageError, match="BOOTSTRAP_B 1"):
        cli.check_replicas(None, 1)
    assert cli.check_replicas(3, 200)[1][0].startswith("warning: 3 replicas")
    assert cli.check_replicas(None, 200) == (200, [])
