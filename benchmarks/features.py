"""Benchmark of the data+features stage: feedback table (scratch/cache) and build_features for all answers.

Run: .venv/bin/python benchmarks/features.py   (writes benchmarks/results/features.json)
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


from common import machine_info, publish, timed  # noqa: E402

from wordle_moe import embeddings, features, feedback, solvers  # noqa: E402
from wordle_moe.wordlists import load_answers  # noqa: E402


def main() -> dict:
    """Measure once and write benchmarks/results/features.json."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    res: dict = {"note": "one measurement each"}
    table, res["feedback_table_scratch_s"] = timed(feedback.build_feedback_table)
    cached = feedback.feedback_table()  # ensure the cache file exists
    assert (cached == table).all()
    feedback.feedback_table.cache_clear()
    _, res["feedback_table_from_cache_s"] = timed(feedback.feedback_table)
    res["feedback_table_shape"] = list(table.shape)
    res["feedback_table_mb"] = round(table.nbytes / 2**20, 1)

    for s in solvers.SOLVERS:
        dist, res[f"solver_{s}_all_answers_s"] = timed(lambda s=s: solvers.simulate_answers(s))
        res[f"solver_{s}_mean_tries"] = round(float(solvers.mean_tries(dist).mean()), 4)
        res[f"solver_{s}_fail_rate"] = round(float(dist[:, 6].mean()), 4)

    _, res["embedding_model_load_s"] = timed(embeddings.load_model)
    _, res["answer_embeddings_scratch_s"] = timed(lambda: embeddings.embed(load_answers()))
    model_dir = embeddings.model_path()
    res["embedding_model_mb"] = round(sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) / 2**20, 1)

    # all features for all answers with the solver cache removed (simulations included),
    # feedback table and answer embeddings cached (measured separately above)
    solvers.answer_results.cache_clear()
    solvers.cache_path().unlink(missing_ok=True)
    words = load_answers()
    frame, res["build_features_all_answers_s"] = timed(lambda: features.build_features(words))
    res["build_features_rows"] = len(frame)
    res["n_feature_columns"] = len(features.feature_columns(frame))
    _, res["build_features_all_answers_cached_s"] = timed(lambda: features.build_features(words))
    _, res["build_features_one_unplayed_word_s"] = timed(lambda: features.build_features(["xylyl"]))
    res["aims"] = {"feedback_table_scratch_s": 10, "build_features_all_answers_s": 60}
    res = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}
    return publish("features", {**res, **machine_info()})


if __name__ == "__main__":
    main()
