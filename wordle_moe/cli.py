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
    """A problem the user can fix; printed as one line without a traceback (exit code ``code``: 1)."""

    code = 1


class UsageError(CLIError):
    """A mistake in the command itself (a bad word, date or option value): exit code 2, like argparse's."""

    code = 2


# the dates a pandas timestamp can hold (nanoseconds since 1970 in 64 bits), whole days
FIRST_DATE, LAST_DATE = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")
MIN_REPLICAS, FEW_REPLICAS = 2, 30


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def _decode(path: Path) -> str:
    """The text of a words file (UTF-8, a BOM allowed); CLIError naming the line of the first undecodable byte."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise CLIError(f"--words-file {path}: is a folder, not a file") from None
    except OSError as exc:
        raise CLIError(f"--words-file {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise CLIError(f"--words-file {path}: line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x}): "
                       "save the file as UTF-8") from None


def read_words_file(path: str | Path) -> pd.DataFrame:
    """word, date and line (the file's line number) from a CSV with a header (``word`` required, ``date``
    optional) or a bare list of words (``word[,date]`` per line); blank lines are skipped."""
    import csv

    path = Path(path)
    if not path.exists():
        raise CLIError(f"--words-file {path}: no such file")
    lines = [(i + 1, row) for i, row in enumerate(csv.reader(_decode(path).splitlines()))
             if any(c.strip() for c in row)]
    if not lines:
        raise CLIError(f"--words-file {path}: no words (the file is empty or holds only blank lines): give one "
                       "word per line, or a CSV with a word column and an optional date column")
    head = [c.strip().lower() for c in lines[0][1]]
    if "word" in head:
        word_col, date_col = head.index("word"), head.index("date") if "date" in head else None
        lines = lines[1:]
        if not lines:
            raise CLIError(f"--words-file {path}: a header and no words below it")
    else:
        word_col, date_col = 0, 1
    cell = lambda row, j: row[j].strip() if j is not None and j < len(row) and row[j].strip() else None  # noqa: E731
    return pd.DataFrame({"word": [cell(r, word_col) or "" for _, r in lines],
                         "date": [cell(r, date_col) for _, r in lines],
                         "line": [n for n, _ in lines]})


def check_words(words: Sequence[str], where: Sequence[str] | None = None) -> list[str]:
    """Lower-case five-letter words; UsageError naming the first bad one (and its file line)."""
    from .feedback import normalize_word

    out = []
    for i, w in enumerate(words):
        try:
            out.append(normalize_word(str(w)))
        except ValueError:
            at = f" ({where[i]})" if where is not None else ""
            raise UsageError(f"{w!r}{at} is not a five-letter word (letters a-z only)") from None
    return out


def parse_date(value: Any, at: str) -> pd.Timestamp | None:
    """One date (None when blank); UsageError naming where it came from when unreadable or beyond pandas' range."""
    if value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    try:
        day = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise UsageError(f"date {value!r} ({at}) is not a date: use YYYY-MM-DD") from None
    if pd.isna(day):
        raise UsageError(f"date {value!r} ({at}) is not a date: use YYYY-MM-DD")
    if not FIRST_DATE <= day <= LAST_DATE:
        raise UsageError(f"date {text} ({at}) is out of range: give a date between {FIRST_DATE.date()} and "
                         f"{LAST_DATE.date()} (dates outside the training days are clamped to them)")
    return pd.Timestamp(day.date())


def parse_dates(dates: Sequence[Any], where: Sequence[str]) -> list[pd.Timestamp | None]:
    """Timestamps (None where no date was given); UsageError naming the first unreadable one."""
    return [parse_date(d, at) for d, at in zip(dates, where)]


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
        path = Path(model_dir)
        if not path.exists():
            raise CLIError(f"--model-dir {path}: no such folder (`make run` saves the models under {MODEL_DIR})")
        if not path.is_dir():
            raise CLIError(f"--model-dir {path}: is a file; give the folder that holds {META_FILE}")
        if not (path / META_FILE).exists():
            inside = sorted(p.name for p in path.iterdir() if (p / META_FILE).is_file()) if path.is_dir() else []
            if inside:
                raise CLIError(f"--model-dir {path} holds saved models, not one: give one of "
                               f"{', '.join(str(path / n) for n in inside)}")
        return path, []
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


