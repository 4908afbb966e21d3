"""GraphiQL as a developer meets it, in Debian's Chromium against the installed `hub serve`:
a start page that asks for a token (no error before one is given), the canonical query with a
purpose in Chinese, and a subscription over a WebSocket that shows another department's
publish. Needs the Debian packages chromium and chromium-driver (.ci/run installs them and
sets HUB_TEST_BROWSER=1, which makes their absence a failure instead of a skip)."""

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from hub.db import upgrade
from hub.settings import Settings
from tests.test_clients import one_row
from tests.test_serve import demo_with_clients, serving
from tests.test_subscriptions import PUBLISH

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER) and os.environ.get("HUB_TEST_BROWSER") != "1",
    reason="install Debian's chromium and chromium-driver to run the browser tests",
)
PURPOSE = "rectification-check: 整改验收核查"
RESULT = "return document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER or "/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(check: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("the page did not get there in time")


def answer_shown(driver: webdriver.Chrome, containing: str) -> dict[str, Any]:
    text: str = until(lambda: (value := driver.execute_script(RESULT)) and containing in value
                      and value)  # fmt: skip
    shown: dict[str, Any] = json.loads(text)
    return shown


def test_graphiql_asks_for_a_token_runs_the_canonical_query_and_a_subscription(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    upgrade(settings)
    tokens = asyncio.run(demo_with_clients(settings.database_url))
    uscc, rectification = asyncio.run(one_row(settings,
        "SELECT e.uscc, r.source_id FROM rectification r "
        "JOIN enterprise e ON e.id = r.enterprise_id LEFT JOIN acceptance a "
        "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
        "ORDER BY r.id LIMIT 1"))  # fmt: skip
    environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url,
                   "HUB_FEED_POLL_SECONDS": "0.1"}  # fmt: skip
    with serving(environment) as (_, port):
        page = f"http://127.0.0.1:{port}/graphql"
        browser.get(page)
        form = until(lambda: browser.find_element(By.ID, "start").is_displayed()
                     and browser.find_element(By.ID, "start"))  # fmt: skip
        if screenshots := os.environ.get("HUB_TEST_SCREENSHOTS"):
            browser.save_screenshot(f"{screenshots}/graphiql-start.png")
        shown = browser.find_element(By.TAG_NAME, "body").text
        assert "Bearer token" in shown
        assert "UNAUTHENTICATED" not in shown
        assert "Error fetching schema" not in shown
        form.find_element(By.NAME, "token").send_keys(tokens["market"])
        form.find_element(By.NAME, "purpose").send_keys(PURPOSE)
        form.submit()
        until(lambda: browser.find_elements(By.CLASS_NAME, "graphiql-execute-button"))

        # The canonical case: market regulation reads ecology's acceptance, the opinion
        # under the demo's grant for the purpose stated in Chinese.
        canonical = (f'{{ enterprise(uscc: "{uscc}") {{ rectifications {{ owner {{ code }} '
                     "acceptance { verdict opinion } } } }")  # fmt: skip
        browser.get(f"{page}#query={quote(canonical)}")
        browser.refresh()
        until(lambda: browser.find_elements(By.CLASS_NAME, "graphiql-execute-button"))[0].click()
        answer = answer_shown(browser, "rectifications")
        assert "errors" not in answer, answer
        opinions = [r["acceptance"]["opinion"] for r in answer["data"]["enterprise"][
            "rectifications"] if r["acceptance"]]  # fmt: skip
        assert opinions
        assert all(opinions)
        assert "Error fetching schema" not in browser.find_element(By.TAG_NAME, "body").text

        # A subscription over the WebSocket shows ecology's publish as it happens.
        live = "subscription { changes(kinds: [ACCEPTANCE]) { changes { change sourceId } } }"
        browser.get(f"{page}#query={quote(live)}")
        browser.refresh()
        until(lambda: browser.find_elements(By.CLASS_NAME, "graphiql-execute-button"))[0].click()
        time.sleep(1)  # subscribed: the feed starts from the beginning, then waits
        published = httpx2.post(f"{page}", headers={"Authorization": f"Bearer {tokens['ecology']}"},
                                json={"query": PUBLISH, "variables": {"records": [{
                                    "sourceId": "ECO-BROWSER-1",
                                    "rectificationSourceId": rectification,
                                    "acceptedOn": "2026-11-10", "verdict": "PASSED",
                                    "opinion": "同意验收"}]}}, timeout=30)  # fmt: skip
        assert published.json()["data"]["publishAcceptances"]["created"] == 1
        event = answer_shown(browser, "ECO-BROWSER-1")
        if screenshots:
            browser.save_screenshot(f"{screenshots}/graphiql-subscription.png")
        assert {"change": "CREATED", "sourceId": "ECO-BROWSER-1"} in event["data"]["changes"][
            "changes"]  # fmt: skip
