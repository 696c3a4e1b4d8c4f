"""A self-contained HTML page of the executed notebook, for readers without Jupyter.

nbconvert's ``lab`` template, with the code cells hidden and every figure embedded as base64. The page
loads nothing from outside: the template's CDN scripts (RequireJS, MathJax, the Mermaid loader) are not
emitted or are removed, and ``external_loads`` is checked before the file is written.

Command line: ``python -m wordle_moe.html_report EXECUTED.ipynb OUT.html``
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from wordle_moe.io import write_text

# Things a browser fetches by itself: src attributes, <link href>, CSS url(...), JS import(...) of an absolute
# URL. An <a href> is a link the reader may follow, not a load.
_ABSOLUTE = r"((?:https?:)?//[^\"')\s>]+)"
_LOADS = [re.compile(p + _ABSOLUTE, re.IGNORECASE) for p in (
    r"""\bsrc\s*=\s*["']?""", r"""<link\b[^>]*?\bhref\s*=\s*["']?""", r"""url\(\s*["']?""",
    r"""\bimport\s*\(\s*["']""")]
# A tqdm progress line as papermill records it: "desc:  40%|####      | 12/30 [00:23<00:36,  2.01s/it]"
_PROGRESS_LINE = re.compile(r"^[^\n|]*\d+%\|[^|]*\|\s*\d+/\d+ \[[^\]]*\]\s*$")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_EMPTY_SCRIPT = re.compile(r"<script src=\"\">\s*</script>")
_MERMAID_LOADER = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>", re.S)


def external_loads(html: str) -> list[str]:
    """Every absolute URL the page would fetch (empty for a self-contained page)."""
    return sorted({url for pattern in _LOADS for url in pattern.findall(html)})


def without_progress_bars(nb: Any) -> Any:
    """The notebook without progress bars (they mean nothing on a finished page): tqdm lines in stderr streams and
    widget views (a progress widget's text fallback is a frozen bar); warnings and every other output stay."""
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            if _WIDGET_VIEW in out.get("data", {}):
                continue
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = re.split(r"[\r\n]+", out.get("text", ""))
                text = "\n".join(line for line in lines if line.strip() and not _PROGRESS_LINE.match(line.strip()))
                if not text:
                    continue
                out["text"] = text + "\n"
            kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept
    return nb


def notebook_html(notebook: str | Path, title: str = "Wordle MoE workbench") -> str:
    """The executed notebook as one self-contained HTML page: outputs and markdown, code hidden."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = without_progress_bars(nbformat.read(str(notebook), as_version=4))
    nb.metadata.pop("widgets", None)  # widget views need a CDN renderer; their text fallback is kept
    nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True,
                            mathjax_url="", require_js_url="", widget_renderer_url="")
    html, _ = exporter.from_notebook_node(nb)
    return _MERMAID_LOADER.sub("", _EMPTY_SCRIPT.sub("", html))


def write_html_report(notebook: str | Path, out: str | Path) -> Path:
    """Write ``notebook_html(notebook)`` to ``out`` atomically; refuse a page that would fetch anything."""
    html = notebook_html(notebook)
    loads = external_loads(html)
    if loads:
        raise RuntimeError(f"the HTML report would load external resources: {loads}")
    return write_text(html, out)


def main(argv: list[str] | None = None) -> int:
    """The command line (a process of its own: ``make run`` builds every report this way)."""
    # jsonschema (under nbformat) imports the optional rfc3987_syntax when it is installed, whose grammar takes
    # ~0.75 s to build at import; nbformat never checks IRIs. Marked missing for this process only.
    sys.modules.setdefault("rfc3987_syntax", None)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m wordle_moe.html_report EXECUTED.ipynb OUT.html", file=sys.stderr)
        return 2
    path = write_html_report(*args)
    print(f"HTML report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