def load_ensemble(model_dir: str | Path | None, verify: bool = True) -> tuple[Any, Path, list[str]]:
    """(SavedModel, its folder, notes) from the folder or the saved default; CLIError with the fix when unusable.

    ``verify=False`` (``--no-verify``) skips the check that the data files and feature code are unchanged."""
    from .persistence import ModelVersionError, load_model

    path, notes = find_model_dir(model_dir)
    try:
        saved = load_model(path, verify=verify)
    except ModelVersionError as exc:
        text = str(exc)
        if "retrain" not in text.lower() and "make run" not in text:
            text += ": run `make run` to save the models again, or add --retrain to train one now"
        raise CLIError(text) from None
    if not hasattr(saved, "summary"):
        raise CLIError(f"{path} holds a saved estimator, not an ensemble: give a folder written by save_model "
                       "for a MoEModel (e.g. moe_bootstrap_output/model/bootstrap)")
    if notes:
        notes = [f"{'; '.join(notes)}: using {path} (run `make run` to save the all-sources ensemble)"]
    if not verify:
        notes.append(f"warning: --no-verify: {path} is used without checking that the data files and feature code "
                     "are the ones it was trained on")
    if saved.meta.get("assumed_defaults"):
        notes.append(f"note: {path} was saved before the knob(s) {', '.join(saved.meta['assumed_defaults'])} "
                     "existed: their current defaults are assumed; `make run` saves it afresh")
    if saved.replicas == 1:
        what = ("the predictive interval from its saved held-out residuals" if saved.residuals is not None
                else "no interval (it was saved without held-out residuals)")
        notes.append(f"note: {path} is a single model (no bootstrap replicas): no interval of the mean and no "
                     f"replica spread; shown: its prediction and {what}. For both intervals use "
                     f"{MODEL_DIR / 'bootstrap'} or {MODEL_DIR / 'all_sources'}")
    return saved, path, notes


def check_replicas(B: int | None, default: int) -> tuple[int, list[str]]:
    """(replicas, notes) for --retrain: at least MIN_REPLICAS (an interval needs a spread), a warning below FEW."""
    given = "--B" if B is not None else "BOOTSTRAP_B"
    B = int(default if B is None else B)
    if B < MIN_REPLICAS:
        raise UsageError(f"{given} {B}: must be at least {MIN_REPLICAS} (an interval needs bootstrap replicas; "
                         f"{FEW_REPLICAS} or more give a usable one, BOOTSTRAP_B defaults to 200)")
    notes = []
    if B < FEW_REPLICAS:
        notes.append(f"warning: {B} replicas: the interval of the mean and the replica spread are rough below "
                     f"{FEW_REPLICAS} (BOOTSTRAP_B defaults to 200)")
    return B, notes


def retrain_ensemble(B: int | None, sources: str, config: MoEConfig, progress: bool = True) -> tuple[Any, list[str]]:
    """Train a fresh bootstrap ensemble with ``config`` (and its held-out residuals)."""
    from .bootstrap import fit_bootstrap
    from .dataset import ALL_SOURCES, load_dataset, training_date_range
    from .estimator import ensemble_residuals
    from .persistence import SavedModel, disagreement_stats

    cfg = config
    B, notes = check_replicas(B, cfg.bootstrap_b)
    data = load_dataset(sources=ALL_SOURCES if sources == "all" else ("mcm",))
    (model,), _ = fit_bootstrap(data.X, data.P, config=cfg, B=B, n_reported=data.n_reported, progress=progress)
    resid = ensemble_residuals(data.X, data.P, cfg, data.n_reported, seed=cfg.seed)
    first, last = training_date_range(data)
    meta = {"date_range": [str(first.date()), str(last.date())],
            "extra": {"populations": sorted(set(data.population.tolist()))},
            "disagreement": disagreement_stats(model, data.X)}
    return SavedModel(model=model, feature_names=list(data.feature_names), residuals=resid, meta=meta), \
        [*notes, f"retrained: {B} replicas on {len(data.X)} rows ({sources} sources), not saved"]


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
            raise UsageError("the saved model has no training date range: give --date")
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
        raise UsageError(f"--population {population}: this model knows only {known} (the all-sources ensemble knows "
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
    X = rows[saved.feature_names].to_numpy(float)
    P_boot = saved.predict_replicas(X)
    s = saved.summary(X, ci_level, P_boot=P_boot)
    notes += disagreement_notes(saved, words, asked, P_boot, X)
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


def disagreement_notes(saved: Any, words: Sequence[str], dates: Sequence[pd.Timestamp], P_boot: np.ndarray,
                       X: np.ndarray, limit: int = 10) -> list[str]:
    """A warning per word on which the replicas disagree more than on 99% of the observed words (the reference
    saved with the ensemble), naming the inputs outside the training range; at most ``limit`` lines."""
    from .disagreement import describe

    stats = getattr(saved, "disagreement", None)
    if not stats or P_boot.shape[0] < 2:
        return []
    lines = [line for i, (w, d) in enumerate(zip(words, dates))
             if (line := describe(w, str(d.date()), P_boot[:, i], X[i], saved.feature_names, stats))]
    if len(lines) > limit:
        lines = lines[:limit] + [f"warning: … and {len(lines) - limit} more word(s) on which the replicas disagree"]
    return lines


def header(saved: Any, source: str, ci_level: float) -> str:
    """What the numbers are: model folder, configuration, replicas and the two intervals."""
    level = int(round(100 * ci_level))
    lines = [f"model: {source} ({saved.replicas} bootstrap replicas; trained on "
             f"{' .. '.join(saved.date_range) if saved.date_range else 'unknown dates'})",
             f"configuration: {describe_config(saved.config)}",
             f"share of players per bucket (%): mean = bootstrap mean; pred_low..pred_high = {level}% predictive "
             f"interval (where the observed share is expected to fall); mean_low..mean_high = {level}% bootstrap "
             "interval of the mean (uncertainty of the mean only, much narrower)"]
    if saved.replicas == 1:
        lines[0] = lines[0].replace("(1 bootstrap replicas;", "(a single model, no bootstrap replicas;")
        lines[-1] = "share of players per bucket (%): mean = the single model's prediction" + (
            f"; pred_low..pred_high = {level}% predictive interval (from its held-out residuals)"
            if saved.residuals is not None else " (no replicas and no held-out residuals: no interval)")
    elif saved.residuals is None:
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
class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: … (see prog --help)``), exit code 2, like every usage error."""

    def error(self, message: str):  # noqa: D102 (argparse's hook)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def version_text() -> str:
    """The package version and the saved-model format it reads."""
    from importlib import metadata

    from .persistence import FORMAT_VERSION

    try:
        version = metadata.version("wordle-moe")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed: run `make setup`)"
    return f"wordle-moe {version} (saved-model format {FORMAT_VERSION})"


class VersionAction(argparse.Action):
    """--version, computed only when asked (it imports the saved-model code)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and the saved-model format, then exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit(0)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", default=None, help="puzzle date, YYYY-MM-DD (default: the last observed date)")
    p.add_argument("--population", choices=POPULATIONS, default=None,
                   help="whose results: WordleBot users (default after 2022, all-sources model) or the MCM players")
    p.add_argument("--model-dir", default=None, help="a saved model folder (default: moe_bootstrap_output/model/"
                                                     "all_sources, else model/bootstrap)")
    p.add_argument("--no-verify", action="store_true",
                   help="use a saved model even if the data files or feature code changed since it was saved "
                        "(at your own risk)")
    p.add_argument("--extrapolate-dates", action="store_true",
                   help="let the time trend run past the training dates instead of clamping it")


