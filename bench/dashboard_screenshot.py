"""The README's dashboard screenshot: the demo's model page in headless Chromium.

Run after ``make demo`` (``python -m driftline demo --no-serve``), which leaves its results in
``var/demo/driftline.db``::

    python -m bench.dashboard_screenshot --output docs/images/dashboard.png

It serves the dashboard on those results in-process (uvicorn on a free port), opens the
model's page with the Chromium the browser test uses (Debian's, never a download), waits
until every chart is drawn, and saves the page.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.main import create_app
from api.settings import ApiSettings
from driftline.local import chromium
from driftline.local.environment import run_dir
from driftline.stream_demo import MODEL_ID

CHARTS = ("heatmap", "coverage", "timeline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/images/dashboard.png"))
    parser.add_argument("--database", type=Path, default=run_dir() / "demo" / "driftline.db")
    args = parser.parse_args()
    if not args.database.exists():
        raise SystemExit(f"{args.database} does not exist: run `make demo` first")
    settings = ApiSettings(
        database_url=f"sqlite+pysqlite:///{args.database}", api_open_dashboard=True
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    driver = chromium.headless_driver(1400, 1700)
    try:
        driver.get(f"http://127.0.0.1:{port}/dashboard/models/{MODEL_ID}")

        def drawn(driver: Any) -> bool:
            return all(
                driver.find_element(By.ID, c).get_attribute("data-rendered") == "true"
                for c in CHARTS
            )

        WebDriverWait(driver, 30).until(drawn)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.output))
    finally:
        driver.quit()
        server.should_exit = True
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
