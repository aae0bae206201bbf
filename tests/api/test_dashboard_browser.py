"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium against
the API served by uvicorn on loopback, over results the pipeline's code wrote.

It opens the model list, goes to a model with drift, checks that the heatmap and every
metric series were drawn with their data points, clicks a heatmap cell of a drifted
window and lands on that window's report. Screenshots of both pages are kept under
``var/artifacts/`` (the test's artifacts).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select, true

from api.main import create_app
from api.settings import ApiSettings
from driftline.local import chromium
from storage.models import anomalies, drift_results, windows
from tests.api.conftest import write_stream
from tests.integration.harness import register
from tests.stream_app import scenario

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
WINDOWS, DRIFT_FROM = 10, 6


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    base: str
    database_url: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'dashboard.db'}"
    sessions = register(url)
    write_stream(sessions, windows=WINDOWS, drift_from=DRIFT_FROM, labels=True)
    port = _free_port()
    app = create_app(ApiSettings(database_url=url, api_open_dashboard=True), sessions)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", url)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = chromium.headless_driver(1400, 1800)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_rendered(driver: WebDriver, element_id: str) -> int:
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, element_id).get_attribute("data-rendered") == "true",
        f"#{element_id} was not drawn",
    )
    return int(driver.find_element(By.ID, element_id).get_attribute("data-points") or -1)


def _expected(database_url: str) -> tuple[int, int, dict[str, int], datetime]:
    """From SQL: windows, primary drift cells, points per 3-sigma series, a drifted window."""
    sessions = register(database_url)
    with sessions() as session:
        n_windows = session.scalar(
            select(func.count()).where(windows.c.model_id == scenario.MODEL_ID)
        )
        cells = session.scalar(
            select(func.count()).where(
                drift_results.c.model_id == scenario.MODEL_ID,
                drift_results.c.is_primary.is_(true()),
            )
        )
        series: dict[str, int] = dict(
            session.execute(
                select(anomalies.c.series, func.count()).group_by(anomalies.c.series)
            ).all()
        )
        drifted = session.scalar(
            select(func.max(windows.c.window_start)).where(windows.c.n_drifted > 0)
        )
    assert n_windows and cells and drifted is not None
    return int(n_windows), int(cells), {k: int(v) for k, v in series.items()}, drifted


def test_the_dashboard_draws_drift_and_links_to_a_window(
    served: Served, browser: WebDriver
) -> None:
    n_windows, cells, series, drifted = _expected(served.database_url)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    browser.get(f"{served.base}/dashboard/")
    link = browser.find_element(By.LINK_TEXT, scenario.MODEL_ID)
    row = link.find_element(By.XPATH, "./ancestor::tr")
    assert "drift" in row.text  # the latest window has drift

    link.click()
    assert _wait_rendered(browser, "heatmap") == cells
    labels = browser.execute_script("return document.getElementById('heatmap').data[0].x.length")
    assert labels == n_windows
    assert series, "the pipeline wrote no 3-sigma verdicts"
    for name, points in series.items():
        element_id = "series-" + "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
        assert _wait_rendered(browser, element_id) == points, name
        drawn = browser.execute_script(
            f"return document.querySelectorAll('#{element_id} .scatterlayer .trace')[2]"
            ".querySelectorAll('.points path').length"
        )
        assert drawn == points, f"{name}: {drawn} markers for {points} windows"
    assert _wait_rendered(browser, "coverage") == n_windows
    browser.save_screenshot(str(ARTIFACTS / "dashboard-model.png"))

    # Click the heatmap's cell of the last drifted window, in the middle of its column.
    offset = browser.execute_script(
        "const d = document.getElementById('heatmap');"
        "const xs = d.data[0].x; const i = xs.findIndex((w) => w.startsWith(arguments[0]));"
        "const x = d._fullLayout.xaxis, y = d._fullLayout.yaxis;"
        "const box = d.getBoundingClientRect();"
        "return [x._offset + x.d2p(xs[i]) - box.width / 2,"
        " y._offset + y._length / 2 - box.height / 2, i];",
        drifted.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    assert offset[2] >= 0, "the drifted window is not a column of the heatmap"
    heatmap = browser.find_element(By.ID, "heatmap")
    ActionChains(browser).move_to_element_with_offset(
        heatmap, int(offset[0]), int(offset[1])
    ).click().perform()
    WebDriverWait(browser, 30).until(lambda d: "/windows/" in d.current_url, "no window page")
    assert drifted.strftime("%Y-%m-%dT%H:%M:%S") in browser.current_url
    assert _wait_rendered(browser, "features") > 0
    assert int(browser.find_element(By.ID, "n-drifted").text.split()[0]) > 0
    browser.save_screenshot(str(ARTIFACTS / "dashboard-window.png"))
