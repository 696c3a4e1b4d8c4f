"""Command line: predict the tries distribution of words from the saved bootstrap ensemble.

    wordle-moe predict crane --date 2026-11-28
    wordle-moe predict --words-file words.csv --out preds.csv      # a CSV with a word column (and date)
    python moe_booststrap.py predict eerie --date 2023-03-01 --format json

The saved ensemble (``make run`` writes it under moe_bootstrap_output/model/) answers in about a second;
``--retrain`` trains a fresh one with the knobs of moe_booststrap.py. Each answer says which model,
configuration, date and population it used; a date outside the training days is clamped to them (the
time-trend input never extrapolates) unless ``--extrapolate-dates`` is given; a word in neither Wordle
word list gets a warning. The interval shown is the predictive interval (where the observed share is
expected to fall); the bootstrap interval of the mean is a separate, labelled column.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import ConfigError, MoEConfig
from .paths import BUCKET_LABELS, OUTPUT_DIR

MODEL_DIR = OUTPUT_DIR / "model"
DEFAULT_MODELS = ("all_sources", "bootstrap")  # the first that exists answers; all_sources knows later years
FORMATS = ("table", "csv", "json")
POPULATIONS = ("wordlebot", "mcm")
VALUE_COLUMNS = ("mean", "std", "pred_low", "pred_high", "mean_low", "mean_high")


class CLIError(Exception):
    """A problem the user can fix; printed without a traceback."""


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def read_words_file(path: str | Path) -> pd.DataFrame:
    """word[,date] rows from a CSV with a header (``word`` required, ``date`` optional) or a bare list of words."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"--words-file {path}: no such file")
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    has_header = bool(first) and "word" in [c.strip().lower() for c in first[0].split(",")]
    df = pd.read_csv(path, dtype=str, header=0 if has_header else None, skip_blank_lines=True)
    if not has_header:
        df.columns = ["word", "date"][: df.shape[1]] + [f"extra_{i}" for i in range(df.shape[1] - 2)]
    df.columns = [c.strip().lower() for c in df.columns]
    if "date" not in df:
        df["date"] = None
    df = df[["word", "date"]].replace({np.nan: None})
    if df.empty:
        raise CLIError(f"--words-file {path}: no words")
    return df


def check_words(words: Sequence[str], where: Sequence[str] | None = None) -> list[str]:
    """Lower-case five-letter words; CLIError naming the first bad one (and its file row)."""
    from .feedback import normalize_word

    out = []
    for i, w in enumerate(words):
        try:
            out.append(normalize_word(str(w)))
        except ValueError:
            at = f" ({where[i]})" if where is not None else ""
            raise CLIError(f"{w!r}{at} is not a five-letter word") from None
    return out


def parse_dates(dates: Sequence[Any], where: Sequence[str]) -> list[pd.Timestamp | None]:
    """Timestamps (None where no date was given); CLIError naming the first unreadable one."""
    out = []
    for d, at in zip(dates, where):
        if d is None or (isinstance(d, str) and not d.strip()):
            out.append(None)
            continue
        try:
            out.append(pd.Timestamp(str(d).strip()).normalize())
        except (ValueError, TypeError):
            raise CLIError(f"date {d!r} ({at}) is not a date: use YYYY-MM-DD") from None
    return out


def unknown_words(words: Sequence[str]) -> list[str]:
    """The words in neither Wordle list (answers, allowed guesses): their features rest on spelling alone."""
    from .wordlists import allowed_index

    known = allowed_index()
    return sorted({w for w in words if w not in known})


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
def find_model_dir(model_dir: str | Path | None) -> tuple[Path, list[str]]:
    """(folder, notes): the given folder, or the first saved default under moe_bootstrap_output/model/."""
    from .persistence import META_FILE

    if model_dir is not None:
        return Path(model_dir), []
    notes = []
    for name in DEFAULT_MODELS:
        path = MODEL_DIR / name
        if (path / META_FILE).is_file():
            return path, notes
        notes.append(f"no saved model in {path}")
    raise CLIError(f"no saved ensemble under {MODEL_DIR}: run `make run` first (it saves them), "
                   "or add --retrain to train one now (~30 s)")


