"""Turn a capture-mode flow file into the small JSON fixtures of the capture unit tests (tests/fixtures/capture_*.json).

    python -m tests.record_capture_fixtures FLOWS_FILE

The flows come from opencode 1.18.33 run through `./mitm_run.sh capture` against tests/provider_standins.py (as
tests/test_capture_e2e.py does): each format's first request (the model answers with a tool call) and second (the
tool's result goes back). Kept small: the system prompt is cut to its first 300 characters and only the tools
read, bash and edit are kept (their schemas as opencode sent them). Credential headers are left out (they are
masked in the flow file anyway).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mitmproxy import io

from addon.capture.credentials import HEADERS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOSTS = {"gemini_native": "generativelanguage.googleapis.com", "anthropic": "api.anthropic.com"}
HOSTS["openai_responses"] = "api.openai.com"
KEEP_TOOLS = {"read", "bash", "edit"}


def trim(fmt: str, body: dict) -> dict:
    if fmt == "gemini_native":
        body["systemInstruction"]["parts"] = [{"text": body["systemInstruction"]["parts"][0]["text"][:300]}]
        for group in body.get("tools") or ():
            group["functionDeclarations"] = [d for d in group["functionDeclarations"] if d["name"] in KEEP_TOOLS]
    elif fmt == "anthropic":
        body["system"] = [{**body["system"][0], "text": body["system"][0]["text"][:300]}]
        body["tools"] = [t for t in body["tools"] if t["name"] in KEEP_TOOLS]
    else:
        first = body["input"][0]
        first["content"] = first["content"][:300] if isinstance(first["content"], str) else first["content"]
        body["tools"] = [t for t in body["tools"] if t.get("name") in KEEP_TOOLS]
    return body


def main(path: str) -> None:
    flows = [f for f in io.FlowReader(open(path, "rb")).stream() if (f.metadata.get("llm") or {}).get("capture")]
    for fmt, host in HOSTS.items():
        exchanges = []
        for flow in [f for f in flows if f.metadata["llm"]["capture"] == fmt][:2]:
            headers = {k: v for k, v in flow.request.headers.items() if k.lower() not in HEADERS}
            exchanges.append(
                {
                    "path": flow.request.path,
                    "request_headers": headers,
                    "request": trim(fmt, json.loads(flow.request.get_content())),
                    "response_headers": {"content-type": flow.response.headers.get("content-type", "")},
                    "response": flow.response.get_content().decode(),
                }
            )
        record = {"format": fmt, "host": host, "exchanges": exchanges}
        (FIXTURES / f"capture_{fmt}.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
