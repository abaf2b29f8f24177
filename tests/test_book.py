"""The Jupyter Book built from the executed notebooks, checked in a real browser.

The book is built in a temporary copy of the book sources (never the user's ``_build``) from the
notebooks that ``test_notebooks.py`` executed on the small store, with the same flags as
``make book`` (``-W -n --keep-going``: any warning fails). Then headless Chromium loads every
chapter from a local HTTP server and checks that the page loads, that every image decodes and
that no page shows a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from guards import HANG_S
from norep import notebooks as nbrun

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

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
        if p.suffix in (".ipynb", ".md") and not p.name.startswith(".") and not p.name.endswith(".failed.ipynb"):
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


@contextlib.contextmanager
def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)
def test_pages_load_images_decode_no_traceback(html, tmp_path):
    pytest.importorskip("selenium")
    pages = [f"{f}.html" for f in _toc_files()]
    with _serve(html) as base, _chromium(tmp_path / "profile") as driver:
        n_images = 0
        for page in pages:
            url = f"{base}/{page}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.status == 200, url
            driver.get(url)
            deadline = time.time() + 30
            while driver.execute_script("return document.readyState") != "complete" and time.time() < deadline:
                time.sleep(0.1)
            title = driver.title
            assert title and "404" not in title, f"{page}: title {title!r}"
            imgs = []
            while time.time() < deadline:
                imgs = driver.execute_script(
                    "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);"
                )
                if all(c for _, c, _ in imgs):
                    break
                time.sleep(0.2)
            broken = [src for src, complete, width in imgs if not complete or width == 0]
            assert not broken, f"{page}: images that do not decode: {broken}"
            n_images += len(imgs)
            body = driver.find_element("tag name", "body").text
            assert "Traceback" not in body, f"{page} shows a traceback"
            errors = driver.execute_script(
                "return document.querySelectorAll('.output.error, .output.traceback, div.cell_output .error').length;"
            )
            assert errors == 0, f"{page} shows an error output"
            if page.startswith("book/generated/"):
                figures = driver.execute_script("return document.querySelectorAll('figure img').length;")
                assert figures >= 1, f"{page}: no captioned figure"
        assert n_images >= 2 * len(nbrun.NOTEBOOKS)
