"""Progress bars that show where the notebook runs: widgets in JupyterLab, plain text lines in papermill's log."""
from __future__ import annotations

import os
from typing import Any

PROGRESS_ENV = "WORDLE_MOE_PROGRESS"  # widgets | text: overrides the detection below


def _under_papermill() -> bool:
    """True when this kernel was started by papermill (its parent process runs papermill): no browser draws widgets."""
    try:
        import psutil

        parent = psutil.Process().parent()
        return parent is not None and any("papermill" in part for part in parent.cmdline())
    except Exception:  # psutil missing or the process table unreadable: assume an interactive front end
        return False


def configure_progress() -> str:
    """Make the engine's ``tqdm.auto`` bars visible where the notebook runs; returns "widgets" or "text".

    In JupyterLab tqdm.auto draws ipywidgets bars. Under papermill no browser renders them, so its log would
    show a bar at 0% and nothing more: there the bars become plain text written at most every 10 s, which
    ``papermill --log-output`` prints as the work goes on. Call before importing the engine modules that
    bind ``tqdm.auto.tqdm`` at import (evaluation, search); ``WORDLE_MOE_PROGRESS`` overrides the detection.
    """
    import tqdm.auto
    import tqdm.std

    mode = os.environ.get(PROGRESS_ENV) or ("text" if _under_papermill() else "widgets")
    if mode == "text":
        class LogBar(tqdm.std.tqdm):
            """A text bar for logs: ASCII, a new line at most every 10 s instead of rapid carriage returns."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("mininterval", 10.0)
                kwargs.setdefault("ascii", True)
                kwargs["leave"] = True  # keep the final line in the log
                super().__init__(*args, **kwargs)

        tqdm.auto.tqdm = LogBar
        tqdm.auto.trange = lambda *args, **kwargs: LogBar(range(*args), **kwargs)
    return mode
