"""The built site in a real browser: every recipe page loads all its images, with no console errors.

Builds the site with ``mkdocs build --strict`` into the build folder (``site/``), serves
it over http on 127.0.0.1 from a local http.server thread, and opens every recipe page
in headless Chromium (Debian's chromium + chromium-driver) through selenium. It saves
screenshots of two pages into ``site/screenshots/``.

Without Chromium the test is skipped with the reason, except in CI (``CI=true``), where
it fails: the CI machine must run it.
"""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from cookbook import registry

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = ("index", "inception_v1")  # the home page and the stage-by-stage walk
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1400,1600")

pytestmark = pytest.mark.browser


def _missing():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return missing


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        reason = f"headless Chromium is not installed ({', '.join(missing)}); apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="cookbook-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(SITE)],
                          check=False, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-4000:]}"
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


IMAGES_SCRIPT = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
Promise.all(images.map(img => img.complete ? null : new Promise(r => { img.onload = r; img.onerror = r; })))
  .then(() => done(images.map(img => [img.getAttribute('src'), img.naturalWidth])));
"""


def _visit(browser, url):
    browser.get(url)
    browser.set_script_timeout(60)
    images = browser.execute_async_script(IMAGES_SCRIPT)
    errors = [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]
    return images, errors


def test_every_recipe_page_loads_all_images_without_console_errors(browser, server):
    pages = ["", "recipes/", "performance/"] + [f"recipes/{name}/" for name in registry.names()]
    problems = []
    for page in pages:
        images, errors = _visit(browser, f"{server}/{page}")
        if page.startswith("recipes/") and page != "recipes/" and not images:
            problems.append(f"{page}: no images at all")
        problems += [f"{page}: image {src} did not load" for src, width in images if not width]
        problems += [f"{page}: console error: {entry['message']}" for entry in errors]
    assert not problems, "\n".join(problems)


TILES_SCRIPT = """
return Array.from(document.querySelectorAll('img[data-cols]')).map(
  img => [img.getAttribute('src'), img.getBoundingClientRect().width / Number(img.dataset.cols)]);
"""


def test_filter_and_grad_cam_tiles_are_shown_at_128_px_or_more(browser, server):
    """On a 1400 px wide window, every tile of a tiled figure is displayed at >= 128 px."""
    problems, tiled = [], 0
    for name in registry.names():
        browser.get(f"{server}/recipes/{name}/")
        for src, tile in browser.execute_script(TILES_SCRIPT):
            tiled += 1
            if tile < 128:
                problems.append(f"{name}: {src} shows its tiles at {tile:.0f} px")
    assert tiled >= len(registry.names()), "the tiled figures carry no data-cols attribute"
    assert not problems, "\n".join(problems)


def test_screenshots_of_two_pages(browser, server):
    folder = SITE / "screenshots"
    folder.mkdir(exist_ok=True)
    for name in SCREENSHOTS:
        url = f"{server}/" if name == "index" else f"{server}/recipes/{name}/"
        browser.get(url)
        path = folder / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"could not save {path}"
        assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
