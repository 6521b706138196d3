"""End to end: with the seed's example config (a "KTDS Model" provider with its own key, and a "Local Provider"
alias), each key reaches only the host it was configured for, in every combination of GEMINI_API_KEY and
GEMINI_API_BASE. Two fake upstreams capture what arrived: `google` stands for GEMINI_API_BASE, `gateway` for
KTDS's baseURL (a company gateway, where the user's Google key must never go).

Also the log lines of item 5: the route table right after mitmproxy's "listening at" line, answers the proxy
gave itself logged with its own address, and the key mask printed as plain ASCII by --flow-detail 3.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import free_port, start_proxy
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e

KTDS_KEY = "ktds-gateway-key-0000"
ALIAS_KEY = "alias-key-for-the-proxy-0000"
HI = [{"role": "user", "content": "hi"}]


def seed_config(gateway: FakeGemini, port: int) -> dict:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "KTDS Model": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "KTDS Model",
                "options": {"baseURL": gateway.base_url, "apiKey": KTDS_KEY},
                "models": {"gemini-3-flash-preview": {"name": "Gemini 3 Flash Preview"}},
            },
            "local": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Local Provider",
                "options": {"baseURL": f"http://localhost:{port}/v1", "apiKey": ALIAS_KEY},
                "models": {"local-model": {"name": "Local Model"}},
            },
        },
        "model": "local/local-model",
    }


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGemini]:
    with FakeGemini(key=KTDS_KEY) as fake:
        yield fake


def seen(fake: FakeGemini) -> list[tuple[str, str | None]]:
    """(upstream model, Authorization) of each chat request the fake got."""
    return [(r["body"]["model"], r["headers"].get("Authorization")) for r in fake.chat_requests()]


@pytest.mark.parametrize(
    ("with_base", "with_key", "local_went_to", "local_status"),
    [
        (False, True, "gateway", 200),  # only GEMINI_API_KEY: the gateway gets KTDS's key, never the Google key
        (True, False, "google", 401),  # only GEMINI_API_BASE: no key applies; the 401 says what to set
        (True, True, "google", 200),
        (False, False, "gateway", 200),
    ],
)
def test_seed_config_keys_reach_only_their_hosts(
    fake, gateway, tmp_path, with_base, with_key, local_went_to, local_status
):
    gateway.reset()
    port = free_port()
    env = {"GEMINI_API_BASE": fake.base_url if with_base else "", "GEMINI_API_KEY": fake.key if with_key else ""}
    proxy = start_proxy(fake, tmp_path, port=port, config=seed_config(gateway, port), env=env)
    try:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
        direct = client.chat.completions.create(model="KTDS Model/gemini-3-flash-preview", messages=HI)
        assert direct.model == "KTDS Model/gemini-3-flash-preview"
        if local_status == 200:
            assert client.chat.completions.create(model="local-model", messages=HI).model == "local-model"
        else:
            with pytest.raises(openai.AuthenticationError) as caught:
                client.chat.completions.create(model="local-model", messages=HI)
            message = caught.value.response.json()["error"]["message"]
            assert f"The proxy sent no key to 127.0.0.1:{fake.port}: set GEMINI_API_KEY." in message
            assert "no key for 127.0.0.1" in proxy.log_text()
        local_key = {"google": fake.key if with_key else None, "gateway": KTDS_KEY}[local_went_to]
        expected = {
            "google": [("gemini-2.5-flash", f"Bearer {local_key}" if local_key else None)],
            "gateway": [("gemini-3-flash-preview", f"Bearer {KTDS_KEY}")],
        }
        if local_went_to == "gateway":
            expected["gateway"].append(("gemini-2.5-flash", f"Bearer {KTDS_KEY}"))
            expected["google"] = []
        assert seen(fake) == expected["google"] and seen(gateway) == expected["gateway"]
        headers = str([r["headers"] for r in fake.requests + gateway.requests])
        assert ALIAS_KEY not in headers  # the alias's key is the client's key for the proxy
        after = proxy.log_text().split("listening at", 1)[1].splitlines()[1:]
        between = list(itertools.takewhile(lambda line: "Routes from" not in line, after))
        assert len(between) < len(after), after[:10]  # the route table follows mitmproxy's line,
        poll = re.compile(r"client (dis)?connect$|GET http://127\.0\.0\.1:\d+/health$|^\s+<< 200 OK")
        assert all(poll.search(line) for line in between), between  # nothing but start_proxy's health poll
    finally:
        proxy.stop()


def test_log_lines_name_the_proxy_and_print_the_mask_as_text(proxy_factory, fake):
    proxy = proxy_factory("--flow-detail", "3")
    client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
    mark = proxy.log_size()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="bad?name", messages=HI)
    client.chat.completions.create(model="local-model", messages=HI)
    client.models.list()
    log = proxy.log_text(mark)
    own = f"http://127.0.0.1:{proxy.port}"
    assert f"POST {own}/v1/chat/completions" in log and f"GET {own}/v1/models" in log, log[-3000:]
    # The forwarded request names its upstream; only that one.
    assert log.count(f"POST {fake.root_url}/v1beta/openai/chat/completions") == 1, log[-3000:]
    assert f"Bearer {fake.key[:4]}...{fake.key[-2:]}" in log, log[-3000:]
    assert "\\xe2\\x80\\xa6" not in log
