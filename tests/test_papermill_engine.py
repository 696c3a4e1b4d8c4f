"""The papermill engine `wordle_moe`: papermill's nbclient engine with an immediate kernel shutdown."""
import papermill.engines
from papermill.engines import papermill_engines

from wordle_moe.papermill_engine import ImmediateShutdownEngine


def test_the_entry_point_names_the_engine():
    assert papermill_engines.get_engine("wordle_moe") is ImmediateShutdownEngine


def test_the_kernel_is_shut_down_immediately_unless_asked_otherwise(monkeypatch):
    seen = []

    class Client:
        def __init__(self, nb_man, **kwargs):
            seen.append(kwargs)

        def execute(self):
            return "executed"

    monkeypatch.setattr(papermill.engines, "PapermillNotebookClient", Client)
    assert ImmediateShutdownEngine.execute_managed_notebook(None, "python3", log_output=True) == "executed"
    ImmediateShutdownEngine.execute_managed_notebook(None, "python3", shutdown_kernel="graceful")
    assert [k["shutdown_kernel"] for k in seen] == ["immediate", "graceful"]
    assert seen[0]["kernel_name"] == "python3" and seen[0]["log_output"] is True


def test_the_command_line_is_papermills_without_the_iri_grammar():
    import subprocess
    import sys

    code = ("import runpy, sys; sys.argv = ['papermill', '--help']\n"
            "try:\n    runpy.run_module('wordle_moe.papermill_engine', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('IRI grammar imported:', sys.modules.get('rfc3987_syntax') is not None)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "Usage: papermill [OPTIONS] NOTEBOOK_PATH" in res.stdout
    assert "IRI grammar imported: False" in res.stdout
