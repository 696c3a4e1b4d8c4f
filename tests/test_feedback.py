"""Feedback patterns: hand-worked repeated-letter cases, a slow reference on random pairs, the cached table."""
import numpy as np
import pytest

from wordle_moe import feedback as fb
from wordle_moe.wordlists import load_allowed, load_answers


def reference_pattern(guess: str, answer: str) -> str:
    """Obviously-correct two-pass Wordle scoring, one pair at a time."""
    out = ["."] * 5
    remaining = {}
    for i in range(5):
        if guess[i] == answer[i]:
            out[i] = "G"
        else:
            remaining[answer[i]] = remaining.get(answer[i], 0) + 1
    for i in range(5):
        if out[i] != "G" and remaining.get(guess[i], 0) > 0:
            out[i] = "Y"
            remaining[guess[i]] -= 1
    return "".join(out)


@pytest.mark.parametrize("guess,answer,pattern", [
    ("speed", "abide", "..Y.Y"),   # second e grey: abide has one e
    ("eerie", "there", "Y.Y.G"),   # last e green uses one of two e's; first e yellow, second grey
    ("abide", "speed", "...YY"),
    ("llama", "hello", "YY..."),   # both l yellow: hello has two non-green l's
    ("sassy", "essay", "YYG.G"),   # third s grey: the green s consumed one, the first s the other
    ("crane", "crane", "GGGGG"),
    ("fuzzy", "cigar", "....."),
])
def test_hand_worked_patterns(guess, answer, pattern):
    code = int(fb.feedback_codes([guess], [answer])[0, 0])
    assert fb.pattern_string(code) == pattern
    assert reference_pattern(guess, answer) == pattern


def test_code_encoding_is_base3_position0_least_significant():
    assert fb.pattern_code("GGGGG") == fb.ALL_GREEN == 242
    assert fb.pattern_code(".....") == 0
    assert fb.pattern_code("Y....") == 1 and fb.pattern_code("G....") == 2 and fb.pattern_code(".Y...") == 3
    for code in (0, 17, 100, 242):
        assert fb.pattern_code(fb.pattern_string(code)) == code


def test_random_pairs_match_reference():
    rng = np.random.default_rng(0)
    allowed = load_allowed()
    # real words plus letter soup with many repeats (small alphabet) to stress duplicate handling
    words = [allowed[i] for i in rng.integers(len(allowed), size=60)]
    words += ["".join(rng.choice(list("aeb"), size=5)) for _ in range(40)]
    codes = fb.feedback_codes(words, words)
    for i, g in enumerate(words):
        for j, a in enumerate(words):
            assert fb.pattern_string(codes[i, j]) == reference_pattern(g, a), (g, a)


def test_encode_and_invalid_words():
    assert fb.encode_words(["abcde", "ZZZZZ"]).tolist() == [[0, 1, 2, 3, 4], [25] * 5]
    for bad in ["abcd", "abcdef", "ab1de", "naïve", ""]:
        with pytest.raises(ValueError, match="five-letter"):
            fb.encode_words([bad])


def test_feedback_table_cached_and_consistent():
    table = fb.feedback_table()
    assert table.shape == (12972, 2315) and table.dtype == np.uint8
    assert fb.table_path().exists()
    assert fb.feedback_table() is table  # memoised in the process
    allowed, answers = load_allowed(), load_answers()
    rng = np.random.default_rng(1)
    rows = rng.integers(len(allowed), size=20)
    np.testing.assert_array_equal(table[rows], fb.feedback_codes([allowed[r] for r in rows], answers))
    # answers come first in the allowed list, so the diagonal of the answer block is all green
    assert (np.diagonal(table[:2315]) == fb.ALL_GREEN).all()
    assert table.max() == fb.ALL_GREEN


def test_pattern_entropy_matches_counts():
    codes = np.array([[0, 0, 1, 1], [5, 5, 5, 5], [0, 1, 2, 3]])
    np.testing.assert_allclose(fb.pattern_entropy(codes), [1.0, 0.0, 2.0])
