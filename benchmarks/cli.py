"""Command-line latency: `wordle-moe predict WORD` from the saved ensemble, wall time including start-up.

Run:  .venv/bin/python benchmarks/cli.py [--repeats 5] [--model-dir moe_bootstrap_output/model/bootstrap]
Needs a saved ensemble (`make run` writes moe_bootstrap_output/model/). Each call is a fresh process, as a user
types it: Python start-up, imports, loading the ensemble, features for the word, prediction, printing. Cases:
answer-list words (CRANE; EERIE on 2023-03-01, the notebook's holdout word) whose embeddings are cached, ADIEU
(an allowed guess but not an answer: its semantic embedding needs the embedding model, loaded once per process),
and ten words from a file (ADIEU among them). Writes benchmarks/results/cli.json. Target: <= 3 s wall.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from common import machine_info, publish  # noqa: E402

CASES = {
    "answer_word": ["predict", "crane", "--date", "2022-05-01"],
    "eerie_holdout": ["predict", "eerie", "--date", "2023-03-01"],
    "guess_not_an_answer": ["predict", "adieu", "--date", "2022-05-01"],
    "ten_words_file": None,  # filled in main: --words-file with ten words
}
TARGET_SECONDS = 3.0


def wall_seconds(argv: list[str], repeats: int) -> list[float]:
    """Wall time of ``repeats`` fresh `python -m wordle_moe.cli` processes (the console script's code path)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "wordle_moe.cli", *argv], capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{res.stderr}")
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model-dir", default=None, help="saved model folder (default: the CLI's default)")
    args = parser.parse_args(argv)
    from wordle_moe.cli import DEFAULT_MODELS, MODEL_DIR

    if args.model_dir is None and not any((MODEL_DIR / m / "model.json").is_file() for m in DEFAULT_MODELS):
        print(f"skipped: no saved model under {MODEL_DIR} (run `make run` first)")
        return {}
    words = ROOT / "benchmarks" / "results" / ".cli_words.csv"
    words.write_text("word,date\n" + "".join(f"{w},2022-06-01\n" for w in
                                             ("crane", "slate", "adieu", "mummy", "nymph", "caulk", "eerie", "parer",
                                              "gawky", "tacit")))
    extra = ["--model-dir", args.model_dir] if args.model_dir else []
    cases = {**CASES, "ten_words_file": ["predict", "--words-file", str(words), "--format", "csv"]}
    result: dict = {"machine": machine_info(), "repeats": args.repeats, "target_seconds": TARGET_SECONDS}
    for name, cmd in cases.items():
        times = wall_seconds(cmd + extra, args.repeats)
        result[f"{name}_median_s"] = round(statistics.median(times), 3)
        result[f"{name}_max_s"] = round(max(times), 3)
        result[f"{name}_within_target"] = statistics.median(times) <= TARGET_SECONDS
    words.unlink()
    return publish("cli", result)


if __name__ == "__main__":
    main()
