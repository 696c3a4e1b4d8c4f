"""Where the project's files live, resolved from the repository root."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
OUTPUT_DIR = ROOT / "moe_bootstrap_output"
RAW_DATA = DATA_DIR / "Problem_C_Data_Wordle.xlsx"
ANSWERS = DATA_DIR / "wordle_answers.txt"
ALLOWED = DATA_DIR / "wordle_allowed_guesses.txt"
FEATURES_CSV = DATA_DIR / "features.csv"

# The seven result buckets, in order: solved in 1..6 tries, then failed (7 or more / X).
TRY_COLUMNS = ["try_1", "try_2", "try_3", "try_4", "try_5", "try_6", "try_7_or_more"]
PRED_COLUMNS = [
    "pred_1_try", "pred_2_tries", "pred_3_tries", "pred_4_tries",
    "pred_5_tries", "pred_6_tries", "pred_7_or_more_tries",
]
BUCKET_LABELS = ["1", "2", "3", "4", "5", "6", "X"]
N_BUCKETS = 7
