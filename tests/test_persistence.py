"""Saved models: save -> load gives identical predictions; a changed data file or feature code is refused."""
import json
import os

import numpy as np
import pytest
import torch

from tests.synthetic import softmax_linear_data
from wordle_moe import persistence
from wordle_moe.bootstrap import fit_bootstrap
from wordle_moe.config import MoEConfig
from wordle_moe.estimator import MoEDistributionRegressor, predictive_interval
from wordle_moe.persistence import ModelVersionError, load_model, save_model
from wordle_moe.training import predict_replicas, train_moe

CFG = MoEConfig(hidden_size=8, max_epochs=20, patience=5)
NAMES = [f"f{i}" for i in range(5)]


@pytest.fixture
def data():
    return softmax_linear_data(60, 5, 0, scale=0.4)


@pytest.fixture
def data_file(tmp_path):
    """A stand-in training data file whose hash the saved model records."""
    path = tmp_path / "train.csv"
    path.write_text("word,share\ncrane,0.1\n")
    return {"train": path}


def test_bootstrap_ensemble_round_trip(tmp_path, data, data_file):
    X, P = data
    (model,), _ = fit_bootstrap(X, P, config=CFG.replace(router="reputation"), B=6)
    resid = np.random.default_rng(0).normal(0, 0.02, (60, 7))
    path = save_model(tmp_path / "ens", model, feature_names=NAMES, residuals=resid, data_files=data_file,
                      date_range=("2022-01-07", "2022-12-31"), training_data=(X, P), extra={"population": "mcm"})
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_replicas(X), predict_replicas(model, X))
    assert loaded.replicas == 6 and loaded.config == model.config and loaded.feature_names == NAMES
    np.testing.assert_array_equal(loaded.residuals, resid)
    assert loaded.date_range == ("2022-01-07", "2022-12-31") and loaded.meta["extra"] == {"population": "mcm"}
    # the input scaling statistics and router state travel with the weights
    for name in ("x_mean", "x_std", "router.reputation"):
        np.testing.assert_array_equal(loaded.model.state_dict()[name], model.state_dict()[name])
    meta = json.loads((path / "model.json").read_text())
    assert meta["config"]["router"] == "reputation" and len(meta["training_set_sha256"]) == 64
    assert len(meta["feature_code_sha256"]) == 64 and meta["data_files"]["train"]["sha256"] == \
        persistence.file_sha256(data_file["train"])


def test_intervals_of_a_saved_ensemble(tmp_path, data, data_file):
    X, P = data
    (model,), _ = fit_bootstrap(X, P, config=CFG, B=8)
    resid = np.random.default_rng(1).normal(0, 0.03, (60, 7))
    loaded = load_model(save_model(tmp_path / "ens", model, feature_names=NAMES, residuals=resid,
                                   data_files=data_file))
    boot = predict_replicas(model, X[:3])
    lo_m, hi_m = np.quantile(boot, [0.025, 0.975], axis=0)
    mean, low, high = loaded.predict_interval(X[:3], kind="mean")
    np.testing.assert_allclose(mean, boot.mean(0))
    np.testing.assert_allclose(low, lo_m) and np.testing.assert_allclose(high, hi_m)
    _, p_low, p_high = loaded.predict_interval(X[:3])  # predictive by default
    exp_low, exp_high = predictive_interval(boot.mean(0), lo_m, hi_m, resid, 0.95)
    np.testing.assert_allclose(p_low, exp_low) and np.testing.assert_allclose(p_high, exp_high)
    s = loaded.summary(X[:3])
    assert (s["pred_high"] - s["pred_low"] >= s["mean_high"] - s["mean_low"] - 1e-12).all()
    np.testing.assert_allclose(s["std"], boot.std(0, ddof=1))


def test_single_model_round_trip_without_residuals(tmp_path, data, data_file):
    X, P = data
    model, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    loaded = load_model(save_model(tmp_path / "one", model, feature_names=NAMES, data_files=data_file))
    np.testing.assert_array_equal(loaded.predict(X), predict_replicas(model, X)[0])
    with pytest.raises(ValueError, match="predictive interval is unavailable"):
        loaded.predict_interval(X)
    with pytest.raises(ValueError, match="bootstrap replicas"):
        loaded.predict_interval(X, kind="mean")
    with pytest.raises(ValueError, match="shape"):
        loaded.predict(X[:, :4])