def build_parser(prog: str = "wordle-moe") -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="{predict,explain}")
    p = sub.add_parser("predict", help="predict the tries distribution of words with both intervals")
    p.add_argument("words", nargs="*", metavar="WORD", help="five-letter word(s)")
    p.add_argument("--words-file", default=None, help="CSV with a word column and an optional date column "
                                                      "(or one word per line), UTF-8")
    p.add_argument("--out", default=None, help="write the result to this file instead of standard output")
    p.add_argument("--format", choices=FORMATS, default=None, help="table (default; csv when --out ends in .csv)")
    _add_model_options(p)
    p.add_argument("--retrain", action="store_true", help="train a fresh ensemble with the knobs of moe_booststrap.py")
    p.add_argument("--sources", choices=("all", "mcm"), default="all", help="training data for --retrain")
    p.add_argument("--B", type=int, default=None,
                   help=f"replicas for --retrain (default BOOTSTRAP_B; at least {MIN_REPLICAS}, "
                        f"{FEW_REPLICAS} or more advised)")
    p.add_argument("--ci", type=float, default=None, help="interval level (default: the model's BOOTSTRAP_CI)")
    e = sub.add_parser("explain", help="why the model predicts what it does for a word: its routing, the gate's "
                                       "reasons and the nearest observed words")
    e.add_argument("word", metavar="WORD", help="a five-letter word")
    _add_model_options(e)
    e.add_argument("--neighbours", type=int, default=5, help="nearest observed words to show (default 5)")
    e.add_argument("--top-inputs", type=int, default=8, help="inputs that move the gate most to show (default 8)")
    return parser


ConfigSource = MoEConfig | Callable[[], MoEConfig] | None


def resolve_config(config: ConfigSource) -> MoEConfig:
    """The configuration a retrain uses: the one given, the one a callable builds now, or MoEConfig's defaults."""
    if config is None:
        return MoEConfig().validate()
    return (config() if callable(config) else config).validate()


def check_out(out: str | None) -> Path | None:
    """The --out path when its folder exists and is writable (checked before any work); CLIError otherwise."""
    if out is None:
        return None
    path = Path(out)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CLIError(f"--out {path}: is a folder; give a file name (e.g. {path / 'predictions.csv'})")
    if not folder.is_dir():
        raise CLIError(f"--out {path}: the folder {folder} does not exist; create it first or write elsewhere")
    import tempfile

    try:  # a real probe: permission bits say nothing for root, nor for /proc or a read-only mount
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CLIError(f"--out {path}: cannot write in the folder {folder} ({exc.strerror or exc}); "
                       "write elsewhere") from None
    return path