def describe_config(config: MoEConfig) -> str:
    """One line: the structure and the knobs that differ from the defaults (MoEConfig(), the module's knobs)."""
    base = MoEConfig()
    diff = {k: v for k, v in config.to_dict().items()
            if k not in ("seed", "bootstrap_b", "bootstrap_ci") and v != getattr(base, k)}
    head = f"{config.num_experts} experts, top-{config.top_k}, hidden {config.hidden_size}, router {config.router}"
    if not diff:
        return head + " — the default configuration"
    return head + " — differs from the defaults in " + ", ".join(f"{k.upper()}={v!r}" for k, v in diff.items())


def load_ensemble(model_dir: str | Path | None) -> tuple[Any, Path, list[str]]:
    """(SavedModel, its folder, notes) from the folder or the saved default; CLIError with the fix when unusable."""
    from .persistence import ModelVersionError, load_model

    path, notes = find_model_dir(model_dir)
    try:
        saved = load_model(path)
    except ModelVersionError as exc:
        raise CLIError(f"{exc}") from None
    if not hasattr(saved, "summary"):
        raise CLIError(f"{path} holds a saved estimator, not an ensemble: give a folder written by save_model "
                       "for a MoEModel (e.g. moe_bootstrap_output/model/bootstrap)")
    if notes:
        notes = [f"{'; '.join(notes)}: using {path} (run `make run` to save the all-sources ensemble)"]
    if saved.meta.get("assumed_defaults"):
        notes.append(f"note: {path} was saved before the knob(s) {', '.join(saved.meta['assumed_defaults'])} "
                     "existed: their current defaults are assumed; `make run` saves it afresh")
    return saved, path, notes


def retrain_ensemble(B: int | None, sources: str, config: MoEConfig, progress: bool = True) -> tuple[Any, list[str]]:
    """Train a fresh bootstrap ensemble with ``config`` (and its held-out residuals)."""
    from .bootstrap import fit_bootstrap
    from .dataset import ALL_SOURCES, load_dataset, training_date_range
    from .estimator import ensemble_residuals
    from .persistence import SavedModel

    cfg = config
    data = load_dataset(sources=ALL_SOURCES if sources == "all" else ("mcm",))
    B = int(B or cfg.bootstrap_b)
    (model,), _ = fit_bootstrap(data.X, data.P, config=cfg, B=B, n_reported=data.n_reported, progress=progress)
    resid = ensemble_residuals(data.X, data.P, cfg, data.n_reported, seed=cfg.seed)
    first, last = training_date_range(data)
    meta = {"date_range": [str(first.date()), str(last.date())],
            "extra": {"populations": sorted(set(data.population.tolist()))}}
    return SavedModel(model=model, feature_names=list(data.feature_names), residuals=resid, meta=meta), \
        [f"retrained: {B} replicas on {len(data.X)} rows ({sources} sources), not saved"]


def model_populations(saved: Any) -> list[str]:
    """The populations the model has an input for (an MCM-only model knows the MCM players only)."""
    extra = saved.meta.get("extra", {}) or {}
    if extra.get("populations"):
        return list(extra["populations"])
    return ["mcm", "wordlebot"] if "population_wordlebot" in saved.feature_names else ["mcm"]