def test_estimator_round_trip(tmp_path, data, data_file):
    X, P = data
    est = MoEDistributionRegressor(hidden_size=8, max_epochs=20, patience=5, n_bootstrap=4, calibration_cv=2,
                                   ci_level=0.9).fit(X, P)
    back = load_model(save_model(tmp_path / "est", est, data_files=data_file))
    assert isinstance(back, MoEDistributionRegressor) and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    for kind in ("predictive", "mean"):
        for a, b in zip(back.predict_interval(X, kind=kind), est.predict_interval(X, kind=kind)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not fitted"):
        save_model(tmp_path / "x", MoEDistributionRegressor(), data_files=data_file)


def test_changed_data_file_is_refused(tmp_path, data, data_file):
    X, P = data
    model, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    path = save_model(tmp_path / "m", model, feature_names=NAMES, data_files=data_file)
    data_file["train"].write_text("word,share\ncrane,0.2\n")
    with pytest.raises(ModelVersionError, match=r"training data 'train'.*has changed.*Retrain"):
        load_model(path)
    load_model(path, verify=False)  # still readable when the user insists
    data_file["train"].unlink()
    with pytest.raises(ModelVersionError, match="missing"):
        load_model(path)


def test_changed_feature_code_is_refused(tmp_path, data, data_file, monkeypatch):
    X, P = data
    model, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    path = save_model(tmp_path / "m", model, feature_names=NAMES, data_files=data_file)
    monkeypatch.setattr(persistence, "FEATURE_CODE", persistence.FEATURE_CODE[:-1])  # a different code set
    with pytest.raises(ModelVersionError, match="feature code has changed"):
        load_model(path)


def test_unknown_knob_wrong_weights_and_non_model_folders(tmp_path, data, data_file):
    X, P = data
    model, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    path = save_model(tmp_path / "m", model, feature_names=NAMES, data_files=data_file)
    meta = json.loads((path / "model.json").read_text())
    meta["config"]["future_knob"] = 1
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelVersionError, match="FUTURE_KNOB"):
        load_model(path)
    del meta["config"]["future_knob"]
    meta["config"]["num_experts"] = 3  # weights no longer fit the declared architecture
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelVersionError, match="do not fit"):
        load_model(path)
    with pytest.raises(ModelVersionError, match="not a saved model"):
        load_model(tmp_path / "nothing_here")
    with pytest.raises(ValueError, match="feature names"):
        save_model(tmp_path / "bad", model, feature_names=NAMES[:3], data_files=data_file)
    with pytest.raises(ValueError, match="feature_names is required"):
        save_model(tmp_path / "bad", model, data_files=data_file)


def test_overwrite_is_whole_and_modes_follow_umask(tmp_path, data, data_file):
    X, P = data
    a, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    b, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG.replace(seed=5))
    path = save_model(tmp_path / "m", a, feature_names=NAMES, data_files=data_file)
    save_model(path, b, feature_names=NAMES, data_files=data_file)
    np.testing.assert_array_equal(load_model(path).predict(X), predict_replicas(b, X)[0])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp folders left
    mask = os.umask(0o022)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o777 & ~mask
    assert ((path / "weights.safetensors").stat().st_mode & 0o777) == 0o666 & ~mask


def test_saving_is_deterministic(tmp_path, data, data_file):
    X, P = data
    torch.manual_seed(0)
    model, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    a = save_model(tmp_path / "a", model, feature_names=NAMES, data_files=data_file)
    b = save_model(tmp_path / "b", model, feature_names=NAMES, data_files=data_file)
    for f in ("weights.safetensors", "model.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_knobs_added_after_saving_are_reported(tmp_path, data, data_file):
    X, P = data
    model, _ = train_moe(X[:45], P[:45], X[45:], P[45:], config=CFG)
    path = save_model(tmp_path / "m", model, feature_names=NAMES, data_files=data_file)
    assert load_model(path).meta["assumed_defaults"] == []
    meta = json.loads((path / "model.json").read_text())
    del meta["config"]["router_only_epochs"]  # as if saved before that knob existed
    (path / "model.json").write_text(json.dumps(meta))
    loaded = load_model(path)
    assert loaded.meta["assumed_defaults"] == ["ROUTER_ONLY_EPOCHS"]
    np.testing.assert_array_equal(loaded.predict(X), predict_replicas(model, X)[0])
