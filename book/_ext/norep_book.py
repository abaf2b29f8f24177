"""Sphinx extension of the book (``_config.yml``: ``sphinx.local_extensions``): pages that need no network.

* Printed output wraps at the text column (``norep.css``).
* The scripts that interactive outputs need are served from the book's own ``_static/norep/``
  folder, copied from the installed Python packages (plotly.js from ``plotly``), and added only to
  the pages that hold such an output.
* sphinx-thebe's scripts are dropped: the book does not use Thebe (the launch buttons open Binder
  or Colab), and its inline configuration, added twice, declared ``THEBE_JS_URL`` twice (a console
  error on every page) and named a script on a CDN.
* Math is rendered by KaTeX (``sphinxcontrib.katex``, whose package ships the script) to MathML,
  which browsers draw without fonts or style sheets from elsewhere.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

_STATIC = "norep"
PLOTLY_MARKER = "plotly-graph-div"
"""A page whose HTML holds this class has a Plotly figure and gets plotly.js."""


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.exists() else None


CSS = """
/* printed output wraps at the text column instead of running 2,000 px to the right */
div.cell_output div.output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
/* the verdict overview and other wide figures never exceed the column */
figure.norep-overview img, div.norep-interactive { max-width: 100%; height: auto; }
/* display math (KaTeX's MathML) gets room above and below */
div.math { margin: 0.8em 0; overflow-x: auto; }
"""
"""The book's own style sheet (``_static/norep/norep.css``, on every page)."""


def _copy_scripts(app) -> None:
    """Put the bundled scripts and the style sheet in a static folder of this build (``_static/norep/``)."""
    folder = Path(tempfile.mkdtemp(prefix="norep-static-"))
    (folder / _STATIC).mkdir()
    (folder / _STATIC / "norep.css").write_text(CSS)
    app.add_css_file(f"{_STATIC}/norep.css")
    js = _plotly_js()
    if js is not None:
        shutil.copyfile(js, folder / _STATIC / "plotly.min.js")
    app._norep_static = folder
    app.config.html_static_path.append(str(folder))


def _remove_static(app, exception) -> None:
    folder = getattr(app, "_norep_static", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _is_thebe(script) -> bool:
    name = str(getattr(script, "filename", script) or "")
    body = str(getattr(script, "attributes", {}).get("body", ""))
    return name.endswith("sphinx-thebe.js") or "thebe" in name.lower() or "THEBE_JS_URL" in body


def _page_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop Thebe's scripts from every page; add plotly.js to the pages with a Plotly figure."""
    files = context.get("script_files")
    if files is not None:  # the builder's own list: edited in place, Sphinx restores it after the page
        files[:] = [s for s in files if not _is_thebe(s)]
    body = context.get("body", "")
    if PLOTLY_MARKER in body and _plotly_js() is not None:
        app.add_js_file(f"{_STATIC}/plotly.min.js", priority=400)


def setup(app):
    app.connect("builder-inited", _copy_scripts)
    app.connect("build-finished", _remove_static)
    app.connect("html-page-context", _page_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