# --------------------------------------------------------------------------------------------
# Predicting
# --------------------------------------------------------------------------------------------
def predict_frame(saved: Any, words: Sequence[str], dates: Sequence[pd.Timestamp | None], *,
                  population: str | None = None, clamp: bool = True, ci_level: float | None = None
                  ) -> tuple[pd.DataFrame, list[str]]:
    """Long table, one row per (word, bucket): the prediction with both intervals, plus the notes to show.

    A missing date becomes the last training day; dates outside the training days are clamped to them
    unless ``clamp`` is False; the population defaults to WordleBot for dates after 2022 when the model knows it.
    """
    from .dataset import default_population, feature_rows

    notes: list[str] = []
    first, last = (pd.Timestamp(d) for d in saved.date_range) if saved.date_range else (None, None)
    if any(d is None for d in dates):
        if last is None:
            raise CLIError("the saved model has no training date range: give --date")
        notes.append(f"no date given: using the last observed date {last.date()}")
    asked = [last if d is None else d for d in dates]
    outside = sorted({d.date() for d in asked if first is not None and not first <= d <= last})
    if outside:
        how = ("the time-trend input is clamped to that range (add --extrapolate-dates to extrapolate)" if clamp
               else "extrapolating the time trend beyond it, as asked")
        notes.append(f"warning: date(s) {', '.join(map(str, outside[:5]))}{' …' if len(outside) > 5 else ''} outside "
                     f"the training range {first.date()} .. {last.date()}: {how}")
    known = model_populations(saved)
    if population is not None and population not in known:
        raise CLIError(f"--population {population}: this model knows only {known} (the all-sources ensemble knows "
                       "both; run `make run` to save it)")
    pops = [population or (default_population(d) if "wordlebot" in known else "mcm") for d in asked]
    calibrated_on = (saved.meta.get("extra", {}) or {}).get("residuals_population")
    if calibrated_on and saved.residuals is not None and any(p != calibrated_on for p in pops):
        other = sorted({p for p in pops if p != calibrated_on})
        notes.append(f"warning: the predictive interval is calibrated on {calibrated_on} residuals; for the "
                     f"{', '.join(other)} population it may be too narrow (a noisier population scatters more)")
    odd = unknown_words(words)
    if odd:
        notes.append(f"warning: {', '.join(odd[:10])}{' …' if len(odd) > 10 else ''} in neither Wordle word list "
                     "(answers, allowed guesses): features from spelling alone, expect a poorer prediction")
    rows = feature_rows(list(words), asked, saved.feature_names, population=pops,
                        date_range=(first, last) if clamp and first is not None else None)
    s = saved.summary(rows[saved.feature_names].to_numpy(float), ci_level)
    n = len(words)
    out = pd.DataFrame({
        "word": np.repeat(list(words), 7),
        "date": np.repeat([str(d.date()) for d in asked], 7),
        "date_used": np.repeat(pd.to_datetime(rows["date_used"]).dt.strftime("%Y-%m-%d").to_numpy(), 7),
        "population": np.repeat(pops, 7),
        "bucket": np.tile(BUCKET_LABELS, n),
    })
    for k in VALUE_COLUMNS:
        if k in s:
            out[k] = np.asarray(s[k]).reshape(-1)
    return out, notes


def header(saved: Any, source: str, ci_level: float) -> str:
    """What the numbers are: model folder, configuration, replicas and the two intervals."""
    level = int(round(100 * ci_level))
    lines = [f"model: {source} ({saved.replicas} bootstrap replicas; trained on "
             f"{' .. '.join(saved.date_range) if saved.date_range else 'unknown dates'})",
             f"configuration: {describe_config(saved.config)}",
             f"share of players per bucket (%): mean = bootstrap mean; pred_low..pred_high = {level}% predictive "
             f"interval (where the observed share is expected to fall); mean_low..mean_high = {level}% bootstrap "
             "interval of the mean (uncertainty of the mean only, much narrower)"]
    if saved.residuals is None:
        lines[-1] = f"share of players per bucket (%): mean and the {level}% bootstrap interval of the mean " \
                    "(no held-out residuals saved: no predictive interval)"
    return "\n".join(lines)


