"""Replica disagreement: the reference (per-bucket quantile of the replica std on the observed words, each input's
training range) computed by hand, saved with an ensemble, and the warning of predict / predict_word naming the
inputs outside the training range."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordle_moe import cli, disagreement
from wordle_moe.bootstrap import fit_bootstrap
from wordle_moe.config import MoEConfig
from wordle_moe.dataset import load_dataset
from wordle_moe.persistence import META_FILE, load_model, save_model
from wordle_moe.training import predict_replicas


def test_reference_stats_by_hand():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(7), size=(6, 50))                     # (R, n, 7)
    X = rng.normal(size=(50, 3))
    s = disagreement.reference_stats(P, X, quantile=0.9)
    std = P.std(axis=0, ddof=1)
    np.testing.assert_allclose(s["std_threshold"], np.quantile(std, 0.9, axis=0), atol=1e-8)
    np.testing.assert_allclose(s["feature_min"], X.min(0))
    np.testing.assert_allclose(s["feature_max"], X.max(0))
    assert (s["n_words"], s["replicas"], s["quantile"]) == (50, 6, 0.9)
    flagged = disagreement.disagreeing_rows(P, s["std_threshold"])
    assert flagged.tolist() == (std > np.quantile(std, 0.9, axis=0)).any(axis=1).tolist()
    json.dumps(s)  # stored in model.json


def test_inputs_outside_the_range_farthest_first():
    stats = {"feature_min": [0, 0, 0], "feature_max": [1, 10, 1]}
    out = disagreement.inputs_outside(np.array([1.5, 12.0, 0.5]), ["a", "b", "c"], stats)
    assert [n for n, *_ in out] == ["a", "b"]  # a is half a range out, b a fifth
    assert out[0] == ("a", 1.5, 0.0, 1.0)
    assert disagreement.inputs_outside(np.array([0.5, 5, 0.5]), ["a", "b", "c"], stats) == []


def test_describe_warns_only_above_the_reference():
    stats = {"std_threshold": [0.01] * 7, "quantile": 0.99, "feature_min": [0, 0], "feature_max": [1, 1]}
    calm = np.full((4, 7), 1 / 7)
    assert disagreement.describe("crane", "2022-12-19", calm, np.array([0.5, 0.5]), ["a", "b"], stats) is None
    wild = calm.copy()
    wild[:, 6] += np.array([0.0, 0.1, 0.2, 0.3])
    text = disagreement.describe("crane", "2022-12-19", wild, np.array([2.0, 0.5]), ["a", "b"], stats)
    sd = 100 * wild[:, 6].std(ddof=1)
    assert text.startswith("warning: the replicas disagree on CRANE (2022-12-19) more than on 99% of the observed")
    assert f"bucket X replica std {sd:.1f} pp against 1.0 pp" in text
    assert "inputs outside the training range: a=2 (training 0..1)" in text
    text = disagreement.describe("crane", "d", wild, np.array([0.5, 0.5]), ["a", "b"], stats)
    assert "every input lies inside the training range" in text


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory):
    data = load_dataset()
    (model,), _ = fit_bootstrap(data.X, data.P, config=MoEConfig(hidden_size=8, max_epochs=15, patience=5), B=4)
    path = tmp_path_factory.mktemp("dis") / "bootstrap"
    save_model(path, model, feature_names=data.feature_names, residuals=np.zeros((10, 7)),
               date_range=(data.dates.min(), data.dates.max()), training_data=(data.X, data.P),
               extra={"populations": ["mcm"]})
    return path, data, model


def test_the_reference_is_saved_with_the_ensemble(saved_dir):
    path, data, model = saved_dir
    stats = load_model(path).disagreement
    expected = disagreement.reference_stats(predict_replicas(model, data.X), data.X)
    np.testing.assert_allclose(stats["std_threshold"], expected["std_threshold"], atol=1e-7)
    assert stats["n_words"] == len(data.X) and stats["replicas"] == 4


def test_predict_and_predict_word_warn_when_the_replicas_disagree(saved_dir, tmp_path, capsys):
    import shutil

    import moe_booststrap as mb

    path, data, model = saved_dir
    std = predict_replicas(model, data.X).std(axis=0, ddof=1)
    calm = int(np.argmin((std / load_model(path).disagreement["std_threshold"]).max(axis=1)))
    code = cli.main(["predict", data.words[calm], "--date", str(data.dates.iloc[calm].date()), "--model-dir", str(path)])
    assert code == 0 and "replicas disagree" not in capsys.readouterr().err
    strict = tmp_path / "strict"  # a reference no word can meet: every prediction is flagged
    shutil.copytree(path, strict)
    meta = json.loads((strict / META_FILE).read_text())
    meta["disagreement"]["std_threshold"] = [0.0] * 7
    meta["disagreement"]["feature_max"] = [v - 1e6 for v in meta["disagreement"]["feature_max"]]
    (strict / META_FILE).write_text(json.dumps(meta))
    cli.main(["predict", "crane", "slate", "--date", "2022-05-01", "--model-dir", str(strict)])
    err = capsys.readouterr().err
    assert "warning: the replicas disagree on CRANE (2022-05-01)" in err and "on SLATE" in err
    assert "inputs outside the training range:" in err
    mb.predict_word("crane", "2022-05-01", model_dir=str(strict))
    assert "replicas disagree on CRANE" in capsys.readouterr().err
