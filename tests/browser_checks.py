"""What a reader of the built book sees in headless Chromium, page by page (used by test_book.py).

Each check is a JavaScript function run in the loaded page, returning a list of problems (empty when
the page is fine), so that a failure names the page and the offending text or element.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import sys
import threading
import time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

_TEX_COMMANDS = "frac|mathrm|mathbf|text|operatorname|sum|hat|theta|alpha|beta|cdot|times|leq|geq|log|sqrt|mathbb"
RAW_TEX_JS = (
    r"""
const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "MATH", "ANNOTATION", "NOSCRIPT"]);
const root = document.querySelector("article.bd-article") || document.body;
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
const tex = /\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$\n]{0,200}\$|\\(COMMANDS)(?![a-zA-Z])/;
const bad = [];
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  let el = n.parentElement, hidden = false;
  for (let a = el; a && a !== root.parentElement; a = a.parentElement) {
    const math = a.namespaceURI === "http://www.w3.org/1998/Math/MathML";
    if (skip.has(a.tagName.toUpperCase()) || math) { hidden = true; break; }
  }
  if (hidden || !el.getClientRects().length) continue;
  const m = n.textContent.match(tex);
  if (m) bad.push(n.textContent.trim().slice(0, 120));
}
return bad;
"""
).replace("COMMANDS", _TEX_COMMANDS)
"""Visible text outside code and rendered math that still holds TeX (``\\(``, ``$...$``, ``\\frac``...)."""

WIDE_JS = r"""
const col = document.querySelector("article.bd-article");
if (!col) return ["no article.bd-article"];
const limit = col.getBoundingClientRect().right + 2, left = col.getBoundingClientRect().left - 2;
const bad = [];
function scrolls(el) {
  for (let a = el.parentElement; a && a !== col; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (["auto", "scroll", "hidden", "clip"].includes(s.overflowX)) return true;
  }
  return false;
}
for (const el of col.querySelectorAll("*")) {
  const r = el.getBoundingClientRect();
  if (!r.width || (r.right <= limit && r.left >= left)) continue;
  if (scrolls(el)) continue;
  bad.push(`${el.tagName.toLowerCase()}.${String(el.className).slice(0, 60)} ${Math.round(r.width)} px`);
  if (bad.length > 5) break;
}
return bad;
"""
"""Elements reaching beyond the text column that no scrolling (or clipping) container holds."""


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on a free local port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _QuietServer(("127.0.0.1", 0), handler)
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


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser dropped a request it no longer needs
            super().handle_error(request, client_address)


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1400, height: int = 900):
    """Headless Chromium with no network beyond the local server; the browser log is readable."""
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
        # offline: every host but the local server resolves nowhere
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def load(driver, url: str, timeout: float = 30) -> None:
    """Open ``url`` and wait until the document and its images are complete and math is drawn."""
    driver.get(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = driver.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete);"
        )
        if done:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # the math renderer runs on DOMContentLoaded; plotly draws right after load


def console_errors(driver) -> list[str]:
    """The browser log's errors since the last call (SEVERE entries)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def page_problems(driver) -> dict[str, list[str]]:
    """Raw TeX and over-wide elements of the loaded page, and its console errors."""
    return {
        "raw TeX": driver.execute_script(RAW_TEX_JS),
        "wider than the text column": driver.execute_script(WIDE_JS),
        "console errors": console_errors(driver),
    }
