"""papermill engine ``wordle_moe`` (``papermill --engine wordle_moe``): papermill's own nbclient engine, except that
the kernel is stopped at once when the last cell has run; and papermill's command line, started faster
(``python -m wordle_moe.papermill_engine ARGS`` = ``papermill ARGS``, as ``make run`` uses).

By default nbclient asks the kernel to shut down; an IPython kernel then sends SIGTERM to its child processes in
rounds with growing pauses, and the worker pool's resource trackers ignore SIGTERM, so papermill waits ~2.5 s
until jupyter_client terminates the kernel anyway. Every output is written by then; the trackers clean up after
the kernel as they do after any exit.
"""
from __future__ import annotations

import sys
from typing import Any

if __name__ == "__main__":
    # jsonschema (under papermill's nbformat) imports the optional rfc3987_syntax when it is installed and builds
    # its grammar at import (~0.9 s of papermill's start); nbformat never checks IRIs. This process only.
    sys.modules.setdefault("rfc3987_syntax", None)

from papermill.engines import NBClientEngine  # noqa: E402


class ImmediateShutdownEngine(NBClientEngine):
    """nbclient execution with ``shutdown_kernel="immediate"`` (the default is "graceful")."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        kwargs.setdefault("shutdown_kernel", "immediate")
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


def main() -> None:
    """papermill's command line."""
    from papermill.cli import papermill

    papermill(prog_name="papermill")


if __name__ == "__main__":
    main()
