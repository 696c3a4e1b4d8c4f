"""Saving and loading trained models, so a prediction never has to retrain.

A saved model is a folder with two files:

- ``weights.safetensors``: every parameter and buffer of the (replica-batched) MoEModel under ``model.``
  — including the per-replica input scaling statistics ``model.x_mean`` / ``model.x_std`` — and, when
  given, the held-out residuals of the predictive interval under ``calibration.residuals`` (float64).
  safetensors holds tensors only, so loading runs no code from the file.
- ``model.json``: the format version, the full MoEConfig, the feature names, the replica ids, the training
  date range, the sha256 of every training data file and of the feature code, and free ``extra`` metadata.

A loaded model's intervals come from ``wordle_moe.intervals`` (the estimator's and the evaluation's too).

``load_model`` refuses (``ModelVersionError``) a folder whose data or feature-code hashes differ from the
files on disk now: its predictions would describe another data set or other features. An estimator
(``MoEDistributionRegressor``) is saved the same way, with its single model and bootstrap models.
Folders are written to a temporary sibling and renamed into place, so a crash never leaves half a model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import MoEConfig
from .disagreement import reference_stats
from .intervals import replica_intervals
from .io import current_umask
from .model import MoEModel
from .paths import ALLOWED, ANSWERS, RAW_DATA, ROOT
from .training import predict_replicas

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
# The code whose change changes feature values (features.FEATURE_VERSION is bumped by hand; this catches the rest).
FEATURE_CODE = ("features.py", "feedback.py", "solvers.py", "embeddings.py", "wordlists.py")
MCM_DATA_FILES = {"mcm": RAW_DATA, "answers": ANSWERS, "allowed": ALLOWED}
KINDS = ("moe_model", "estimator")
REQUIRED_META = ("kind", "feature_names")


class ModelVersionError(ValueError):
    """A saved model does not match the data or feature code on disk (or is not a saved model at all)."""


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def feature_code_sha256() -> str:
    """sha256 over the source of the feature modules (and FEATURE_VERSION): changes whenever feature code does."""
    from .features import FEATURE_VERSION

    h = hashlib.sha256(FEATURE_VERSION.encode())
    for name in FEATURE_CODE:
        h.update(b"\0" + name.encode() + b"\0" + (Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def array_sha256(*arrays: np.ndarray) -> str:
    """sha256 of arrays' float64 bytes and shapes: identifies the exact training matrix."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _relative(path: Path) -> str:
    """A data path as stored: relative to the repository when inside it, so a moved checkout still verifies."""
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def data_fingerprint(data_files: Mapping[str, str | os.PathLike]) -> dict[str, dict[str, str]]:
    """{name: {path, sha256}} of the training data files."""
    return {name: {"path": _relative(Path(p)), "sha256": file_sha256(p)} for name, p in sorted(data_files.items())}


