"""papermill engine ``wordle_moe`` (``papermill --engine wordle_moe``, as ``make run`` uses): papermill's own
nbclient engine, except that the kernel is stopped at once when the last cell has run.

By default nbclient asks the kernel to shut down; an IPython kernel then sends SIGTERM to its child processes in
rounds with growing pauses, and the worker pool's resource trackers ignore SIGTERM, so papermill waits ~2.5 s
until jupyter_client terminates the kernel anyway. Every output is written by then; the trackers clean up after
the kernel as they do after any exit.
"""
from __future__ import annotations

from typing import Any

from papermill.engines import NBClientEngine


class ImmediateShutdownEngine(NBClientEngine):
    """nbclient execution with ``shutdown_kernel="immediate"`` (the default is "graceful")."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        kwargs.setdefault("shutdown_kernel", "immediate")
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
