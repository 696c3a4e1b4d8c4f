"""The command line predicts from a saved ensemble, says which model, date and population it used, warns about
dates outside the training range and unknown words, and prints both intervals, in three formats."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wordle_moe import cli
from wordle_moe.bootstrap import fit_bootstrap
from wordle_moe.config import MoEConfig
from wordle_moe.dataset import feature_rows, load_dataset
from wordle_moe.persistence import load_model, save_model

ROOT = Path(__file__).resolve().parent.parent
TINY = MoEConfig(hidden_size=8, max_epochs=15, patience=5, penalty_cv=0)   # no inner CV: the saved knobs are these


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small MCM ensemble (4 replicas) saved the way `make run` saves model/bootstrap."""
    data = load_dataset()
    (model,), _ = fit_bootstrap(data.X, data.P, config=TINY, B=4)
    resid = np.random.default_rng(0).normal(0, 0.03, (len(data.X), 7))
    path = tmp_path_factory.mktemp("models") / "bootstrap"
    save_model(path, model, feature_names=data.feature_names, residuals=resid,
               date_range=(data.dates.min(), data.dates.max()), extra={"population": "mcm", "populations": ["mcm"]})
    return path


def run(capsys, *argv, main=cli.main):
    code = main(["predict", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_one_word_table_matches_the_saved_model(model_dir, capsys):
    code, out, err = run(capsys, "CRANE", "--date", "2022-05-01", "--model-dir", str(model_dir))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"model: {model_dir} (4 bootstrap replicas; trained on 2022-01-07 .. 2022-12-31)")
    assert lines[1] == "configuration: 2 experts, top-1, hidden 8, router topk — differs from the defaults in " \
                       "HIDDEN_SIZE=8, MAX_EPOCHS=15, PATIENCE=5, PENALTY_CV=0"
    assert "95% predictive interval" in lines[2] and "bootstrap interval of the mean" in lines[2]
    assert lines[3] == "CRANE on 2022-05-01, population mcm"
    table = pd.read_csv(pd.io.common.StringIO("\n".join(lines[4:])), sep=r"\s+")
    assert list(table["bucket"].astype(str)) == ["1", "2", "3", "4", "5", "6", "X"]
    saved = load_model(model_dir)
    X = feature_rows(["crane"], ["2022-05-01"], saved.feature_names)[saved.feature_names].to_numpy(float)
    s = saved.summary(X)
    for col in cli.VALUE_COLUMNS:
        np.testing.assert_allclose(table[col], 100 * s[col][0], atol=0.006)  # printed with 2 decimals
    assert table["mean"].sum() == pytest.approx(100, abs=0.05)
    assert (table["pred_low"] <= table["mean_low"] + 0.01).all()
    assert (table["pred_high"] >= table["mean_high"] - 0.01).all()


def test_no_date_uses_the_last_observed_date_and_says_so(model_dir, capsys):
    _, out, err = run(capsys, "eerie", "--model-dir", str(model_dir), "--format", "csv")
    assert "no date given: using the last observed date 2022-12-31" in err
    df = pd.read_csv(pd.io.common.StringIO(out))
    assert set(df["date"]) == {"2022-12-31"} and len(df) == 7


def test_date_outside_range_is_clamped_with_a_warning(model_dir, capsys):
    _, out, err = run(capsys, "crane", "--date", "2026-11-28", "--model-dir", str(model_dir), "--format", "csv")
    assert "2026-11-28 outside the training range 2022-01-07 .. 2022-12-31" in err and "clamped" in err
    far = pd.read_csv(pd.io.common.StringIO(out))
    assert set(far["date"]) == {"2026-11-28"} and set(far["date_used"]) == {"2022-12-31"}
    _, out_last, _ = run(capsys, "crane", "--date", "2022-12-31", "--model-dir", str(model_dir), "--format", "csv")
    np.testing.assert_allclose(far["mean"], pd.read_csv(pd.io.common.StringIO(out_last))["mean"])
    _, out_x, err_x = run(capsys, "crane", "--date", "2026-11-28", "--model-dir", str(model_dir), "--format", "csv",
                          "--extrapolate-dates")
    assert "extrapolating" in err_x
    extrap = pd.read_csv(pd.io.common.StringIO(out_x))
    assert set(extrap["date_used"]) == {"2026-11-28"} and not np.allclose(extrap["mean"], far["mean"])


def test_unknown_word_warns_and_bad_input_fails_clearly(model_dir, capsys):
    _, _, err = run(capsys, "xqzvj", "--date", "2022-05-01", "--model-dir", str(model_dir))
    assert "warning: xqzvj in neither Wordle word list" in err
    _, _, err = run(capsys, "crane", "--date", "2022-05-01", "--model-dir", str(model_dir))
    assert "neither" not in err
    for argv, message in ((["eerier"], "'eerier' is not a five-letter word"),
                          (["crane", "--date", "soon"], "'soon' (--date) is not a date"),
                          (["crane", "--population", "wordlebot"], "this model knows only ['mcm']"),
                          (["crane", "--ci", "1.5"], "--ci 1.5"),
                          ([], "give a WORD or --words-file")):
        with pytest.raises(SystemExit) as exc:
            cli.main(["predict", *argv, "--model-dir", str(model_dir)])
        assert exc.value.code == 2 and message in capsys.readouterr().err, message


def test_words_file_to_csv_and_json(model_dir, tmp_path, capsys):
    words = tmp_path / "words.csv"
    words.write_text("word,date\ncrane,2022-02-01\nEERIE,\nslate,2023-06-01\n")
    out = tmp_path / "preds.csv"
    code, _, err = run(capsys, "--words-file", str(words), "--out", str(out), "--model-dir", str(model_dir))
    assert code == 0 and f"wrote 3 word(s) x 7 buckets to {out}" in err
    df = pd.read_csv(out)
    assert list(df.columns) == ["word", "date", "date_used", "population", "bucket", *cli.VALUE_COLUMNS]
    assert list(df["word"].unique()) == ["crane", "eerie", "slate"] and len(df) == 21
    assert list(df.groupby("word", sort=False)["date"].first()) == ["2022-02-01", "2022-12-31", "2023-06-01"]
    np.testing.assert_allclose(df.groupby("word")["mean"].sum(), 1, atol=1e-6)
    _, js, _ = run(capsys, "--words-file", str(words), "--format", "json", "--model-dir", str(model_dir))
    records = json.loads(js)
    assert len(records) == 21 and records[0]["word"] == "crane"
    assert records[0]["mean"] == pytest.approx(df["mean"][0], abs=1e-6)
    bad = tmp_path / "bad.csv"
    bad.write_text("word\ncrane\ncranes\n")
    with pytest.raises(SystemExit):
        cli.main(["predict", "--words-file", str(bad), "--model-dir", str(model_dir)])
    assert f"'cranes' ({bad} line 3) is not a five-letter word" in capsys.readouterr().err


def test_bare_word_list_file(model_dir, tmp_path, capsys):
    words = tmp_path / "list.txt"
    words.write_text("crane\nslate\n")
    _, out, _ = run(capsys, "--words-file", str(words), "--date", "2022-06-01", "--format", "csv",
                    "--model-dir", str(model_dir))
    df = pd.read_csv(pd.io.common.StringIO(out))
    assert list(df["word"].unique()) == ["crane", "slate"] and set(df["date"]) == {"2022-06-01"}


def test_missing_or_outdated_model_tells_the_fix(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "MODEL_DIR", tmp_path / "none")
    with pytest.raises(SystemExit):
        cli.main(["predict", "crane"])
    err = capsys.readouterr().err
    assert "run `make run` first" in err and "--retrain" in err
    # a model whose training data changed since it was saved is refused, naming the file
    stale = stale_model(model_dir, tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["predict", "crane", "--model-dir", str(stale)])
    assert "training data 'x'" in capsys.readouterr().err


def test_default_model_folder_falls_back_to_the_mcm_ensemble(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "MODEL_DIR", model_dir.parent)  # holds bootstrap/ but no all_sources/
    _, out, err = run(capsys, "crane", "--date", "2022-05-01")
    assert f"no saved model in {model_dir.parent / 'all_sources'}: using {model_dir}" in err
    assert out.startswith(f"model: {model_dir}")


def test_retrain_uses_the_module_knobs(capsys, monkeypatch):
    import moe_booststrap as mb

    for knob, value in (("MAX_EPOCHS", 5), ("PATIENCE", 2), ("HIDDEN_SIZE", 4)):
        monkeypatch.setattr(mb, knob, value)
    code, out, err = run(capsys, "crane", "--date", "2022-05-01", "--retrain", "--B", "2", "--sources", "mcm",
                         main=mb.main)  # the `wordle-moe` command: the facade passes its knobs to the command line
    assert code == 0 and "retrained: 2 replicas on 359 rows (mcm sources), not saved" in err
    assert "hidden 4" in out and "model: retrained now (2 bootstrap replicas" in out


def test_retrain_uses_the_config_it_is_given(capsys):
    """The command line never imports the facade: it trains with the MoEConfig its caller passes."""
    from wordle_moe.config import MoEConfig

    cfg = MoEConfig(max_epochs=5, patience=2, hidden_size=3)
    code, out, _ = run(capsys, "crane", "--date", "2022-05-01", "--retrain", "--B", "2", "--sources", "mcm",
                       main=lambda argv: cli.main(argv, config=cfg))
    assert code == 0 and "hidden 3" in out


def test_module_script_and_predict_word_use_the_saved_model(model_dir, capsys):
    import moe_booststrap as mb

    frame = mb.predict_word("crane", "2022-05-01", model_dir=str(model_dir))
    assert list(frame.columns) == ["word", "date", "date_used", "population", "bucket", *cli.VALUE_COLUMNS]
    np.testing.assert_allclose(frame["mean"].sum(), 1, atol=1e-6)
    res = subprocess.run([sys.executable, str(ROOT / "moe_booststrap.py"), "predict", "crane", "--date", "2022-05-01",
                          "--model-dir", str(model_dir), "--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(pd.read_csv(pd.io.common.StringIO(res.stdout))["mean"], frame["mean"], atol=1e-6)


def test_the_prediction_path_stays_light(model_dir):
    """Answering from a saved model imports neither scikit-learn nor the estimator (start-up within the 3 s aim)."""
    code = ("import sys; from wordle_moe import cli; "
            f"cli.main(['predict', 'crane', '--date', '2022-05-01', '--model-dir', {str(model_dir)!r}]); "
            "print('HEAVY', sorted(m for m in ('sklearn', 'wordle_moe.estimator', 'scipy.stats') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_predictive_interval_of_another_population_is_flagged(model_dir, tmp_path, capsys):
    saved = load_model(model_dir)
    other = save_model(tmp_path / "wb", saved.model, feature_names=saved.feature_names, residuals=saved.residuals,
                       date_range=saved.date_range, extra={"populations": ["mcm"], "residuals_population": "wordlebot"})
    _, _, err = run(capsys, "crane", "--date", "2022-05-01", "--model-dir", str(other))
    assert "calibrated on wordlebot residuals; for the mcm population it may be too narrow" in err
    _, _, err = run(capsys, "crane", "--date", "2022-05-01", "--model-dir", str(model_dir))
    assert "calibrated on" not in err


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory):
    """A single model (one replica) saved with held-out residuals, as `make run` saves model/single."""
    from wordle_moe.training import train_moe

    data = load_dataset()
    model, _ = train_moe(data.X[:300], data.P[:300], data.X[300:], data.P[300:], config=TINY)
    resid = np.random.default_rng(1).normal(0, 0.02, (300, 7))
    path = tmp_path_factory.mktemp("single") / "single"
    save_model(path, model, feature_names=data.feature_names, residuals=resid,
               date_range=(data.dates.min(), data.dates.max()), extra={"populations": ["mcm"]})
    return path


def test_a_single_model_answers_with_its_predictive_interval(single_dir, capsys):
    code, out, err = run(capsys, "crane", "--date", "2022-05-01", "--model-dir", str(single_dir))
    assert code == 0 and "is a single model (no bootstrap replicas): no interval of the mean" in err
    lines = out.splitlines()
    assert "(a single model, no bootstrap replicas;" in lines[0]
    assert "pred_low..pred_high = 95% predictive interval (from its held-out residuals)" in lines[2]
    table = pd.read_csv(pd.io.common.StringIO("\n".join(lines[4:])), sep=r"\s+")
    assert list(table.columns) == ["bucket", "mean", "pred_low", "pred_high"]
    saved = load_model(single_dir)
    X = feature_rows(["crane"], ["2022-05-01"], saved.feature_names)[saved.feature_names].to_numpy(float)
    mean = saved.predict(X)[0]
    q = np.quantile(saved.residuals, [0.025, 0.975], axis=0)
    np.testing.assert_allclose(table["mean"], 100 * mean, atol=0.006)
    np.testing.assert_allclose(table["pred_low"], 100 * np.clip(mean + q[0], 0, 1), atol=0.006)
    np.testing.assert_allclose(table["pred_high"], 100 * np.clip(mean + q[1], 0, 1), atol=0.006)


def test_retrain_warns_below_30_replicas(capsys):
    code, _, err = run(capsys, "crane", "--date", "2022-05-01", "--retrain", "--B", "2", "--sources", "mcm",
                       main=lambda argv: cli.main(argv, config=MoEConfig(max_epochs=3, patience=2, hidden_size=3)))
    assert code == 0 and "warning: 2 replicas: the interval of the mean and the replica spread are rough" in err


def stale_model(model_dir, tmp_path):
    """A copy of the saved model whose training data file changed after it was saved."""
    data_file = tmp_path / "train.csv"
    data_file.write_text("a\n")
    saved = load_model(model_dir)
    stale = save_model(tmp_path / "stale", saved.model, feature_names=saved.feature_names, data_files={"x": data_file},
                       date_range=saved.date_range)
    data_file.write_text("b\n")
    return stale


def test_no_verify_uses_a_model_whose_data_changed(model_dir, tmp_path, capsys):
    stale = stale_model(model_dir, tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["predict", "crane", "--model-dir", str(stale)])
    assert "--no-verify" in capsys.readouterr().err
    code, out, err = run(capsys, "crane", "--date", "2022-05-01", "--model-dir", str(stale), "--no-verify")
    assert code == 0 and "warning: --no-verify" in err and out.startswith(f"model: {stale}")
