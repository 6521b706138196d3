"""mitmweb in a real browser: the LLM chat view, the comment column and the filters, as a user sees them.

`./mitm_run.sh web` in front of the fake Gemini; the openai SDK sends a streamed tool call, its follow-up with the
tool's result, a tool call that does not fit its schema and a request the upstream refuses. Headless Chromium
(Debian's `chromium`, driven by Playwright) opens mitmweb with its token. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from mitmproxy import contentviews, optmanager
from mitmproxy.addons import script
from mitmproxy.test import taddons
from playwright.sync_api import expect, sync_playwright

from addon.runtime import error_pages
from tests.conftest import ROOT, Mitmweb, ProxyProcess, start_proxy
from tests.support import READ_TOOL, WRITE_TOOL

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
# The README shows these: each run retakes them from the current code (the others are kept as artifacts).
SCREENSHOTS = ROOT / "tests" / "screenshots"
README_SHOTS = {"mitmweb-list.png", "mitmweb-chat.png"}
SYSTEM = "You are opencode, an interactive CLI tool that helps users with software engineering tasks."
ASK = 'What is in /tmp/x.txt? [tool:read {"filePath": "/tmp/x.txt"}]'
FILE_TEXT = "The meeting moved to Thursday at 10:00, room 4.12."


def test_every_option_can_be_shown_by_mitmweb(monkeypatch):
    """mitmweb sends every option to the browser and refuses to start on a type it cannot name (Optional[float])."""
    monkeypatch.setattr(contentviews.registry, "_by_name", dict(contentviews.registry._by_name))
    module = script.load_script(str(ROOT / "addon" / "proxy.py"))  # registers views, patches error pages
    try:
        with taddons.context(*module.addons) as tctx:
            names = {name for name in tctx.options.keys() if name.startswith("translate_")}  # noqa: SIM118
            assert names and set(optmanager.dump_dicts(tctx.options, names)) == names
    finally:
        error_pages.uninstall()


def chat(client: openai.OpenAI, messages: list[dict]) -> list:
    return list(
        client.chat.completions.create(
            model="local-model",
            messages=[{"role": "system", "content": SYSTEM}, *messages],
            tools=[READ_TOOL, WRITE_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
    )


def send_traffic(proxy: ProxyProcess) -> None:
    client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
    chunks = chat(client, [{"role": "user", "content": ASK}])
    call = next(c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    chat(
        client,
        [
            {"role": "user", "content": ASK},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": FILE_TEXT},
        ],
    )
    chat(client, [{"role": "user", "content": 'Save a note. [tool:write {"filePath": "/tmp/note.txt"}]'}])
    with pytest.raises(openai.RateLimitError):
        chat(client, [{"role": "user", "content": "And again. [error:429]"}])


@pytest.fixture(scope="module")
def mitmweb(fake_gemini, tmp_path_factory) -> Iterator[ProxyProcess]:
    if not Path(CHROMIUM).exists() or not shutil.which("chromium"):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (`apt-get install -y chromium`; .ci/run does "
            "this) to run the mitmweb browser test."
        )
    proxy = start_proxy(fake_gemini.reset(), tmp_path_factory.mktemp("mitmweb"), web=True)
    try:
        Mitmweb(proxy).clear()
        send_traffic(proxy)
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def page(mitmweb: ProxyProcess):
    token = mitmweb.web_token()
    assert token, f"mitmweb printed no token. Log tail:\n{mitmweb.log_text()[-3000:]}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(10_000)
            page.goto(f"http://127.0.0.1:{mitmweb.web_port}/?token={token}")
            chat_rows(page).first.wait_for()
            yield page
        finally:
            browser.close()


def chat_rows(page):
    return page.locator("tbody tr", has_text="/chat/completions")


def show(page, row: int, tab: str) -> tuple[str, str]:
    """Select the chat flow `row`, open its tab; the contentview's name and text."""
    chat_rows(page).nth(row).click()
    page.locator(".flow-detail nav a", has_text=tab).click()
    page.locator(".contentview pre").wait_for()
    return page.locator(".contentview .controls h5").inner_text(), page.locator(".contentview pre").inner_text()


def drag(page, selector: str, to_x: float) -> None:
    box = page.locator(selector).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(to_x, y, steps=5)
    page.mouse.up()


