"""The Jupyter Book built from the executed notebooks, checked in a real browser.

The book is built in a temporary copy of the book sources (never the user's ``_build``) from the
notebooks that ``test_notebooks.py`` executed on the small store, with the same flags as
``make book`` (``-W -n --keep-going``: any warning fails). Then headless Chromium, with no network
but a local HTTP server, reads every page at 1400 px as a reader would (``browser_checks.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser_checks import CHROMEDRIVER, CHROMIUM, chromium, load, page_problems, serve
from guards import HANG_S
from norep import notebooks as nbrun

ROOT = Path(__file__).resolve().parents[1]

_BUILT: dict[str, Path] = {}


def _toc_files() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [ch["file"] for ch in part.get("chapters", [])]
    return files


def test_config_and_toc_are_consistent():
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert "references.bib" in cfg["bibtex_bibfiles"]
    files = _toc_files()
    chapters = [f for f in files if f.startswith("book/generated/")]
    assert chapters == [f"book/generated/{n}" for n in nbrun.NOTEBOOKS]
    for f in files:
        if not f.startswith("book/generated/"):
            assert (ROOT / f"{f}.md").exists(), f
    for pattern in (".venv", "stores/**", "notebooks/**", "tests/**", "lib/**", "README.md"):
        assert pattern in cfg["exclude_patterns"], pattern


def test_config_keeps_the_book_offline_and_its_launch_links_valid():
    """Math by KaTeX, whose script ships with its package (MathJax would come from a CDN), the book's
    extension that serves plotly.js and drops Thebe, and a book path that adds no "/./" to launch links."""
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = cfg["sphinx"]
    assert "sphinxcontrib.katex" in sphinx["extra_extensions"]
    assert sphinx["config"]["html_math_renderer"] == "katex"
    assert "mathml" in sphinx["config"]["katex_options"]
    assert not str(sphinx["config"]["katex_css_path"]).startswith("http")  # the default is a CDN
    ext = sphinx["local_extensions"]["norep_book"]
    assert (ROOT / ext / "norep_book.py").exists()
    rel = str(cfg["repository"]["path_to_book"]).strip("/")  # as sphinx-book-theme joins it into the links
    assert "./" not in f"{rel}/" and rel != ".", f"path_to_book {rel!r} puts /./ in the launch links"
    import sphinxcontrib.katex as katex

    assert (Path(katex.__file__).parent / "katex.min.js").exists()  # the script the book serves


def test_every_citation_is_in_the_bibliography():
    import re

    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    texts = [p.read_text() for p in [*(ROOT / "book").glob("*.md"), *(ROOT / "notebooks").glob("*.py")]]
    cited = {k for t in texts for group in re.findall(r"\{cite[pt]?\}`([^`]+)`", t) for k in group.split(",")}
    assert cited, "no citations found"
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"
    for key in (
        "gontijolopes2022norep",
        "geirhos2020beyond",
        "mania2019model",
        "kornblith2019better",
        "radford2021learning",
        "jia2021scaling",
        "guo2017calibration",
        "everingham2010pascal",
        "wolpert1992stacked",
        "andreassen2021evolution",
        "nixon2020bootstrapped",
    ):
        assert key in keys, key


def built_book(tmp_path_factory) -> Path:
    """Copy the book sources and the executed notebooks to a temporary root and build it once."""
    if "html" in _BUILT:
        return _BUILT["html"]
    from test_notebooks import executed_notebooks

    executed = executed_notebooks(tmp_path_factory)
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated", "_build"))
    gen = root / "book" / "generated"
    gen.mkdir()
    for p in executed["out"].iterdir():
        keep = p.suffix in (".ipynb", ".md", ".svg") and not p.name.endswith(".failed.ipynb")
        if keep and not p.name.startswith("."):
            shutil.copy(p, gen / p.name)
    jb = Path(sys.executable).with_name("jupyter-book")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(jb), "build", str(root), "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=root,
    )
    print(f"jupyter-book build: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "WARNING:" not in proc.stdout + proc.stderr, proc.stdout[-2000:]
    _BUILT["html"] = root / "_build" / "html"
    return _BUILT["html"]


@pytest.fixture(scope="session")
def html(tmp_path_factory):
    return built_book(tmp_path_factory)


@pytest.mark.slow
def test_book_builds_with_every_chapter(html):
    for f in _toc_files():
        page = html / f"{f}.html"
        assert page.exists(), page
    text = (html / "book" / "claims.html").read_text()
    assert "C1" in text and "reproduced" in text
    assert "Python" in (html / "book" / "reproducibility.html").read_text()


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)
def test_the_browser_checks_see_raw_tex_wide_elements_and_console_errors(tmp_path):
    """The page checks fail on a page that has each fault (and pass on one that has none)."""
    pytest.importorskip("selenium")
    site = tmp_path / "site"
    site.mkdir()
    body = '<main><article class="bd-article" style="width:600px">{}</article></main>'
    pages = {
        "clean.html": body.format(
            "<p>2 &lt; 3, 5 $ and <code>$x$ \\frac</code></p>"
            '<div style="overflow-x:auto"><table style="width:2000px"><tr><td>x</td></tr></table></div>'
        ),
        "tex.html": body.format("<p>the rate \\(\\frac{a}{b}\\) and $x_1$</p>"),
        "wide.html": body.format('<img style="width:1500px;height:10px">'),
        "error.html": body.format("<script>undefinedFunction()</script>"),
    }
    for name, text in pages.items():
        (site / name).write_text(
            f"<!doctype html><html><head><link rel=icon href=data:,></head><body>{text}</body></html>"
        )
    found = {}
    with serve(site) as base, chromium(tmp_path / "profile") as driver:
        for name in pages:
            load(driver, f"{base}/{name}")
            found[name] = {k: v for k, v in page_problems(driver).items() if v}
    assert found["clean.html"] == {}
    assert list(found["tex.html"]) == ["raw TeX"] and len(found["tex.html"]["raw TeX"]) == 1
    assert list(found["wide.html"]) == ["wider than the text column"]
    assert list(found["error.html"]) == ["console errors"]


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)
def test_every_page_reads_offline_without_raw_tex_console_errors_or_overflow(html, tmp_path):
    """Every page of the book in headless Chromium at 1400 px with no network but the local server:
    it loads, its images decode, it shows no traceback, no TeX left undrawn, no console error and
    nothing wider than the text column outside a scrolling container; the first page shows the verdict
    overview, the chapters a captioned figure, Plotly figures are drawn, papermill's parameters cell
    is not shown and the launch links are valid."""
    pytest.importorskip("selenium")
    pages = [f"{f}.html" for f in _toc_files()]
    problems = {}
    with serve(html) as base, chromium(tmp_path / "profile") as driver:
        n_images = n_math = 0
        for page in pages:
            url = f"{base}/{page}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.status == 200, url
            load(driver, url)
            title = driver.title
            assert title and "404" not in title, f"{page}: title {title!r}"
            imgs = driver.execute_script(
                "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);"
            )
            broken = [src for src, complete, width in imgs if not complete or width == 0]
            assert not broken, f"{page}: images that do not decode: {broken}"
            n_images += len(imgs)
            n_math += driver.execute_script("return document.querySelectorAll('article math').length;")
            body = driver.find_element("tag name", "body").text
            assert "Traceback" not in body, f"{page} shows a traceback"
            errors = driver.execute_script(
                "return document.querySelectorAll('.output.error, .output.traceback, div.cell_output .error').length;"
            )
            assert errors == 0, f"{page} shows an error output"
            assert driver.execute_script("return document.querySelectorAll('.tag_injected-parameters').length;") == 0
            links = driver.execute_script(
                "return Array.from(document.querySelectorAll('a')).map(a => a.href)"
                ".filter(h => /mybinder|colab[.]research/.test(h));"
            )
            assert all("/./" not in h for h in links), f"{page}: launch links {links}"
            drawn = driver.execute_script(
                "return Array.from(document.querySelectorAll('.plotly-graph-div'))"
                ".map(d => d.querySelectorAll('.main-svg').length > 0);"
            )
            assert all(drawn), f"{page}: a Plotly figure was not drawn"
            if page.startswith("book/generated/"):
                figures = driver.execute_script("return document.querySelectorAll('figure img').length;")
                assert figures >= 1, f"{page}: no captioned figure"
            if page == "book/intro.html":
                overview = driver.execute_script(
                    "const i = document.querySelector('figure.norep-overview img');"
                    "return i ? [i.currentSrc, i.naturalWidth, i.getBoundingClientRect().width] : null;"
                )
                assert overview and overview[0].endswith("overview.svg") and overview[1] > 0, overview
                assert overview[2] > 400, f"the overview figure is drawn {overview[2]} px wide"
            found = {k: v for k, v in page_problems(driver).items() if v}
            if found:
                problems[page] = found
        assert not problems, problems
        assert n_images >= 2 * len(nbrun.NOTEBOOKS)
        assert n_math > 0, "no math drawn anywhere: the book's formulas are gone or not rendered"
