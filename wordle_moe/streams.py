"""One independent random stream per replica and purpose, derived from (seed, replica) alone.

Replica r of a run with seed s owns ``SeedSequence(s, spawn_key=(r, purpose))`` — the same child as
``SeedSequence(s).spawn(B)[r]`` extended by a purpose key — for its resample, its initial weights, its
dropout masks and its router noise. So replica r's draws depend neither on B nor on which other
replicas are still training, and runs with seeds s and s+1 share no replica (the old ``seed + r``
scheme made them share B−1).
"""
from __future__ import annotations

import numpy as np
import torch

RESAMPLE, INIT, DROPOUT, NOISE = 0, 1, 2, 3


def seed_sequence(seed: int, replica: int, purpose: int) -> np.random.SeedSequence:
    """The SeedSequence of one replica's stream for one purpose (RESAMPLE, INIT, DROPOUT, NOISE)."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(replica), int(purpose)))


def numpy_stream(seed: int, replica: int, purpose: int) -> np.random.Generator:
    """A numpy Generator (SFC64: fast bytes for dropout masks) on one replica's stream."""
    return np.random.Generator(np.random.SFC64(seed_sequence(seed, replica, purpose)))


def torch_stream(seed: int, replica: int, purpose: int) -> torch.Generator:
    """A CPU torch.Generator seeded from one replica's stream (64 bits of its SeedSequence)."""
    state = int(seed_sequence(seed, replica, purpose).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(state)


def resample_counts(n: int, B: int, seed: int) -> np.ndarray:
    """Bootstrap counts (B, n): row r is a multinomial(n, 1/n) draw from replica r's RESAMPLE stream."""
    return np.stack([np.random.default_rng(seed_sequence(seed, r, RESAMPLE)).multinomial(n, np.full(n, 1.0 / n))
                     for r in range(B)]) if B > 0 else np.zeros((0, n), dtype=np.int64)


def leading_rows(w: torch.Tensor) -> list[int]:
    """Per replica (rows of w (R, n)), 1 + the index of its last positive-weight row: the rows that draw
    random numbers. The trainer packs each replica's rows first and pads with weight 0, so a replica's
    draws do not depend on how far other replicas pad the batch."""
    pos = w > 0
    last = w.shape[1] - pos.flip(1).int().argmax(dim=1)
    return torch.where(pos.any(dim=1), last, torch.zeros_like(last)).tolist()
