"""What every benchmark shares: timing a call, describing the machine, and publishing the figures."""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wordle_moe.io import write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of one call."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def machine_info() -> dict[str, Any]:
    """Cores, load average and versions: the context a timing needs to be read honestly."""
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def publish(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Print ``result`` one figure per line and write it to benchmarks/results/<name>.json."""
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")
    write_json(result, RESULTS_DIR / f"{name}.json")
    return result