def screenshot(page, name: str) -> Path:
    folder = SCREENSHOTS if name in README_SHOTS else ARTIFACTS
    folder.mkdir(exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path))
    return path


def test_list_shows_comments_and_marks(page):
    rows = chat_rows(page)
    assert rows.count() == 4
    comments = [rows.nth(i).locator("td.col-comment").inner_text() for i in range(4)]
    assert all("local-model -> gemini-2.5-flash" in c and re.search(r" \| s:[0-9a-f]{4,8} #\d+$", c) for c in comments)
    # What a person looks for first leads, so mitmweb's narrow Comment column (its width on first open) shows it.
    assert comments[0].startswith("1 tool call: read | local-model") and " in / " in comments[0]
    assert comments[1].startswith("local-model -> gemini-2.5-flash | ")
    assert comments[2].startswith("tool-call problem: write (call_1): missing required field 'content' | ")
    assert comments[3].startswith("error: upstream 429: ")
    markers = [rows.nth(i).locator(".marker").inner_text() for i in range(4)]
    assert markers == ["\N{WRENCH}", "", "\N{WARNING SIGN}", "\N{CROSS MARK}"]
    drag(page, "th.col-path .col-resize-handle", 330)  # as a user would, to read the whole comments
    drag(page, "th.col-comment .col-resize-handle", page.viewport_size["width"] - 60)
    screenshot(page, "mitmweb-list.png")


def test_tool_call_in_the_chat_view(page):
    view, text = show(page, 0, "Response")
    assert view == "LLM chat"
    assert page.locator(".contentview .controls").inner_text().split("View:")[-1].strip() == "auto"
    assert "chat completion stream\nmodel: local-model\nfinish_reason: tool_calls" in text
    assert 'tool call [0] read (call_1):\n  {\n    "filePath": "/tmp/x.txt"\n  }' in text
    assert "tool-call check: the call fits the offered tools" in text
    screenshot(page, "mitmweb-chat.png")


def test_assembled_answer_in_the_chat_view(page):
    view, text = show(page, 1, "Response")
    assert view == "LLM chat"
    assert f"text:\n  Tool said: {FILE_TEXT}\n" in text  # streamed in 16-character pieces
    assert "chunks (" in text and '+text "Tool said: The m' in text
    screenshot(page, "mitmweb-answer.png")


def test_conversation_in_the_request_view(page):
    view, text = show(page, 1, "Request")
    assert view == "LLM chat"
    head, _, text = text.partition("the whole conversation:")  # first what is new in this turn of its session
    assert head.startswith("what is new in turn ") and "tool result for call_1 (read)" in head, head
    assert text.lstrip().startswith("chat request: 4 messages, 2 tools")
    assert 'tool call read (call_1):\n      {\n        "filePath": "/tmp/x.txt"\n      }' in text
    assert f"[3] tool: tool result for call_1 (read)\n    {FILE_TEXT}" in text
    assert "  write(filePath: string*, content: string*)" in text
    screenshot(page, "mitmweb-request.png")


def test_tool_check_findings_in_the_chat_view(page):
    _, text = show(page, 2, "Response")
    assert (
        "tool-call check: the model, not the client, sent tool calls that do not fit the tools the request "
        "offered:\n  - write (call_1): missing required field 'content'"
    ) in text


@pytest.mark.parametrize(
    "expression, shown",
    [
        ("~marker :x:", [3]),
        ("~marker :warning:", [2]),
        ('~comment "tool call"', [0, 2]),
        ("~comment local-model", [0, 1, 2, 3]),
    ],
)
def test_filters_in_the_search_box(page, expression, shown):
    paths_before = [chat_rows(page).nth(i).locator("td.col-comment").inner_text() for i in range(4)]
    page.locator("header nav a", has_text="Flow List").click()
    search = page.get_by_placeholder("Search")
    search.fill(expression)
    try:
        expect(chat_rows(page)).to_have_count(len(shown))
        assert [chat_rows(page).nth(i).locator("td.col-comment").inner_text() for i in range(len(shown))] == [
            paths_before[i] for i in shown
        ]
    finally:
        search.fill("")
        expect(chat_rows(page)).to_have_count(4)
