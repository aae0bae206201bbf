"""Debian's Chromium and its WebDriver, for the dashboard's browser test.

Installed with apt-get when missing (as root), like PostgreSQL: nothing is downloaded
from a browser vendor or a CDN. Selenium is given both paths, so its driver manager never
looks anything up on the network.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline.errors import ServiceError
from driftline.local.environment import Report, cache_dir, printer
from driftline.local.processes import locked, run_command

PACKAGES = ("chromium", "chromium-driver")
INSTALL_COMMAND = "apt-get update && apt-get install -y --no-install-recommends " + " ".join(
    PACKAGES
)


@dataclass(frozen=True)
class Chromium:
    browser: Path
    driver: Path


def find() -> Chromium | None:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return None
    return Chromium(Path(browser), Path(driver))


def ensure_installed(*, report: Report | None = None) -> Chromium:
    """Chromium and chromedriver, installing Debian's packages first if needed."""
    report = report or printer()
    found = find()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise ServiceError(
            f"Chromium is not installed; run `sudo sh -c '{INSTALL_COMMAND}'` and try again"
        )
    with locked(cache_dir() / "chromium-install.lock"):
        found = find()
        if found is not None:
            return found
        began = time.monotonic()
        report("installing Chromium from Debian packages with apt-get (a minute or two) ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run_command(
            ["apt-get", "update"], timeout=600, what="apt-get update", report=report, env=env
        )
        run_command(
            ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
            timeout=900,
            what="installing chromium with apt-get",
            report=report,
            show=lambda line: line.startswith(("Get:", "Setting up chromium")),
            env=env,
        )
    found = find()
    if found is None:
        raise ServiceError(
            "apt-get installed chromium but `chromium` or `chromedriver` is not on PATH; "
            "check `dpkg -L chromium-driver`"
        )
    report(f"installed Chromium in {time.monotonic() - began:.0f} s")
    return found


def headless_driver(width: int, height: int) -> Any:
    """A selenium WebDriver on headless Chromium (installed if missing), ``width`` × ``height``.

    Selenium is a development dependency (the browser test, the README's screenshot): it is
    imported here, not at module import.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    found = ensure_installed()
    options = Options()
    options.binary_location = str(found.browser)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(executable_path=str(found.driver)), options=options)
