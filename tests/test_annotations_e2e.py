"""Saved flows (-w) keep the comment, the mark and flow.metadata["llm"], and read back with the chat view.

A real proxy (mitm_run.sh) in front of the fake Gemini saves its flows; the file is read back with
mitmproxy.io and with `mitmdump -nr FILE --flow-detail 3 -s addon/proxy.py`, as a user would.
"""

import re
import subprocess

import openai
import pytest
from mitmproxy import io as mitmio

from tests.conftest import ROOT, start_proxy
from tests.support import READ_TOOL, WRITE_TOOL

pytestmark = pytest.mark.e2e


def stream(client: openai.OpenAI, text: str) -> list:
    chunks = client.chat.completions.create(
        model="local-model",
        messages=[{"role": "user", "content": text}],
        tools=[READ_TOOL, WRITE_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    return list(chunks)


@pytest.fixture(scope="module")
def saved(fake_gemini, tmp_path_factory):
    """The flows file of a proxy that saw a tool call, a slow text answer, a tool call with wrong arguments, an
    upstream error and a request it refused itself."""
    workdir = tmp_path_factory.mktemp("annotations")
    path = workdir / "flows.mitm"
    proxy = start_proxy(fake_gemini.reset(), workdir, "-w", str(path))
    try:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
        # [linger]: the upstream ends its body after the SDK has closed the connection at [DONE], every time (the
        # order that once left a complete answer marked as failed, about one run in four).
        stream(client, 'Look at it. [tool:read {"filePath": "/tmp/x.txt"}] [linger:0.5]')
        stream(client, "Tell me slowly. [chunks:6:40] [linger:0.5]")
        fake_gemini.wait_event("disconnect")  # the proof that the client left before the upstream's end
        stream(client, 'Save it. [tool:write {"filePath": "/tmp/y.txt"}]')
        with pytest.raises(openai.RateLimitError):
            stream(client, "Too many. [error:429]")
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="local-model", messages=[{"role": "user", "content": "Hi"}], tools=["not a tool"]
            )
    finally:
        assert proxy.stop() == 0, proxy.log_text()[-4000:]
    return path, proxy.log_text()


def read_flows(path):
    with path.open("rb") as f:
        flows = list(mitmio.FlowReader(f).stream())
    return [f for f in flows if f.request.path.endswith("/chat/completions")]


def test_saved_flows_keep_comment_mark_and_metadata(saved, fake_gemini):
    path, _ = saved
    read, slow, write, failed, refused = read_flows(path)

    assert read.error is None and slow.error is None  # the client left after [DONE]: nothing was cut
    assert read.marked == ":wrench:"
    assert read.comment.startswith("1 tool call: read | local-model -> gemini-2.5-flash | "), read.comment
    assert " in / " in read.comment and "first chunk " in read.comment
    assert re.search(r" \| s:[0-9a-f]{4,8} #\d+$", read.comment), read.comment  # the session's tag last
    meta = read.metadata["llm"]
    assert meta["answer"]["tool_calls"][0]["name"] == "read"
    assert meta["answer"]["tool_calls"][0]["arguments"] == '{"filePath": "/tmp/x.txt"}'
    assert meta["answer"]["finish_reason"] == "tool_calls"
    assert meta["chunk_times"] and all(isinstance(t, float) for t in meta["chunk_times"])
    assert b'"name":"read"' in meta["upstream_raw"] and b"gemini-2.5-flash" in meta["upstream_raw"]
    assert b"local-model" in read.response.content and b"gemini-2.5-flash" not in read.response.content

    assert slow.marked == "" and slow.metadata["llm"]["answer"]["content"].startswith("chunk 0 chunk 1 ")
    assert len(slow.metadata["llm"]["chunk_times"]) == 7  # 6 chunks and [DONE]
    assert re.search(r" tok/s \| s:[0-9a-f]{4,8} #\d+$", slow.comment), slow.comment

    assert write.marked == ":warning:"
    assert write.comment.startswith("tool-call problem: write (call_1): missing required field 'content' | 1 tool call")
    assert write.metadata["llm"]["tool_checks"] == ["write (call_1): missing required field 'content'"]

    assert failed.marked == ":x:" and failed.response.status_code == 429
    # The message as the client got it, not Gemini's list-wrapped body.
    assert failed.comment.startswith("error: upstream 429: Resource has been exhausted (e.g. check quota). | ")

    assert refused.marked == ":x:" and refused.response.status_code == 400
    assert refused.comment == "refused by the proxy: tools[0] is not an object."

    assert fake_gemini.key.encode() not in path.read_bytes()


def test_the_log_tells_the_same(saved):
    _, log = saved
    assert "tool call check (the model got it wrong): write (call_1): missing required field 'content'" in log
    assert "  tool-call problem: write (call_1): missing required field 'content' | 1 tool call: write |" in log


def test_mitmdump_reads_them_back_with_the_chat_view(saved, fake_gemini):
    path, _ = saved
    done = subprocess.run(
        [str(ROOT / ".venv/bin/mitmdump"), "-nr", str(path), "--flow-detail", "3", "-s", "addon/proxy.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HOME": str(path.parent)},
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    # The chat view (registered by the entry script) renders both sides.
    assert "chat request: 1 messages, 2 tools" in out
    assert "  read(filePath: string*, offset?: number, limit?: number)" in out
    assert "tool call [0] read (call_1):\n" in out and '"filePath": "/tmp/x.txt"' in out
    assert "tool-call check: the call fits the offered tools" in out
    assert "tool-call check: the model, not the client, sent tool calls" in out
    assert "  - write (call_1): missing required field 'content'" in out
    # The comments, as saved, are in the log the addon writes for each flow it reads.
    for f in read_flows(path):
        assert f"  {f.comment}" in out or f"POST /v1/chat/completions: {f.comment}" in out
    assert fake_gemini.key not in out
