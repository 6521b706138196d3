"""The session page in a real browser after a real opencode run: `./mitm_run.sh web` with PROXY_API_KEY set, the
opencode CLI (its apiKey is the proxy key) asked to read a file and delegate to a `task` subagent in one step,
then answer in a second. Headless Chromium opens /_proxy/sessions?token=KEY once (the cookie does the rest) and
reads the list, the parent's timeline, the tool calls with their arguments and the subagent under the turn that
started it. The screenshot goes to tests/screenshots/session-page.png (shown in the README).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests import opencode_cli
from tests.conftest import ROOT, ProxyProcess, start_proxy
from tests.support import direct_json
from tests.test_mitmweb_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_opencode_cli import MODEL, NOTES, RUN_TIMEOUT, assert_succeeded, new_project, read_marker

pytestmark = pytest.mark.e2e


PROXY_KEY = "anything"  # the apiKey conftest.opencode_config gives opencode
SCREENSHOT = ROOT / "tests" / "screenshots" / "session-page.png"
TASK = {"description": "look", "prompt": "Say-hello", "subagent_type": "general"}


@pytest.fixture(scope="module")
def run(opencode_bin, fake_gemini, tmp_path_factory) -> Iterator[tuple[ProxyProcess, Path]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (./mitm_run.sh test does this as root).")
    workdir = tmp_path_factory.mktemp("session-page")
    proxy = start_proxy(fake_gemini.reset(), workdir, web=True, env={"PROXY_API_KEY": PROXY_KEY})
    try:
        project = new_project(workdir, proxy)
        task = json.dumps(TASK, separators=(",", ":"))
        prompt = f"Read and delegate {read_marker(project / NOTES)} [tool:task {task}]"
        done = opencode_cli.run(opencode_bin, project, prompt, MODEL, workdir / "home", RUN_TIMEOUT)
        assert_succeeded(done)
        assert sorted(t["tool"] for t in done.tool_uses) == ["read", "task"], done.describe()
        yield proxy, project
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def page(run):
    proxy, _ = run
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()


def sessions_json(proxy: ProxyProcess) -> dict:
    request = urllib.request.Request(
        proxy.root_url + "/_proxy/sessions.json", headers={"authorization": f"Bearer {PROXY_KEY}"}
    )
    return direct_json(request)


def test_the_page_needs_the_key_and_a_token_visit_sets_the_cookie(run, page):
    proxy, _ = run
    refused = page.goto(proxy.root_url + "/_proxy/sessions")
    assert refused.status == 401 and "PROXY_API_KEY" in page.content()
    page.goto(f"{proxy.root_url}/_proxy/sessions?token={PROXY_KEY}")
    assert page.url == proxy.root_url + "/_proxy/sessions"  # the token is gone from the address
    expect(page.get_by_role("heading", name="Sessions", exact=True)).to_be_visible()


def test_the_list_nests_the_subagent_under_its_parent(run, page):
    proxy, _ = run
    data = sessions_json(proxy)
    [parent] = [s for s in data["sessions"] if not s["parent_id"]]
    [child] = [s for s in data["sessions"] if s["parent_id"]]
    assert child["parent_id"] == parent["id"] and parent["turns"] == 2 and child["turns"] == 1
    assert {s["replica"] for s in data["sessions"]} == {f"127.0.0.1:{proxy.port}"}
    page.goto(proxy.root_url + "/_proxy/sessions")
    rows = page.locator("table.sessions tbody.family tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).get_attribute("data-session") == parent["id"]
    assert rows.nth(1).get_attribute("data-session") == child["id"]
    assert rows.nth(1).get_attribute("data-depth") == "1" and "subagent" in rows.nth(1).inner_text()
    cells = rows.nth(0).locator("td")
    assert cells.nth(0).inner_text() == "local-3 → gemini-3-pro-preview" and cells.nth(1).inner_text() == "2"
    assert cells.nth(7).inner_text() == "2"  # tool calls: read and task


def test_the_session_timeline(run, page):
    proxy, project = run
    page.goto(proxy.root_url + "/_proxy/sessions")
    page.locator("table.sessions tr.top th a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Session s:[0-9a-f]{4,8}$"))
    turns = page.locator("ol.timeline > li.turn")
    expect(turns).to_have_count(2)
    assert [turns.nth(i).locator("h3").inner_text() for i in range(2)] == ["Turn 1", "Turn 2"]
    first, second = turns.nth(0), turns.nth(1)
    assert first.locator(".finish-reason").inner_text() in ("tool_calls", "stop")
    assert first.locator(".tool-call .tool-name").all_inner_texts() == ["read", "task"]
    read_args = json.loads(first.locator(".tool-call pre.arguments").nth(0).inner_text())
    assert read_args == {"filePath": str(project / NOTES)}
    assert '"prompt": "Say-hello"' in first.locator(".tool-call pre.arguments").nth(1).inner_text()
    # The subagent sits under the turn whose task call started it.
    subagent = first.locator("section.subagents li.subagent")
    expect(subagent).to_have_count(1)
    assert "1 turn," in subagent.inner_text() and "turn 1 of s:" in subagent.inner_text()
    assert second.locator("section.subagents").count() == 0
    new = second.locator("section.new").inner_text()
    assert "since turn 1" in new and "tool result for" in new and "(read)" in new and "(task)" in new
    assert "Tool said:" in second.locator("pre.text").inner_text()
    link = first.locator("a.mitmweb").get_attribute("href")
    assert re.fullmatch(rf"http://127\.0\.0\.1:{proxy.web_port}/#/flows/[0-9a-f-]{{36}}/request", link), link
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_the_upstream_key_is_not_on_the_page(run, page, fake_gemini):
    proxy, _ = run
    shown = [json.dumps(sessions_json(proxy))]
    for path in ("/_proxy/sessions", *(f"/_proxy/sessions/{s['id']}" for s in sessions_json(proxy)["sessions"])):
        page.goto(proxy.root_url + path)
        shown.append(page.content())
    assert all(fake_gemini.key not in text for text in shown)
