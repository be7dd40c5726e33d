"""The built documentation site, opened in headless Chromium with the network off: formulas rendered by the
site's own MathJax, every sidebar link resolving, search finding an exported class, no nbdev directive on any page.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`), so no driver package is
needed. `.ci/run` installs Debian's `chromium`; without a browser these tests skip and say so. Screenshots of the
home page and of 12_exp3 are kept in `_docs/screenshots/` for review.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_docs"
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # any host name fails to resolve: the network is off
         "--remote-debugging-pipe", "about:blank"]
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine: `apt-get install chromium` "
                                   "(as .ci/run does) to run the browser checks of the docs site")


class Browser:
    "A headless Chromium driven over the DevTools protocol on file descriptors 3 (commands) and 4 (replies)."
    def __init__(self, profile: Path):
        to_chrome, self._send = os.pipe()
        self._recv, from_chrome = os.pipe()
        def wire():  # in the child: the command pipe on fd 3, the reply pipe on fd 4
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3); os.dup2(b, 4)
        self.proc = subprocess.Popen([BROWSER, *FLAGS, f"--user-data-dir={profile}"], preexec_fn=wire,
                                     close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome); os.close(from_chrome)
        self._id, self._buf, self.events = 0, b"", []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime"): self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=1280, height=1400, deviceScaleFactor=1,
                  mobile=False)

    def _message(self, timeout=30.0) -> dict:
        deadline = time.time() + timeout
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._recv], [], [], max(0.0, deadline - time.time()))
            if not ready: raise TimeoutError(f"Chromium did not answer within {timeout} s")
            chunk = os.read(self._recv, 1 << 20)
            if not chunk: raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: bool = False, **params) -> dict:
        "Send one DevTools command and return its result (events that arrive meanwhile are kept in `events`)."
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session: msg["sessionId"] = self.session
        os.write(self._send, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply: raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def js(self, expression: str):
        "The value of a JavaScript expression in the page (promises awaited)."
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result: raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0):
        "Poll a JavaScript expression until it is truthy; return its value (or the last falsy one at the timeout)."
        deadline = time.time() + timeout
        while True:
            value = self.js(expression)
            if value or time.time() > deadline: return value
            time.sleep(0.1)

    def open(self, page: Path):
        "Load a page of the site and wait until it has loaded."
        self.call("Page.navigate", session=True, url=page.resolve().as_uri())
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png")["data"]))

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self):
        try: self.call("Browser.close")
        except Exception: pass
        try: self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired: self.proc.kill()


@pytest.fixture(scope="module")
def site():
    "Build the site into _docs/ once for this module (the build itself must take under 2 minutes)."
    start = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), str(SITE)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert time.time() - start < 240, f"the docs build took {time.time() - start:.0f} s"
    return SITE


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    if BROWSER is None: pytest.skip("no Chromium on this machine")
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.glob("*.html") if p.name != "404.html")


@needs_browser
def test_formulas_on_exp3_are_rendered_by_the_sites_mathjax(site, browser):
    browser.open(site / "12_exp3.html")
    marked = browser.js("document.querySelectorAll('.arithmatex').length")
    assert marked >= 5, "the EXP3 page should hold its formulas"
    rendered = browser.wait_for(f"document.querySelectorAll('.arithmatex mjx-container').length >= {marked} && "
                                "document.querySelectorAll('.arithmatex mjx-container').length")
    assert rendered >= marked, f"MathJax typeset {rendered} of {marked} formulas"
    assert browser.js("document.querySelectorAll('.arithmatex mjx-container[display=\"true\"]').length") >= 1
    assert browser.js("document.querySelectorAll('mjx-merror').length") == 0, "a TeX error in a formula"
    visible = browser.js("document.querySelector('article').innerText")
    for raw in ("$$", "\\[", "\\(", "\\hat S", "\\frac"):
        assert raw not in visible, f"raw TeX {raw!r} left in the visible text"
    browser.screenshot(site / "screenshots" / "12_exp3.png")
    assert browser.wait_for("[...document.fonts].some(f => f.family === 'MJXTEX' && f.status === 'loaded')"), \
        "MathJax's fonts did not load from the site"
    foreign = [u for u in browser.requested_urls() if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert not foreign, f"the page requested resources off the site: {foreign}"
    failed = [e["params"] for e in browser.events if e.get("method") == "Network.loadingFailed"]
    assert not failed, f"resources of the site failed to load: {failed}"


@needs_browser
def test_every_sidebar_link_resolves_and_no_page_shows_directives(site, browser):
    checked = set()
    for page in pages(site):
        browser.open(page)
        links = browser.js("[...document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]')]"
                           ".map(a => a.href)")
        targets = {Path(unquote(urlparse(u).path)) for u in links if urlparse(u).scheme == "file"}
        assert len(targets) >= len(pages(site)) - 1, f"{page.name}: the sidebar lists only {len(targets)} pages"
        missing = [str(t) for t in targets if not t.is_file()]
        assert not missing, f"{page.name}: sidebar links to missing pages {missing}"
        text = browser.js("document.body.innerText")
        for directive in ("#| export", "#| hide", "#| default_exp", "In [", "Out["):
            assert directive not in text, f"{page.name} shows {directive!r}"
        checked.add(page.name)
        if page.name == "index.html": browser.screenshot(site / "screenshots" / "index.png")
    assert {"index.html", "12_exp3.html"} <= checked


@needs_browser
def test_search_finds_the_expo_selector(site, browser):
    browser.open(site / "index.html")
    browser.js("document.querySelector('input[data-md-component=search-query]').focus()")
    for ch in "ExpoSelector":
        browser.call("Input.dispatchKeyEvent", session=True, type="keyDown", text=ch, key=ch)
        browser.call("Input.dispatchKeyEvent", session=True, type="keyUp", key=ch)
    hits = browser.wait_for("[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)"
                            ".filter(h => h.includes('12_exp3.html'))", timeout=30)
    assert hits, "search for ExpoSelector found no result on 12_exp3"
    assert any(h.endswith("#exposelector") for h in hits), hits  # the API reference entry of the class
    target = Path(unquote(urlparse(hits[0]).path))
    assert target.is_file()
