"""Synthetic data shared by the engine tests: a learnable soft-label problem with a fixed seed."""
import numpy as np


def softmax_linear_data(n: int, d: int, seed: int = 0, scale: float = 0.4, loc: float = 0.0,
                        spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Features X ~ N(loc, spread²) of shape (n, d) and targets P = softmax(scale · X W), rows summing to 1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * spread + loc
    P = np.exp(X @ rng.normal(size=(d, 7)) * scale)
    return X, P / P.sum(1, keepdims=True)
