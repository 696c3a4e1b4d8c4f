"""The HTML report: a self-contained page (figures embedded, code hidden, nothing fetched from outside)."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

from wordle_moe.html_report import external_loads, notebook_html, write_html_report  # noqa: E402


def _png() -> bytes:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _executed_notebook(tmp_path, png: bytes):
    cell = new_code_cell("SECRET_CODE_LINE = 1\nplot()", execution_count=1)
    cell.outputs = [new_output("display_data", data={"image/png": base64.b64encode(png).decode()})]
    nb = new_notebook(cells=[new_markdown_cell("# Title\nSome $x^2$ maths."), cell])
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return path


def test_report_embeds_figures_hides_code_and_loads_nothing(tmp_path):
    png = _png()
    out = write_html_report(_executed_notebook(tmp_path, png), tmp_path / "report.html")
    html = out.read_text()
    assert base64.b64encode(png).decode() in html
    assert "SECRET_CODE_LINE" not in html and "Title" in html
    assert external_loads(html) == []
    assert out.stat().st_mode & 0o777 != 0o600  # readable by others (umask permitting)


def test_plain_template_output_would_fetch_from_cdns(tmp_path):
    """The check is not vacuous: nbconvert's stock lab page loads RequireJS and MathJax from a CDN."""
    from nbconvert import HTMLExporter

    stock, _ = HTMLExporter(template_name="lab").from_filename(str(_executed_notebook(tmp_path, _png())))
    assert any("require" in url for url in external_loads(stock))
    assert external_loads(notebook_html(_executed_notebook(tmp_path, _png()))) == []


def test_external_loads_finds_each_kind_of_fetch():
    html = ('<script src="https://a.example/x.js"></script><link href="//b.example/y.css">'
            '<style>@import url("https://c.example/z.css")</style><script>import("https://d.example/m.mjs")</script>'
            '<a href="https://link.example/">https://text.example/not-a-load</a><img src="data:image/png;base64,AAAA">')
    assert external_loads(html) == ["//b.example/y.css", "https://a.example/x.js", "https://c.example/z.css",
                                    "https://d.example/m.mjs"]


def test_progress_bars_are_dropped_but_warnings_kept(tmp_path):
    cell = new_code_cell("train()", execution_count=1)
    cell.outputs = [
        new_output("stream", name="stderr", text="protocol A:  40%|####      | 12/30 [00:23<00:36,  2.01s/it]\r"
                                                  "protocol A: 100%|##########| 30/30 [00:56<00:00,  1.89s/it]\n"),
        new_output("stream", name="stderr", text="UserWarning: date 2026-11-28 clamped to 2022-12-31\n"
                                                  "bootstrap:  50%|#####     | 1/2 [00:01<00:01,  1.00it/s]\n"),
        new_output("stream", name="stdout", text="RESULT 42\n"),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                         "text/plain": "grid search:   0%|          | 0/8 [00:00<?, ?it/s]"}),
    ]
    path = tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    html = notebook_html(path)
    assert "it/s" not in html and "s/it" not in html and "12/30" not in html and "0/8" not in html
    assert "clamped to 2022-12-31" in html and "RESULT 42" in html