# --------------------------------------------------------------------------------------------
# The loaded model
# --------------------------------------------------------------------------------------------
@dataclass
class SavedModel:
    """A loaded replica-batched MoE with what is needed to use it honestly on new words."""

    model: MoEModel
    feature_names: list[str]
    residuals: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> MoEConfig:
        return self.model.config

    @property
    def replicas(self) -> int:
        return self.model.replicas

    @property
    def date_range(self) -> tuple[str, str] | None:
        """(first, last) training date as YYYY-MM-DD, when it was saved."""
        r = self.meta.get("date_range")
        return (r[0], r[1]) if r else None

    @property
    def disagreement(self) -> dict[str, Any] | None:
        """The replicas' spread on the observed words and the training range of each input (None if not saved)."""
        return self.meta.get("disagreement")

    def _X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have shape (n, {len(self.feature_names)}) in the order of feature_names, "
                             f"got {X.shape}")
        return X

    def predict_replicas(self, X: Any) -> np.ndarray:
        """Every replica's prediction (R, n, 7)."""
        return predict_replicas(self.model, self._X(X))

    def predict(self, X: Any) -> np.ndarray:
        """The replica mean (n, 7): the bootstrap mean, or the single model when R = 1."""
        return self.predict_replicas(X).mean(axis=0)

    def predict_interval(self, X: Any, ci_level: float | None = None, kind: str = "predictive"
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, low, high), each (n, 7); kind="predictive" (where observed shares fall, from the saved
        held-out residuals) or "mean" (the bootstrap percentile interval of the mean)."""
        return replica_intervals(self.predict_replicas(X), self.residuals,
                         self.config.bootstrap_ci if ci_level is None else ci_level, kinds=(kind,))[kind]

    def summary(self, X: Any, ci_level: float | None = None, P_boot: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
        """mean; with replicas std and mean_low/mean_high (interval of the mean); with residuals pred_low/pred_high.

        A single model (R = 1) has no interval of the mean: its summary is the mean and, when held-out residuals
        were saved with it, the predictive interval around it."""
        level = self.config.bootstrap_ci if ci_level is None else ci_level
        P_boot = self.predict_replicas(X) if P_boot is None else P_boot  # the replicas' predictions, when at hand
        kinds = (("mean",) if len(P_boot) > 1 else ()) + (("predictive",) if self.residuals is not None else ())
        s = replica_intervals(P_boot, self.residuals, level, kinds=kinds) if kinds else {}
        out = {"mean": P_boot.mean(axis=0)}
        if "mean" in s:
            out.update(std=P_boot.std(axis=0, ddof=1), mean_low=s["mean"][1], mean_high=s["mean"][2])
        if "predictive" in s:
            out.update(pred_low=s["predictive"][1], pred_high=s["predictive"][2])
        return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _write_folder(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write weights + metadata into a temporary sibling folder, then swap it into ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}, str(tmp / WEIGHTS_FILE))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        mask = current_umask()  # the modes a plain mkdir/open would give, not mkdtemp's 0700
        os.chmod(tmp, 0o777 & ~mask)
        for f in (WEIGHTS_FILE, META_FILE):
            os.chmod(tmp / f, 0o666 & ~mask)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "model")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def _model_meta(model: MoEModel) -> dict[str, Any]:
    return {"config": model.config.to_dict(), "n_features": model.n_features, "replicas": model.replicas,
            "replica_ids": list(getattr(model, "replica_ids", range(model.replicas)))}


def save_model(path: str | os.PathLike, model: Any, *, feature_names: Sequence[str] | None = None,
               residuals: np.ndarray | None = None, data_files: Mapping[str, str | os.PathLike] | None = None,
               date_range: tuple[Any, Any] | None = None, training_data: tuple[np.ndarray, np.ndarray] | None = None,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Save a trained MoEModel (one model or a replica-batched bootstrap ensemble) or a fitted
    MoEDistributionRegressor to the folder ``path``; returns it.

    ``feature_names``: the model's input columns in order (required for a MoEModel). ``residuals`` (m, 7):
    held-out residuals P - P_hat for the predictive interval. ``data_files``: {name: path} of the training
    data (default: the MCM table and both word lists). ``date_range``: (first, last) training date.
    ``training_data``: (X, P) to record the exact training matrix's sha256 (and, for an ensemble, the replicas'
    spread on those words and each input's range, for the disagreement warning). ``extra``: JSON-able metadata
    (e.g. the population the model predicts).
    """
    from .estimator import MoEDistributionRegressor  # lazily: loading a model for a prediction needs no scikit-learn
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "data_files": data_fingerprint(MCM_DATA_FILES if data_files is None else data_files),
        "feature_code_sha256": feature_code_sha256(),
        "date_range": None if date_range is None else [str(np.datetime64(d, "D")) for d in date_range],
        "training_set_sha256": None if training_data is None else array_sha256(*training_data),
        "extra": dict(extra or {}),
    }
    tensors: dict[str, torch.Tensor] = {}
    if isinstance(model, MoEDistributionRegressor):
        if not hasattr(model, "model_"):
            raise ValueError("the estimator is not fitted: call fit before saving it")
        names = list(feature_names) if feature_names is not None else \
            list(getattr(model, "feature_names_in_", [f"x{i}" for i in range(model.n_features_in_)]))
        boots = model.bootstrap_models_ or []
        if len(boots) > 1:
            raise ValueError("only a replica-batched bootstrap (one model of B replicas) can be saved")
        meta.update(kind="estimator", params=model.get_params(deep=False), single=_model_meta(model.model_),
                    bootstrap=_model_meta(boots[0]) if boots else None, best_epoch=int(model.best_epoch_))
        tensors.update({f"single.{k}": v for k, v in model.model_.state_dict().items()})
        tensors.update({f"bootstrap.{k}": v for b in boots for k, v in b.state_dict().items()})
        residuals = getattr(model, "residuals_", None) if residuals is None else residuals
    elif isinstance(model, MoEModel):
        if feature_names is None:
            raise ValueError("feature_names is required to save a MoEModel (the columns its inputs must have)")
        names = list(feature_names)
        meta.update(kind="moe_model", **_model_meta(model))
        tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    else:
        raise TypeError(f"cannot save a {type(model).__name__}: give a MoEModel or a MoEDistributionRegressor")
    n_features = model.n_features_in_ if isinstance(model, MoEDistributionRegressor) else model.n_features
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for a model of {n_features} inputs")
    meta["feature_names"] = names
    if residuals is not None:
        residuals = np.asarray(residuals, dtype=np.float64)
        if residuals.ndim != 2 or residuals.shape[1] != 7:
            raise ValueError(f"residuals must have shape (m, 7), got {residuals.shape}")
        tensors["calibration.residuals"] = torch.from_numpy(residuals)
    meta["has_residuals"] = residuals is not None
    ensemble = model if isinstance(model, MoEModel) else (boots[0] if boots else None)
    if training_data is not None and ensemble is not None and ensemble.replicas > 1:
        meta["disagreement"] = disagreement_stats(ensemble, training_data[0])
    return _write_folder(Path(path), tensors, meta)


