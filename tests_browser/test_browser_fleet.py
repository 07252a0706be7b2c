"""An on-call person in a real browser: headless Chromium (Debian's chromium and chromium-driver, through
Selenium) opens the overview, filters it and the runs, follows a run SIGKILLed in load to its page, and finds
the Gantt chart and the machine's diagram telling where it died.

Set RUNJOURNAL_SCREENSHOTS=DIR to keep the pages' screenshots there (docs/img/ holds the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import crash_child as cc
from tests._serve_support import fleet, served

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--window-size=1300,1000", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _shoot(driver, name: str, height: int = 1000) -> None:
    folder = os.environ.get("RUNJOURNAL_SCREENSHOTS")
    if not folder:
        return
    driver.set_window_size(1300, height)
    Path(folder).mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(1300, 1000)


def test_on_call_follows_a_killed_run_to_where_it_died(tmp_path, journal_url, browser):
    fleet(journal_url)
    child = cc.spawn(tmp_path, journal_url, "--kill-at", "load")
    assert cc.finish(child) != 0, cc.output_of(child)  # SIGKILLed once `-> load` was committed

    with served(journal_url) as base:
        browser.get(base + "/")
        rows = browser.find_elements(By.CSS_SELECTOR, "#pipelines tbody tr")
        first_two = [row.get_attribute("data-pipeline") for row in rows[:2]]
        assert sorted(first_two) == sorted([cc.PIPELINE_NAME, "payments"])  # the crashed ones first
        crashed_row = rows[first_two.index(cc.PIPELINE_NAME)]
        assert "crashed" in crashed_row.text and "presumed crashed in load: process gone" in crashed_row.text
        _shoot(browser, "overview", 700)

        # the overview, filtered to what needs someone, then to one pipeline
        browser.find_element(By.NAME, "failing").click()
        browser.find_element(By.CSS_SELECTOR, "#overview-filters button").click()
        WebDriverWait(browser, 30).until(EC.url_contains("failing=1"))
        statuses = [row.find_element(By.CSS_SELECTOR, ".pill").text for row in
                    browser.find_elements(By.CSS_SELECTOR, "#pipelines tbody tr")]
        assert statuses and set(statuses) == {"crashed", "failed"}
        browser.find_element(By.NAME, "pipeline").send_keys("crash_")
        browser.find_element(By.CSS_SELECTOR, "#overview-filters button").click()
        WebDriverWait(browser, 30).until(EC.url_contains("pipeline=crash_"))
        [row] = browser.find_elements(By.CSS_SELECTOR, "#pipelines tbody tr")
        run_id = row.find_element(By.CSS_SELECTOR, "a.mono").text

        # the runs list, filtered by pipeline and status, finds the same run
        browser.find_element(By.LINK_TEXT, "Runs").click()
        form = browser.find_element(By.ID, "filters")
        form.find_element(By.NAME, "pipeline").send_keys(cc.PIPELINE_NAME)
        Select(form.find_element(By.NAME, "status")).select_by_visible_text("crashed")
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(EC.url_contains("status=crashed"))
        runs = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        assert len(runs) == 1 and "crashed" in runs[0].text and "load" in runs[0].text
        assert runs[0].find_element(By.CSS_SELECTOR, "a.mono").text == run_id
        _shoot(browser, "runs", 520)

        browser.back()
        browser.back()  # to the filtered overview, and from there to the run
        WebDriverWait(browser, 30).until(EC.url_contains("pipeline=crash_"))
        browser.find_element(By.CSS_SELECTOR, "#pipelines a.mono").click()
        WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.ID, "gantt")))
        assert f"/runs/{run_id}" in browser.current_url
        assert "Crashed in load" in browser.find_element(By.ID, "died").text
        bars = browser.find_elements(By.CSS_SELECTOR, "#gantt rect.bar")
        assert [bar.get_attribute("data-state") for bar in bars][-1] == "load"
        assert all(float(bar.get_attribute("width")) > 0 for bar in bars)
        assert "died in load" in browser.find_element(By.ID, "death").text
        current = browser.find_element(By.CSS_SELECTOR, "#machine g.node.current")
        assert current.get_attribute("data-state") == "crashed"
        visited = {n.get_attribute("data-state") for n in browser.find_elements(By.CSS_SELECTOR, "#machine g.node.visited")}
        assert {"extract", "normalize", "load", "crashed"} <= visited and "done" not in visited
        edge = browser.find_element(By.CSS_SELECTOR, '#machine g.edge.presumed[data-source="load"]')
        assert edge.get_attribute("data-dest") == "crashed"
        # drawn, not only present: the highlighted node is on screen with a size
        assert current.size["width"] > 50 and current.is_displayed()
        _shoot(browser, "run-crashed", 1500)

        browser.get(base + "/runs?pipeline=orders&status=failed")
        browser.find_element(By.CSS_SELECTOR, "#runs a.mono").click()
        WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.ID, "gantt")))
        states = [bar.get_attribute("data-state") for bar in browser.find_elements(By.CSS_SELECTOR, "#gantt rect.bar")]
        assert "retry_wait" in states
        _shoot(browser, "run-retried", 1500)
