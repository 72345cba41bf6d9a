"""Headless Chromium for the explain page: the browser test's driver and screenshots.

Development tools, not part of the installed package: they need the
``selenium`` package, Chromium and chromedriver on PATH (Debian:
``apt-get install -y chromium chromium-driver``). For a screenshot of a page
(e.g. for the documentation), with ``tests/`` on ``sys.path``:
``browser_tools.screenshot("page.png", stage="backward")``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

from numpy.typing import ArrayLike
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from pybackprop import MLP, explain_html
from pybackprop.explain_html import Target

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
CHROMEDRIVER = shutil.which("chromedriver")
STAGES = ("start", "forward", "backward", "step")


def chrome(width: int = 1500, height: int = 1100, *, console_log: bool = False,
           hide_scrollbars: bool = False) -> webdriver.Chrome:
    """A headless Chromium driven by Selenium through the system's chromedriver.

    ``console_log`` keeps the page's console messages for ``get_log("browser")``.
    """
    if CHROMIUM is None or CHROMEDRIVER is None:
        raise RuntimeError("the browser needs Chromium and chromedriver on PATH "
                           "(Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    if hide_scrollbars:
        options.add_argument("--hide-scrollbars")
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot(png_path: str | os.PathLike[str], html_path: str | os.PathLike[str] | None = None,
               *, stage: str = "backward", width: int = 1500, net: MLP | None = None,
               x: ArrayLike | None = None, y: Target | None = None, lr: float = 0.5) -> str:
    """Save a PNG of the whole explain page at a stage of the walk-through.

    Parameters
    ----------
    png_path : str or os.PathLike
        Where to write the PNG (the whole page, not only the window).
    html_path : str or os.PathLike, optional
        A page written by :func:`pybackprop.explain_html.write_html`; by
        default one is written for ``net, x, y, lr`` into a temporary file.
    stage : {"start", "forward", "backward", "step"}, default "backward"
        After how much of the walk-through: nothing, the full forward pass,
        the full backward pass, or one SGD step after it.
    width : int, default 1500
        Window width in CSS pixels.
    net, x, y, lr
        As for :func:`pybackprop.explain_html.write_html`.

    Returns
    -------
    str
        ``png_path`` as a string.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    clicks = {"start": [], "forward": ["btn-finish"],
              "backward": ["btn-finish", "btn-finish"], "step": ["btn-step"]}[stage]
    with tempfile.TemporaryDirectory() as tmp:
        if html_path is None:
            html_path = explain_html.write_html(os.path.join(tmp, "explain.html"), net, x, y, lr)
        driver = chrome(width, 1000, hide_scrollbars=True)
        try:
            driver.get(pathlib.Path(html_path).resolve().as_uri())
            for button in clicks:
                driver.find_element("id", button).click()
            if stage == "backward":  # the final operation stays highlighted
                driver.execute_script("document.activeElement.blur()")
            page_h = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": int(page_h), "deviceScaleFactor": 1,
                                    "mobile": False})
            driver.save_screenshot(os.fspath(png_path))
        finally:
            driver.quit()
    return os.fspath(png_path)