def disagreement_stats(model: MoEModel, X: np.ndarray) -> dict[str, Any]:
    """The replicas' spread on the observed words ``X`` and the inputs' training range, saved with an ensemble
    so a prediction can warn when the replicas disagree on a new word more than on 99% of those words."""
    X = np.asarray(X, dtype=np.float64)
    return reference_stats(predict_replicas(model, X), X)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a saved model folder (ModelVersionError when it is not one)."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file() or not (path / WEIGHTS_FILE).is_file():
        raise ModelVersionError(f"{path} is not a saved model (needs {META_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelVersionError(f"{meta_path} is damaged: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelVersionError(f"{meta_path} is damaged: a JSON object was expected")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelVersionError(f"{path}: saved with format version {meta.get('format_version')}, this code reads "
                                f"version {FORMAT_VERSION}; retrain and save it again")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ModelVersionError(f"{meta_path} is damaged: it lacks {', '.join(map(repr, missing))}")
    if meta["kind"] not in KINDS:
        raise ModelVersionError(f"{meta_path}: unknown saved kind {meta['kind']!r} (this code reads {list(KINDS)})")
    records = [meta] if meta["kind"] == "moe_model" else [r for r in (meta.get("single"), meta.get("bootstrap")) if r]
    for rec in records:
        if not isinstance(rec, dict) or any(k not in rec for k in ("config", "n_features", "replicas")):
            raise ModelVersionError(f"{meta_path} is damaged: a model record lacks its config, n_features or replicas")
    return meta


def check_versions(meta: Mapping[str, Any], where: str | os.PathLike = "the saved model") -> None:
    """Raise ModelVersionError unless the data files and feature code on disk are the ones the model was trained on."""
    problems = []
    for name, rec in (meta.get("data_files") or {}).items():
        if not isinstance(rec, Mapping) or "path" not in rec or "sha256" not in rec:
            problems.append(f"the record of training data '{name}' is damaged")
            continue
        p = Path(rec["path"])
        p = p if p.is_absolute() else ROOT / p
        if not p.exists():
            problems.append(f"training data '{name}' ({rec['path']}) is missing")
        elif (digest := file_sha256(p)) != rec["sha256"]:
            problems.append(f"training data '{name}' ({rec['path']}) has changed since training "
                            f"(sha256 {rec['sha256'][:12]}… then, {digest[:12]}… now)")
    now = feature_code_sha256()
    if meta.get("feature_code_sha256") != now:
        then = str(meta.get("feature_code_sha256"))[:12]
        problems.append(f"the feature code has changed since training (sha256 {then}… then, {now[:12]}… now)")
    if problems:
        raise ModelVersionError(f"{where} does not match this checkout: " + "; ".join(problems)
                                + ". Retrain it (make run, or predict --retrain), or load with verify=False "
                                  "(on the command line: --no-verify) at your own risk.")


def _config_from(saved: Mapping[str, Any], where: Path) -> MoEConfig:
    known = {f.name for f in dataclasses.fields(MoEConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ModelVersionError(f"{where}: saved with knob(s) this code does not know: {[k.upper() for k in unknown]}; "
                                "retrain it with this code")
    return MoEConfig(**saved)


def assumed_defaults(saved: Mapping[str, Any]) -> list[str]:
    """Knobs this code has that a saved config lacks (saved before they existed): their defaults are assumed."""
    return sorted(f.name.upper() for f in dataclasses.fields(MoEConfig) if f.name not in saved)


def _build(record: Mapping[str, Any], state: Mapping[str, torch.Tensor], prefix: str, where: Path) -> MoEModel:
    """Rebuild a MoEModel from its metadata record and load the tensors under ``prefix``."""
    try:
        model = MoEModel(int(record["n_features"]), _config_from(record["config"], where),
                         replicas=int(record["replicas"]), replica_ids=record.get("replica_ids"))
    except ModelVersionError:
        raise
    except (TypeError, ValueError, KeyError) as exc:  # ConfigError is a ValueError: a knob value this code refuses
        raise ModelVersionError(f"{where / META_FILE}: its configuration cannot build a model ({exc}); "
                                "retrain it") from None
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(sub, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelVersionError(f"{where}: the saved weights do not fit this code's model ({first}); "
                                "retrain it") from None
    return model.eval()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a saved model folder; ModelVersionError when the file is truncated or not safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelVersionError(f"{path / WEIGHTS_FILE} is damaged (truncated or not a safetensors file: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def load_model(path: str | os.PathLike, *, verify: bool = True) -> Any:
    """Load a folder written by ``save_model``: a SavedModel, or the fitted MoEDistributionRegressor.

    With ``verify`` (default) the data files and feature code must be unchanged since training
    (ModelVersionError names what differs). A damaged folder (unreadable model.json or weights, a missing
    entry) also raises ModelVersionError, naming the file.
    """
    path = Path(path)
    meta = read_meta(path)
    if verify:
        check_versions(meta, path)
    state = read_weights(path)
    residuals = state["calibration.residuals"].numpy() if "calibration.residuals" in state else None
    meta["assumed_defaults"] = assumed_defaults(meta["config"] if meta["kind"] == "moe_model"
                                                else meta["single"]["config"])
    if meta["kind"] == "moe_model":
        return SavedModel(model=_build(meta, state, "model.", path), feature_names=list(meta["feature_names"]),
                          residuals=residuals, meta=meta)
    if meta["kind"] == "estimator":
        from .estimator import MoEDistributionRegressor

        est = MoEDistributionRegressor(**meta["params"])
        est.model_ = _build(meta["single"], state, "single.", path)
        est.bootstrap_models_ = [_build(meta["bootstrap"], state, "bootstrap.", path)] if meta["bootstrap"] else None
        est.residuals_ = residuals
        est.n_features_in_ = int(meta["single"]["n_features"])
        est.best_epoch_ = meta.get("best_epoch")
        est.history_ = None  # the training log is not saved with the model
        est.saved_meta_ = meta
        return est
    raise ModelVersionError(f"{path}: unknown saved kind {meta['kind']!r}")


def save_ensemble(path: str | os.PathLike, model: Any, data: Any, config: MoEConfig, *,
                  residuals: np.ndarray | None = None, data_files: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Save a trained model of ``data`` (a WordleDataset) for later predictions: weights, config, feature names,
    training date range, data and feature-code hashes and held-out residuals (computed here when not given)."""
    from .dataset import training_date_range
    from .estimator import ensemble_residuals

    if residuals is None:
        residuals = ensemble_residuals(data.X, data.P, config, data.n_reported, seed=int(config.seed))
    return save_model(path, model, feature_names=data.feature_names, residuals=residuals, data_files=data_files,
                      date_range=training_date_range(data), training_data=(data.X, data.P), extra=extra)