def render(frame: pd.DataFrame, fmt: str) -> str:
    """The table as text (percent), CSV or JSON (shares 0..1)."""
    if fmt == "csv":
        return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    if fmt == "json":
        return json.dumps(json.loads(frame.to_json(orient="records", double_precision=10)), indent=1) + "\n"
    parts = []
    for (word, date, used, pop), g in frame.groupby(["word", "date", "date_used", "population"], sort=False):
        when = date if date == used else f"{date} (time trend at {used})"
        parts.append(f"{word.upper()} on {when}, population {pop}")
        cols = [c for c in VALUE_COLUMNS if c in g]
        pct = g[["bucket", *cols]].assign(**{c: 100 * g[c] for c in cols})
        parts.append(pct.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def build_parser(prog: str = "wordle-moe") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict the tries distribution of words with both intervals")
    p.add_argument("words", nargs="*", metavar="WORD", help="five-letter word(s)")
    p.add_argument("--date", default=None, help="puzzle date, YYYY-MM-DD (default: the last observed date)")
    p.add_argument("--words-file", default=None, help="CSV with a word column and an optional date column")
    p.add_argument("--out", default=None, help="write the result to this file instead of standard output")
    p.add_argument("--format", choices=FORMATS, default=None, help="table (default; csv when --out ends in .csv)")
    p.add_argument("--population", choices=POPULATIONS, default=None,
                   help="whose results: WordleBot users (default after 2022, all-sources model) or the MCM players")
    p.add_argument("--model-dir", default=None, help="a saved model folder (default: moe_bootstrap_output/model/"
                                                     "all_sources, else model/bootstrap)")
    p.add_argument("--retrain", action="store_true", help="train a fresh ensemble with the knobs of moe_booststrap.py")
    p.add_argument("--sources", choices=("all", "mcm"), default="all", help="training data for --retrain")
    p.add_argument("--B", type=int, default=None, help="replicas for --retrain (default BOOTSTRAP_B)")
    p.add_argument("--ci", type=float, default=None, help="interval level (default: the model's BOOTSTRAP_CI)")
    p.add_argument("--extrapolate-dates", action="store_true",
                   help="let the time trend run past the training dates instead of clamping it")
    return parser


ConfigSource = MoEConfig | Callable[[], MoEConfig] | None


def resolve_config(config: ConfigSource) -> MoEConfig:
    """The configuration a retrain uses: the one given, the one a callable builds now, or MoEConfig's defaults."""
    if config is None:
        return MoEConfig().validate()
    return (config() if callable(config) else config).validate()


def run_predict(args: argparse.Namespace, config: ConfigSource = None) -> int:
    if args.words_file:
        if args.words:
            raise CLIError("give words either on the command line or with --words-file, not both")
        table = read_words_file(args.words_file)
        where = [f"{args.words_file} row {i + 2}" for i in range(len(table))]
        words = check_words(table["word"], where)
        dates = parse_dates([d if d is not None else args.date for d in table["date"]], where)
    else:
        if not args.words:
            raise CLIError("give a WORD or --words-file FILE")
        words = check_words(args.words)
        dates = parse_dates([args.date] * len(words), ["--date"] * len(words))
    if args.ci is not None and not 0 < args.ci < 1:
        raise CLIError(f"--ci {args.ci}: must be in (0, 1)")
    if args.retrain:
        saved, notes = retrain_ensemble(args.B, args.sources, resolve_config(config))
        source = "retrained now"
    else:
        saved, path, notes = load_ensemble(args.model_dir)
        source = str(path)
    level = args.ci if args.ci is not None else saved.config.bootstrap_ci
    frame, more = predict_frame(saved, words, dates, population=args.population,
                                clamp=not args.extrapolate_dates, ci_level=level)
    fmt = args.format or ("csv" if args.out and str(args.out).endswith(".csv") else
                          "json" if args.out and str(args.out).endswith(".json") else "table")
    info = header(saved, source, level)
    for note in notes + more:
        print(note, file=sys.stderr)
    text = render(frame, fmt)
    if args.out:
        from .io import write_text

        write_text(text, args.out)
        print(f"{info}\nwrote {len(words)} word(s) x 7 buckets to {args.out}", file=sys.stderr)
    elif fmt == "table":
        print(info)
        sys.stdout.write(text)
    else:
        print(info, file=sys.stderr)
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None, prog: str = "wordle-moe", config: ConfigSource = None) -> int:
    """The command line; returns the exit code. ``config`` (a MoEConfig, or a callable giving one, called only when
    ``--retrain`` needs it) is what a retrain trains with: ``moe_booststrap.main`` (the ``wordle-moe`` command and
    ``python moe_booststrap.py``) passes the module's knobs; without it, MoEConfig's defaults."""
    # the embedding model (loaded for words outside the answer list) would draw a loading bar: noise in an answer
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            return run_predict(args, config)
    except (CLIError, ConfigError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
