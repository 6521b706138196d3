"""`./mitm_run.sh capture` end to end: the real opencode CLI (1.18.33) with its own `google`, `anthropic` and `openai`
providers, through the capture proxy, to local stand-ins of the three APIs (tests/provider_standins.py) that
mitmproxy's own map_remote option sends the providers' hosts to. Each provider's tool-using turn shows in mitmweb
(its flow list, the LLM chat view in a real browser for Gemini), the saved flow file holds no credential, and the
stand-ins got the real ones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import io
from playwright.sync_api import sync_playwright

from addon.inspection.sessions import keys as session_keys
from tests import opencode_cli
from tests.conftest import ROOT, RUN_SH, ProxyProcess, _listening, free_port, start_capture
from tests.provider_standins import Standins
from tests.support import direct_json
from tests.test_mitmweb_browser import CHROMIUM, CHROMIUM_ARGS, screenshot
from tests.test_opencode_cli import NOTES_TEXT

pytestmark = pytest.mark.e2e

KEYS = {
    "GOOGLE_GENERATIVE_AI_API_KEY": "AIzaCaptureGoogleKey0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-captureAnthropicKey0123456789",
    "OPENAI_API_KEY": "sk-proj-captureOpenaiKey0123456789",
}
PROVIDERS = {
    "google/gemini-2.5-flash": ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "x-goog-api-key", "GOOGLE"),
    "anthropic/claude-sonnet-4-5": ("/v1/messages", "x-api-key", "ANTHROPIC"),
    "openai/gpt-4o": ("/v1/responses", "authorization", "OPENAI"),
}
HOSTS = ("https://generativelanguage.googleapis.com", "https://api.anthropic.com", "https://api.openai.com")


class Capture:
    def __init__(self, proxy: ProxyProcess, confdir: Path, flows: Path, standins: Standins) -> None:
        self.proxy, self.confdir, self.flows, self.standins = proxy, confdir, flows, standins

    def web_flows(self) -> list[dict]:
        return direct_json(f"http://127.0.0.1:{self.proxy.web_port}/flows?token={self.proxy.web_token()}")


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Iterator[Capture]:
    work = tmp_path_factory.mktemp("capture")
    standins = Standins().start()
    confdir, flows = work / "confdir", work / "flows.mitm"
    # lazy: connect when the request is known, so map_remote decides where (not the CONNECT's host)
    args = ["--set", f"confdir={confdir}", "--set", "connection_strategy=lazy", "-w", str(flows)]
    for host in HOSTS:
        args += ["--map-remote", f"|{host}|{standins.url}"]
    try:
        proxy = start_capture(work, args)
    except BaseException:
        standins.stop()
        raise
    try:
        yield Capture(proxy, confdir, flows, standins)
    finally:
        proxy.stop()
        standins.stop()


@pytest.fixture(scope="module")
def runs(capture, opencode_bin, tmp_path_factory) -> dict[str, opencode_cli.OpencodeRun]:
    """One tool-using opencode turn per provider, through the capture proxy."""
    project = opencode_cli.make_project(tmp_path_factory.mktemp("project"), {}, {"notes.txt": NOTES_TEXT})
    env = {
        "HTTPS_PROXY": f"http://127.0.0.1:{capture.proxy.port}",
        "NODE_EXTRA_CA_CERTS": str(capture.confdir / "mitmproxy-ca-cert.pem"),
        **KEYS,
    }
    done = {}
    for model in PROVIDERS:
        home = project.parent / f"home-{model.split('/')[0]}"
        prompt = f"Read the file {project / 'notes.txt'}"
        done[model] = opencode_cli.run(opencode_bin, project, prompt, model, home, timeout=120, env=env)
    return done


def test_start_line_names_the_real_paths(capture):
    line = f"HTTPS_PROXY=http://127.0.0.1:{capture.proxy.port} NODE_EXTRA_CA_CERTS={capture.confdir}/mitmproxy-ca-cert.pem opencode"
    assert line in capture.proxy.log_text()
    assert (capture.confdir / "mitmproxy-ca-cert.pem").is_file()  # created on the first run


@pytest.mark.parametrize("model", PROVIDERS)
def test_tool_using_turn_through_capture(capture, runs, model):
    run = runs[model]
    assert run.returncode == 0 and not run.errors and "PELICAN-7" in run.text, run.describe()
    assert [(t["tool"], t["state"]["status"]) for t in run.tool_uses] == [("read", "completed")]
    path, header, key = PROVIDERS[model]
    got = [r for r in capture.standins.requests if r["path"] == path]
    assert len(got) == 2
    real = KEYS[f"{key}_API_KEY"] if key != "GOOGLE" else KEYS["GOOGLE_GENERATIVE_AI_API_KEY"]
    assert all(real in {k.lower(): v for k, v in r["headers"].items()}[header] for r in got)  # the real key arrived
    flows = [f for f in capture.web_flows() if f["request"]["path"].split("?")[0] == path]
    comments = [f["comment"] for f in flows]
    client_model = model.split("/")[1]
    # Both requests are turns of the session opencode named in its headers: the comment ends with its tag.
    [session_id] = {{k.lower(): v for k, v in r["headers"].items()}["x-session-affinity"] for r in got}
    turns = [re.search(rf"{re.escape(client_model)} -> .* \| (s:[0-9a-f]{{4,8}}) #(\d)$", c) for c in comments]
    assert len(comments) == 2 and all(turns), comments
    assert [t[2] for t in turns] == ["1", "2"] and turns[0][1] == turns[1][1], comments
    assert turns[0][1] == session_keys.tag(session_id, len(turns[0][1]) - 2)
    assert comments[0].startswith("1 tool call: read | ") and re.search(
        r" in( \([\d,]+ cached\))? / 30 out tokens", comments[0]
    )
    assert [f["marked"] for f in flows] == ["\N{WRENCH}", ""]


def test_flow_file_holds_no_credential(capture, runs):
    capture.proxy.stop()  # -w writes as flows end; stopping closes the file
    data = capture.flows.read_bytes()
    assert data and not [name for name, key in KEYS.items() if key.encode() in data]
    flows = list(io.FlowReader(capture.flows.open("rb")).stream())
    llm = [f for f in flows if (f.metadata.get("llm") or {}).get("capture")]
    assert sorted({f.metadata["llm"]["capture"] for f in llm}) == ["anthropic", "gemini_native", "openai_responses"]
    sessions = {(f.metadata["llm"]["capture"], f.metadata["llm"]["session"]["id"]) for f in llm}
    assert len(sessions) == 3 and all(session_id.startswith("ses_") for _, session_id in sessions)  # opencode's
    masked = {f.request.headers.get("x-goog-api-key") for f in llm if f.metadata["llm"]["capture"] == "gemini_native"}
    assert masked == {"AIza...89"}
    others = [f for f in flows if "llm" not in f.metadata]
    assert all(not f.comment and not f.marked for f in others)  # other traffic (npm look-ups) left unannotated


def test_gemini_flow_in_the_browser(capture, runs, tmp_path):
    """A saved Gemini-native flow, opened in capture mode's mitmweb in Chromium: the LLM chat view by default."""
    if not Path(CHROMIUM).exists() or not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium to run the browser test.")
    web_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CAPTURE_PORT", "WEB_PORT")}
    env.update(CAPTURE_PORT=str(free_port()), WEB_PORT=str(web_port))
    log_path = tmp_path / "web.log"
    confdir = capture.confdir
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(RUN_SH), "capture", "--set", f"confdir={confdir}", "--rfile", str(capture.flows)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    web = ProxyProcess(process, 0, log_path, tmp_path, web_port)
    try:
        for _ in range(600):
            if _listening(web_port) and web.web_token():
                break
            subprocess.run(["sleep", "0.1"], check=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(15_000)
            page.goto(f"http://127.0.0.1:{web_port}/?token={web.web_token()}")
            rows = page.locator("tbody tr", has_text=":streamGenerateContent")
            rows.first.wait_for()
            assert rows.count() == 2
            comment = rows.nth(0).locator("td.col-comment").inner_text()
            # What matters first (the tool call, the models, tokens), the session tag last (issue 26).
            assert re.match(
                r"1 tool call: read \| gemini-2.5-flash -> gemini-2.5-flash \| 1,200 in / 30 out tokens", comment
            )
            assert re.search(r"\| s:[0-9a-f]{4,8} #1$", comment), comment
            rows.nth(0).click()
            page.locator(".flow-detail nav a", has_text="Response").click()
            page.locator(".contentview pre").wait_for()
            assert page.locator(".contentview .controls h5").inner_text() == "LLM chat"
            text = page.locator(".contentview pre").inner_text()
            assert text.startswith("Gemini generateContent via generativelanguage.googleapis.com")
            assert re.search(r'tool call \[0\] read \(call_[0-9a-f]+\):\n  \{\n    "filePath": ".*notes.txt"', text), (
                text
            )
            assert "tool-call check: the call fits the offered tools" in text
            page.locator(".flow-detail nav a", has_text="Request").click()
            page.locator(".contentview pre").wait_for()
            request = page.locator(".contentview pre").inner_text()
            assert "what is new in turn 1 (session s:" in request and "first turn: 2 messages" in request
            tools = re.search(r"chat request: 2 messages, (\d+) tools", request)  # opencode offers its tools
            assert tools and int(tools[1]) > 0, request
            assert "x-goog-api-key" not in request
            screenshot(page, "capture-gemini.png")
            browser.close()
    finally:
        web.stop()