def write_out(text: str, path: Path) -> None:
    """Write the answer atomically; CLIError naming --out when the system refuses."""
    from .io import write_text

    try:
        write_text(text, path)
    except OSError as exc:
        raise CLIError(f"--out {path}: cannot write it ({exc.strerror or exc}); write elsewhere") from None


def read_inputs(args: argparse.Namespace) -> tuple[list[str], list[pd.Timestamp | None]]:
    """The words and dates asked for, from the command line or --words-file (named, with the file line, on error)."""
    if args.words_file:
        if args.words:
            raise UsageError("give words either on the command line or with --words-file, not both")
        table = read_words_file(args.words_file)
        where = [f"{args.words_file} line {n}" for n in table["line"]]
        words = check_words(table["word"], where)
        dates = parse_dates([d if isinstance(d, str) else args.date for d in table["date"]], where)
        return words, dates
    if not args.words:
        raise UsageError("give a WORD or --words-file FILE")
    words = check_words(args.words)
    return words, parse_dates([args.date] * len(words), ["--date"] * len(words))


def run_predict(args: argparse.Namespace, config: ConfigSource = None) -> int:
    if args.ci is not None and not 0 < args.ci < 1:
        raise UsageError(f"--ci {args.ci}: must be in (0, 1), e.g. 0.9")
    if args.B is not None and not args.retrain:
        raise UsageError(f"--B {args.B} applies to --retrain only (a saved model has its replicas)")
    if args.retrain and args.model_dir:
        raise UsageError("give --model-dir or --retrain, not both")
    out = check_out(args.out)
    words, dates = read_inputs(args)
    if args.retrain:
        cfg = resolve_config(config)
        check_replicas(args.B, cfg.bootstrap_b)  # before loading any data: a bad --B fails at once
        saved, notes = retrain_ensemble(args.B, args.sources, cfg)
        source = "retrained now"
    else:
        saved, path, notes = load_ensemble(args.model_dir, verify=not args.no_verify)
        source = str(path)
    level = args.ci if args.ci is not None else saved.config.bootstrap_ci
    frame, more = predict_frame(saved, words, dates, population=args.population,
                                clamp=not args.extrapolate_dates, ci_level=level)
    fmt = args.format or ("csv" if out and str(out).endswith(".csv") else
                          "json" if out and str(out).endswith(".json") else "table")
    info = header(saved, source, level)
    for note in notes + more:
        print(note, file=sys.stderr)
    text = render(frame, fmt)
    if out:
        write_out(text, out)
        print(f"{info}\nwrote {len(words)} word(s) x 7 buckets to {out}", file=sys.stderr)
    elif fmt == "table":
        print(info)
        sys.stdout.write(text)
    else:
        print(info, file=sys.stderr)
        sys.stdout.write(text)
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from .explain import explain_word, render_explanation

    word, = check_words([args.word])
    date = parse_date(args.date, "--date")
    if args.neighbours < 1 or args.top_inputs < 1:
        raise UsageError("--neighbours and --top-inputs must be at least 1")
    saved, path, notes = load_ensemble(args.model_dir, verify=not args.no_verify)
    explanation = explain_word(saved, word, date, population=args.population, clamp=not args.extrapolate_dates,
                               n_neighbours=args.neighbours, n_inputs=args.top_inputs)
    for note in notes + explanation["notes"]:
        print(note, file=sys.stderr)
    sys.stdout.write(render_explanation(explanation, source=str(path)))
    return 0


def main(argv: list[str] | None = None, prog: str = "wordle-moe", config: ConfigSource = None) -> int:
    """The command line; returns the exit code. ``config`` (a MoEConfig, or a callable giving one, called only when
    ``--retrain`` needs it) is what a retrain trains with: ``moe_booststrap.main`` (the ``wordle-moe`` command and
    ``python moe_booststrap.py``) passes the module's knobs; without it, MoEConfig's defaults.

    Every mistake the user can fix ends with one line ``prog: error: …`` naming the input and the fix: exit code 2
    for a mistake in the command (a bad word, date or option), 1 for a file or saved model that cannot be used."""
    from .data import DataError
    from .persistence import ModelVersionError

    # the embedding model (loaded for words outside the answer list) would draw a loading bar: noise in an answer
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            if args.command == "explain":
                return run_explain(args)
            return run_predict(args, config)
    except CLIError as exc:
        parser.exit(exc.code, f"{parser.prog}: error: {exc}\n")
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc} (the knobs of moe_booststrap.py)\n")
    except (ModelVersionError, DataError) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: error: interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
