"""Right after mitmproxy says "listening", the proxy answers: litellm's import (seconds) runs off the event loop.

The real proxy (mitm_run.sh) is started without waiting for /health; the test watches its log for mitmproxy's
"listening at" line and acts at once. Bounds are generous (a loaded machine), and each is checked against
litellm's import time measured in the same test, so a pass cannot come from an import that happened to be quick.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import openai
import pytest

from tests.conftest import ROOT, start_proxy
from tests.support import DIRECT

pytestmark = pytest.mark.e2e

LISTENING = re.compile(r"listening at ")


def litellm_import_seconds() -> float:
    """How long `import litellm` takes in a fresh interpreter here and now (interpreter start-up excluded)."""
    code = "import time; t = time.monotonic(); import litellm; print(time.monotonic() - t)"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.split()[-1])


@pytest.fixture
def launch(fake, tmp_path, monkeypatch):
    """start_proxy without its wait for /health: returns at once; every proxy started is stopped afterwards."""
    monkeypatch.setitem(start_proxy.__globals__, "_wait_until_ready", lambda proxy, timeout: None)
    started = []

    def run(*args: str):
        started.append(start_proxy(fake, tmp_path, *args))
        return started[-1]

    yield run
    for proxy in started:
        proxy.stop()


def wait_for_listening(proxy, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not LISTENING.search(proxy.log_text()):
        assert proxy.alive(), proxy.log_text()[-3000:]
        assert time.monotonic() < deadline, f"no 'listening' line in {timeout} s:\n{proxy.log_text()[-3000:]}"
        time.sleep(0.005)


def health_seconds(proxy) -> float:
    """How long the first GET /health takes to be answered (200)."""
    t0 = time.monotonic()
    with DIRECT.open(proxy.root_url + "/health", timeout=30) as response:
        assert response.status == 200
    return time.monotonic() - t0


def test_health_answers_right_after_listening(launch):
    import_time = litellm_import_seconds()
    proxy = launch()
    wait_for_listening(proxy)
    answered = health_seconds(proxy)
    print(f"/health answered {answered * 1000:.0f} ms after 'listening'; litellm's import takes {import_time:.1f} s")
    assert answered < 1.0 and answered < import_time / 4


def test_a_chat_request_sent_at_listening_succeeds_and_health_does_not_wait_for_it(launch):
    import_time = litellm_import_seconds()
    proxy = launch()
    wait_for_listening(proxy)
    client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=120)
    answers: list = []
    chat = threading.Thread(
        target=lambda: answers.append(
            client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "Say hi."}])
        )
    )
    t0 = time.monotonic()
    chat.start()
    answered = health_seconds(proxy)  # while the chat request waits for litellm, the loop still serves
    chat.join(120)
    chat_time = time.monotonic() - t0
    assert answers and answers[0].choices[0].message.content and answers[0].model == "local-model"
    assert answered < 1.0 and answered < import_time / 4
    print(f"/health {answered * 1000:.0f} ms, first chat {chat_time:.1f} s, litellm import {import_time:.1f} s")


def test_sigterm_right_after_listening_exits_quickly(launch):
    import_time = litellm_import_seconds()
    proxy = launch("--set", "translate_shutdown_grace=0")
    wait_for_listening(proxy)
    t0 = time.monotonic()
    code = proxy.stop(grace=60)
    took = time.monotonic() - t0
    print(f"SIGTERM at 'listening': exit {code} after {took:.2f} s; litellm's import takes {import_time:.1f} s")
    assert code == 0, proxy.log_text()[-3000:]
    assert took < 2.0 and took < import_time / 2
