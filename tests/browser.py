"""A real headless browser for page tests: Debian's chromium driven by Selenium.

    with chromium(390, 844) as driver:      # a phone; (1440, 900) a desktop
        driver.get(url)

Never Selenium Manager (it would download a browser): the distribution's chromium and
chromedriver (`apt-get install chromium chromium-driver`, as `.ci/run` does). Where they are
missing the test is skipped with the reason, unless CI=true, where that is an error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("DUBAN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DUBAN_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--lang=zh-CN",
)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def chromium(width: int, height: int) -> Iterator[object]:
    """Yield a Selenium WebDriver of a headless chromium with a `width`×`height` window."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            raise RuntimeError(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="duban-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(width, height)
        # The window includes the browser's own frame: grow it so the page gets `height`.
        inner = int(driver.execute_script("return window.innerHeight;"))
        if 0 < inner < height:
            driver.set_window_size(width, height + (height - inner))
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
