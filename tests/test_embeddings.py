"""Semantic distance: the allowed-guess cache gives the model's own values without loading the model."""
from __future__ import annotations

import numpy as np
import pytest

from wordle_moe import embeddings
from wordle_moe.wordlists import load_answers


@pytest.fixture
def small_guess_list(tmp_path, monkeypatch):
    """A 5-word 'allowed list' (3 answers, 2 guesses) and a private cache path, caches cleared around the test."""
    words = load_answers()[:3] + ["adieu", "roate"]
    monkeypatch.setattr(embeddings, "load_allowed", lambda: words)
    monkeypatch.setattr(embeddings, "guess_cache_path", lambda: tmp_path / "guess_distances.npy")
    embeddings._cached_guess_distances.cache_clear()
    yield words
    embeddings._cached_guess_distances.cache_clear()


def test_guess_cache_matches_direct_embedding_and_skips_the_model(small_guess_list, monkeypatch):
    direct = embeddings.semantic_distance(["adieu", "roate", "xylyl"])  # no cache yet: the model embeds them
    assert embeddings.guess_distances() is None
    cache = embeddings.guess_distances(build=True)
    assert set(cache) == set(small_guess_list)
    np.testing.assert_allclose([cache["adieu"], cache["roate"]], direct[:2], atol=1e-5)

    def no_model(words):
        raise AssertionError(f"the model was asked to embed {list(words)}")

    monkeypatch.setattr(embeddings, "embed", no_model)
    np.testing.assert_allclose(embeddings.semantic_distance(["roate", "adieu"]), direct[[1, 0]], atol=1e-5)
    with pytest.raises(AssertionError, match="xylyl"):  # a word in no list still needs the model
        embeddings.semantic_distance(["xylyl"])


def test_a_cache_of_another_word_list_is_ignored(small_guess_list):
    np.save(embeddings.guess_cache_path(), np.zeros(len(small_guess_list) + 1))
    assert embeddings.guess_distances() is None
