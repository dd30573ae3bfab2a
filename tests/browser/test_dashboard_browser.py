"""The dashboard in headless Chromium: sign in, every page, figures against the API, the
roadmap-to-tree click path, a read key's refused sync, phone width, keyboard, sign-out.

The tests of this module share one browser and run in file order (sign-out is last)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.conftest import Hub

pytestmark = pytest.mark.slow

PAGES = {
    "overview": "/",
    "roadmap": "/roadmap",
    "priorities": "/priorities",
    "flow": "/flow",
    "quality": "/quality",
    "items": "/items",
}


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _text(driver: Any, css: str) -> str:
    return str(driver.find_element(_by("CSS_SELECTOR"), css).text).strip()


def _click_and_load(driver: Any, css: str) -> None:
    """Click what `css` finds and wait until the next page has loaded (Selenium's click returns
    as soon as the event is dispatched). The old page is marked with a window property the new
    one lacks; while the navigation is under way Chromium may answer a script or element call
    with a transient WebDriverException ("Node ... does not belong to the document"), so
    those are retried rather than failing the test."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__opshubOldPage = true")
    driver.find_element(_by("CSS_SELECTOR"), css).click()
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return !window.__opshubOldPage && document.readyState === 'complete'")
    )


def _screenshot(driver: Any, artifacts: Path, name: str, width: int = 1280) -> None:
    """The whole page: the window is made as tall as the document first."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(max(height, 600), 6000))
    driver.save_screenshot(str(artifacts / f"{name}.png"))
    driver.set_window_size(1280, 900)


def test_a_signed_out_visitor_is_sent_to_sign_in(browser: Any, hub: Hub) -> None:
    for path in (*PAGES.values(), f"/items/{hub.dataset.epics[0]}"):
        browser.get(hub.url + path)
        assert browser.current_url == f"{hub.url}/signin?next={quote(path, safe='')}"
    assert browser.find_element(_by("ID"), "api_key").get_attribute("type") == "password"


def test_sign_in_with_a_read_key(browser: Any, hub: Hub, artifacts: Path) -> None:
    browser.get(hub.url + "/roadmap")
    _screenshot(browser, artifacts, "signin")
    browser.find_element(_by("ID"), "api_key").send_keys(hub.read_key)
    _click_and_load(browser, "main form button[type=submit]")
    assert browser.current_url == hub.url + "/roadmap"  # back where the visitor was going
    assert hub.read_key not in browser.current_url
    cookie = browser.get_cookie("opshub_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # invisible to scripts


def test_every_page_opens_and_is_screenshotted(browser: Any, hub: Hub, artifacts: Path) -> None:
    for name, path in PAGES.items():
        browser.get(hub.url + path)
        assert browser.find_element(_by("TAG_NAME"), "h1").text
        assert "Internal Server Error" not in browser.page_source
        _screenshot(browser, artifacts, name)
    browser.get(f"{hub.url}/flow?forecast={quote(hub.dataset.epics[0])}")
    _screenshot(browser, artifacts, "flow-forecast")


def test_overview_and_roadmap_figures_equal_the_api(browser: Any, hub: Hub) -> None:
    browser.get(hub.url + "/")
    for source in hub.api("/v1/sources")["sources"]:  # type: ignore[index]
        shown = _text(browser, f'tr[data-source="{source["name"]}"] [data-figure="item_count"]')
        assert int(shown) == source["item_count"]
    browser.get(hub.url + "/roadmap")
    answer: Any = hub.api("/v1/roadmap")
    for entry in answer["roadmap"]:
        row = f'tr[data-item="{entry["item"]["id"]}"]'
        assert int(_text(browser, f'{row} [data-figure="delivery_total"]')) == entry["delivery_total"]
        assert _text(browser, f'{row} [data-figure="by_count"]').endswith(
            f"{round(entry['progress']['by_count'] * 100)} %"
        )
    assert int(_text(browser, "#uncovered-count")) == answer["uncovered"]["count"]


def test_flow_priorities_quality_and_items_figures_equal_the_api(browser: Any, hub: Hub) -> None:
    browser.get(hub.url + "/flow?source=acme-jira")
    flow: Any = hub.api("/v1/insights/flow", source="acme-jira")
    assert int(_text(browser, "#throughput-total")) == flow["throughput"]["total"]
    assert int(_text(browser, "#wip-count")) == flow["wip"]["count"]
    assert "source=acme-jira" in _text(browser, "#applied-filters")
    browser.get(hub.url + "/priorities")
    matrix: Any = hub.api("/v1/insights/priorities")
    for quadrant, found in matrix["quadrants"].items():
        assert int(_text(browser, f'[data-quadrant="{quadrant}"] [data-figure="count"]')) == found["count"]
    browser.get(hub.url + "/quality")
    quality: Any = hub.api("/v1/insights/quality")
    for finding in quality["findings"]:
        assert int(_text(browser, f'[data-finding="{finding["name"]}"] [data-figure="count"]')) == finding["count"]
    browser.get(hub.url + "/items?tool=linear&status_category=done")
    items: Any = hub.api("/v1/items", tool="linear", status_category="done")
    rows = browser.find_elements(_by("CSS_SELECTOR"), "#items tbody tr[data-item]")
    assert [r.get_attribute("data-item") for r in rows] == [d["id"] for d in items["items"]]


def test_the_items_filter_form_submits_as_get(browser: Any, hub: Hub) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get(hub.url + "/items")
    Select(browser.find_element(_by("NAME"), "status_category")).select_by_value("in_progress")
    browser.find_element(_by("NAME"), "tool").send_keys("jira")
    _click_and_load(browser, "form.filters button[type=submit]")
    assert "status_category=in_progress" in browser.current_url
    assert "tool=jira" in browser.current_url
    expected: Any = hub.api("/v1/items", tool="jira", status_category="in_progress")
    rows = browser.find_elements(_by("CSS_SELECTOR"), "#items tbody tr[data-item]")
    assert [r.get_attribute("data-item") for r in rows] == [d["id"] for d in expected["items"]]


def test_click_from_the_roadmap_to_an_item_and_its_tree(browser: Any, hub: Hub, artifacts: Path) -> None:
    epic = hub.dataset.epics[0]
    browser.get(hub.url + "/roadmap")
    _click_and_load(browser, f'tr[data-item="{epic}"] th a')
    assert browser.current_url == f"{hub.url}/items/{epic}"
    tree: Any = hub.api(f"/v1/items/{epic}/tree")

    def ids(node: Any) -> set[str]:
        return {node["id"]} | {i for child in node["children"] for i in ids(child)}

    shown = {li.get_attribute("data-item") for li in browser.find_elements(_by("CSS_SELECTOR"), "#tree li")}
    assert shown == ids(tree)
    _screenshot(browser, artifacts, "item")
    # Down the tree to a Linear issue that implements the epic, across tools.
    linear = next(c["id"] for c in tree["children"] if c["tool"] == "linear")
    _click_and_load(browser, f'#tree li[data-item="{linear}"] > a')
    assert browser.current_url == f"{hub.url}/items/{quote(linear, safe=':/@')}"
    assert epic in _text(browser, "#links")


def test_a_read_key_cannot_trigger_a_sync(browser: Any, hub: Hub) -> None:
    source = hub.dataset.jira_source
    before = len(hub.api(f"/v1/sources/{source}/runs")["runs"])  # type: ignore[index]
    browser.get(hub.url + "/")
    _click_and_load(browser, f'button[data-sync="{source}"]')
    assert "403 Forbidden" in _text(browser, "h1")
    assert len(hub.api(f"/v1/sources/{source}/runs")["runs"]) == before  # type: ignore[index]


def test_pages_fit_a_phone_screen(browser: Any, hub: Hub, artifacts: Path) -> None:
    browser.set_window_size(390, 844)
    try:
        for name in ("overview", "roadmap", "flow"):
            browser.get(hub.url + PAGES[name])
            # Wide tables scroll inside their own box; the page itself never scrolls sideways.
            overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} is {overflow}px wider than a phone screen"
            _screenshot(browser, artifacts, f"{name}-phone", width=390)
    finally:
        browser.set_window_size(1280, 900)


def test_keyboard_reaches_the_skip_link_and_main(browser: Any, hub: Hub) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(hub.url + "/roadmap")
    browser.find_element(_by("TAG_NAME"), "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to content"
    focused.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"


def test_api_docs_work_offline(browser: Any, hub: Hub, artifacts: Path) -> None:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    for path, ready in (("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")):
        browser.get(hub.url + path)
        WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((_by("CSS_SELECTOR"), ready)))
        assert "OpsHub" in _text(browser, ready)
        _screenshot(browser, artifacts, path.strip("/"))


def test_sign_out_ends_the_session(browser: Any, hub: Hub) -> None:
    browser.get(hub.url + "/")
    _click_and_load(browser, "form.signout button")
    assert browser.current_url == hub.url + "/signin"
    browser.get(hub.url + "/flow")
    assert browser.current_url.startswith(hub.url + "/signin?next=")
