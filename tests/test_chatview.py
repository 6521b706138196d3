import io

import orjson
import pytest
from mitmproxy import contentviews
from mitmproxy.addons import dumper
from mitmproxy.contentviews import Metadata
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection.chatview import ChatView, LLMUpstreamRawView
from tests.support import zod_object

SYSTEM_PROMPT = (
    "You are opencode, an interactive CLI tool that helps users with software engineering tasks. "
    "Use the instructions below and the tools available to you to assist the user.\n"
) * 60 + "IMPORTANT: keep your answers short."


def tool(name: str, description: str, parameters: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


STR, NUM = {"type": "string"}, {"type": "number"}
TODO = {
    "type": "object",
    "properties": {"content": STR, "status": {"type": "string", "enum": ["pending", "completed"]}},
    "required": ["content", "status"],
    "additionalProperties": False,
}
OPENCODE_TOOLS = [
    tool(
        "bash",
        "Executes a given bash command in a persistent shell session.\nUsage notes: ...",
        zod_object({"command": STR, "timeout": NUM, "description": STR}, ["command", "description"]),
    ),
    tool(
        "read",
        "Reads a file from the local filesystem.",
        zod_object({"filePath": STR, "offset": NUM, "limit": NUM}, ["filePath"]),
    ),
    tool(
        "edit",
        "Performs exact string replacements in files.",
        zod_object(
            {"filePath": STR, "oldString": STR, "newString": STR, "replaceAll": {"type": "boolean"}},
            ["filePath", "oldString", "newString"],
        ),
    ),
    tool("glob", "Fast file pattern matching tool.", zod_object({"pattern": STR, "path": STR}, ["pattern"])),
    tool("grep", "Fast content search tool.", zod_object({"pattern": STR, "path": STR, "include": STR}, ["pattern"])),
    tool(
        "todowrite",
        "Create and manage a structured task list.",
        zod_object({"todos": {"type": "array", "items": TODO}}, ["todos"]),
    ),
]


def tc(id: str, name: str, arguments: dict) -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": orjson.dumps(arguments).decode()}}


OPENCODE_REQUEST = {
    "model": "local-model",
    "messages": [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Why does app.ts crash?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 500}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                tc("call_1", "read", {"filePath": "/repo/src/app.ts"}),
                tc("call_2", "glob", {"pattern": "**/*.test.ts"}),
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "1\timport x from './x'\n2\tx.run()"},
        {"role": "tool", "tool_call_id": "call_2", "content": "/repo/src/app.test.ts"},
        {"role": "assistant", "content": "x.run() is called before x is ready."},
        {"role": "user", "content": "Fix it."},
    ],
    "tools": OPENCODE_TOOLS,
    "tool_choice": "auto",
    "temperature": 0.2,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def frame(delta: dict | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local-model", "choices": choices}
    return b"data: " + orjson.dumps(chunk | ({"usage": usage} if usage else {})) + b"\n\n"


def frag(index: int, args: str, id: str | None = None, name: str | None = None) -> bytes:
    call = {"index": index, "function": {"arguments": args} | ({"name": name} if name else {})}
    return frame({"tool_calls": [call | ({"id": id, "type": "function"} if id else {})]})


DONE = b"data: [DONE]\n\n"
TOOL_STREAM = [
    frame({"role": "assistant", "reasoning_content": "The bug is in app.ts."}),
    frame({"content": "Let me fix it."}),
    frag(0, "", "call_3", "edit"),
    frag(0, '{"filePath": "/repo/src/app.ts", '),
    frag(1, '{"todos": [{"content": "fix", "status": "pending"}]}', "call_4", "todowrite"),
    frag(0, '"oldString": "x.run()", "newString": "await x.ready(); x.run()"}'),
    frame(finish="tool_calls"),
    frame(usage={"prompt_tokens": 4211, "completion_tokens": 63, "total_tokens": 4274}),
    DONE,
]
CHUNK_TIMES = [0.412, 0.455, 0.61, 0.612, 0.7, 0.71, 0.711, 0.72, 0.721]

EXPECTED_TOOL_STREAM = """\
chat completion stream
model: local-model
finish_reason: tool_calls
usage: {"prompt_tokens":4211,"completion_tokens":63,"total_tokens":4274}

reasoning:
  The bug is in app.ts.

text:
  Let me fix it.

tool call [0] edit (call_3):
  {
    "filePath": "/repo/src/app.ts",
    "oldString": "x.run()",
    "newString": "await x.ready(); x.run()"
  }

tool call [1] todowrite (call_4):
  {
    "todos": [
      {
        "content": "fix",
        "status": "pending"
      }
    ]
  }

tool-call check: all 2 calls fit the offered tools

chunks (9):
    #      time  added
    0    0.412s  role=assistant +reasoning "The bug is in app.ts."
    1    0.455s  +text "Let me fix it."
    2    0.610s  +tool_call[0] edit
    3    0.612s  +args 33 chars
    4    0.700s  +tool_call[1] todowrite +args 52 chars
    5    0.710s  +args 64 chars
    6    0.711s  finish=tool_calls
    7    0.720s  usage
    8    0.721s  [DONE]"""

view = ChatView()


def chat_flow(response: bytes = b"".join(TOOL_STREAM), request: dict = OPENCODE_REQUEST, **llm):
    f = tflow.tflow(resp=True)
    f.request.path = "/v1/chat/completions"
    f.request.headers["content-type"] = "application/json"
    f.request.content = orjson.dumps(request)
    f.response.headers["content-type"] = "text/event-stream"
    f.response.content = response
    f.metadata["llm"] = Exchange(**llm)
    return f


def response_meta(f) -> Metadata:
    return Metadata(flow=f, http_message=f.response, content_type=f.response.headers.get("content-type"))


def request_meta(f) -> Metadata:
    return Metadata(flow=f, http_message=f.request, content_type="application/json")


def render(f) -> str:
    return view.prettify(f.response.content, response_meta(f))


# --- requests ---------------------------------------------------------------------------------


def test_request_conversation():
    f = chat_flow()
    text = view.prettify(f.request.content, request_meta(f))
    assert text.startswith("chat request: 7 messages, 6 tools\n\nmessages:\n[0] system  (")
    assert "You are opencode, an interactive CLI tool" in text and "IMPORTANT: keep your answers short." in text
    assert f"\n    ... ({len(SYSTEM_PROMPT) - 1800} chars) ...\n" in text
    assert "[1] user\n    Why does app.ts crash?\n    [image_url: data:image/png;base64,AAAA" in text
    assert (
        """\
[2] assistant
    tool call read (call_1):
      {
        "filePath": "/repo/src/app.ts"
      }
    tool call glob (call_2):
      {
        "pattern": "**/*.test.ts"
      }
[3] tool: tool result for call_1 (read)
    1\timport x from './x'
    2\tx.run()
[4] tool: tool result for call_2 (glob)
"""
        in text
    )


def test_request_tools_and_parameters():
    f = chat_flow()
    text = view.prettify(f.request.content, request_meta(f))
    assert (
        """
tools offered (6):
  bash(command: string*, timeout?: number, description: string*)
      Executes a given bash command in a persistent shell session.
  read(filePath: string*, offset?: number, limit?: number)
      Reads a file from the local filesystem.
"""
        in text
    )
    assert "  todowrite(todos: object[]*)\n" in text
    assert text.endswith("""
parameters:
  model: local-model
  tool_choice: auto
  temperature: 0.2
  stream: true
  stream_options: {"include_usage":true}""")


def test_long_tool_arguments_in_the_request_are_shortened():
    write = tc("c", "write", {"content": "y" * 9000})
    body = {"messages": [{"role": "assistant", "tool_calls": [write]}, {"role": "tool"}]}
    text = view.prettify(orjson.dumps(body), Metadata())
    assert '"content": "' + "y" * 1200 + "\\n... (7200 chars) ...\\n" in text
    assert "[1] tool: tool result for None (unknown call)" not in text and "[1] tool" in text


# --- responses --------------------------------------------------------------------------------


def test_streamed_tool_calls():
    assert render(chat_flow(chunk_times=CHUNK_TIMES)) == EXPECTED_TOOL_STREAM


def test_invalid_tool_calls_are_blamed_on_the_model():
    stream = [
        frag(0, '{"filePath": 3', "call_1", "read"),
        frag(1, '{"description": "x"}', "call_2", "bash"),
        frag(2, '{"filePath": "a", "oldString": 1, "newString": ""}', "call_3", "edit"),
        frag(3, "{}", "call_4", "frobnicate"),
        frame(finish="tool_calls"),
        DONE,
    ]
    text = render(chat_flow(b"".join(stream)))
    assert (
        """
tool-call check: the model, not the client, sent tool calls that do not fit the tools the request offered:
  - read (call_1): model sent malformed JSON arguments: unexpected end of data at char 14
  - bash (call_2): missing required field 'command'
  - edit (call_3): 1 is not of type 'string' at /oldString
  - frobnicate (call_4): unknown tool (not offered in the request)
"""
        in text
    )
    assert 'tool call [0] read (call_1):\n  (not valid JSON) {"filePath": 3\n' in text


def test_tool_check_without_the_request():
    f = chat_flow()
    text = view.prettify(f.response.content, Metadata(content_type="text/event-stream"))
    assert "tool-call check: skipped, the request body is not available" in text


def test_cut_stream_and_error():
    f = chat_flow(b"".join(TOOL_STREAM[:4]), error="upstream closed the connection")
    text = render(f)
    assert text.startswith(
        "chat completion stream\nstream ended without [DONE] — cut or incomplete\n"
        "error: upstream closed the connection\n"
    )
    assert "finish_reason: None" in text and '"filePath": "/repo/src/app.ts", ' in text


def test_truncated_body_shows_the_stored_answer():
    answer = {"content": "All fixed.", "reasoning": "", "tool_calls": [], "finish_reason": "stop", "usage": None}
    text = render(chat_flow(b"".join(TOOL_STREAM[:3]), body_truncated=True, answer=answer))
    assert "the stored body was cut at the cap; the answer below is flow.metadata['llm']['answer']" in text
    assert "text:\n  All fixed." in text and "finish_reason: stop" in text
    assert "without [DONE]" not in text and "tool call [0]" not in text
    assert "chunks (3):" in text


def test_unstored_streamed_body_shows_the_stored_answer():
    answer = {"content": "Hi.", "tool_calls": [{"id": "c1", "name": "read", "arguments": '{"filePath": "a"}'}]}
    f = chat_flow(b"", answer=answer)
    assert view.render_priority(b"", response_meta(f)) == 2
    text = render(f)
    assert text.startswith("chat completion: response body not stored; answer from flow.metadata['llm']['answer']\n")
    assert "tool-call check: the call fits the offered tools" in text


def test_truncated_body_without_a_stored_answer_says_it_is_partial():
    text = render(chat_flow(b"".join(TOOL_STREAM[:3]), body_truncated=True))
    assert "the stored body was cut at the cap; the answer below is partial (no stored answer)" in text
    assert "tool call [0] edit (call_3):" in text


def test_long_chunk_tables_are_cut(monkeypatch):
    monkeypatch.setattr("addon.inspection.render.conversation.CHUNK_ROWS", 3)
    text = render(chat_flow())
    assert text.endswith("  +tool_call[0] edit\n... (6 more chunks)")


def test_json_response():
    message = {"role": "assistant", "content": "Hello!", "reasoning": "Greet back."}
    body = orjson.dumps(
        {
            "object": "chat.completion",
            "model": "local-model",
            "usage": {"total_tokens": 7},
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
    )
    f = chat_flow(body)
    f.response.headers["content-type"] = "application/json"
    assert (
        render(f)
        == """\
chat completion (JSON)
model: local-model
finish_reason: stop
usage: {"total_tokens":7}

reasoning:
  Greet back.

text:
  Hello!"""
    )


# --- picking the view -------------------------------------------------------------------------


def other_flow(path: str, content_type: str, body: bytes):
    f = tflow.tflow(resp=True)
    f.request.path = path
    f.response.headers["content-type"] = content_type
    f.response.content = body
    return f


NOT_CHAT = [
    other_flow("/v1/models", "application/json", b'{"object": "list", "data": []}'),
    other_flow("/v1/chat/completions", "application/json", b'{"error": {"message": "Invalid model"}}'),
    other_flow("/v1/chat/completions", "text/plain", b"upstream timed out"),
    other_flow("/v1/chat/completions", "application/json", b""),
    other_flow("/v1/chat/completions", "application/json", b"{broken"),
    other_flow("/events", "text/event-stream", b'data: {"tick": 1}\n\n'),
]


@pytest.mark.parametrize("f", NOT_CHAT)
def test_not_chat(f):
    assert view.render_priority(f.response.content, response_meta(f)) < 0
    with pytest.raises(ValueError, match="Not an OpenAI chat completion"):
        view.prettify(f.response.content, response_meta(f))


def test_chat_is_recognised_by_path_or_by_body():
    f = chat_flow()
    assert view.render_priority(f.request.content, request_meta(f)) == 2
    assert view.render_priority(f.response.content, response_meta(f)) == 2
    elsewhere = other_flow("/proxy/llm", "text/event-stream", b"".join(TOOL_STREAM))
    assert view.render_priority(elsewhere.response.content, response_meta(elsewhere)) == 2
    gemini_without_object = b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
    assert view.render_priority(gemini_without_object, response_meta(f)) == 2


@pytest.fixture
def registry(monkeypatch):
    """The global registry, restored afterwards, with our views added the way the entry script does."""
    monkeypatch.setattr(contentviews.registry, "_by_name", dict(contentviews.registry._by_name))
    contentviews.add(ChatView)
    contentviews.add(LLMUpstreamRawView)
    return contentviews.registry


def test_auto_picked_over_json_for_chat_flows_only(registry):
    f = chat_flow(chunk_times=CHUNK_TIMES)
    models = other_flow("/v1/models", "application/json", b'{"object": "list", "data": []}')
    with taddons.context():
        assert contentviews.prettify_message(f.request, f).view_name == "LLM chat"
        response = contentviews.prettify_message(f.response, f)
        assert (response.view_name, response.text) == ("LLM chat", EXPECTED_TOOL_STREAM)
        assert contentviews.prettify_message(models.response, models).view_name == "JSON"


def test_upstream_raw_view(registry):
    # Gemini: parallel calls, each complete, all at index 0
    events = [
        frag(0, '{"filePath": "a"}', "call_a", "read"),
        frag(0, '{"command": "ls", "description": "l"}', "call_b", "bash"),
        frame(finish="stop"),
    ]
    f = chat_flow(upstream_raw=b"".join(events))
    upstream_view = LLMUpstreamRawView()
    assert upstream_view.render_priority(f.response.content, response_meta(f)) == -1
    text = upstream_view.prettify(b"", response_meta(f))
    assert text.startswith("upstream answer, before the proxy rewrote it\nstream ended without [DONE]")
    assert "tool call [1] bash (call_b):" in text and "tool-call check: all 2 calls fit the offered tools" in text
    assert text.endswith("\nraw events:\n" + "\n".join(f"[{i}] {e.decode().rstrip()}" for i, e in enumerate(events)))
    with taddons.context():
        chosen = contentviews.prettify_message(f.response, f, view_name="LLM upstream raw")
        assert chosen.view_name == "LLM upstream raw" and "raw events:" in chosen.text
        assert contentviews.prettify_message(f.response, f).view_name == "LLM chat"
    with pytest.raises(ValueError, match="no upstream_raw"):
        upstream_view.prettify(b"", response_meta(chat_flow()))


NOT_A_COMPLETION = (
    "upstream body, before the proxy rewrote it: The body is not a chat completion: it has no 'choices' list."
)


@pytest.mark.parametrize(
    "raw, first_line",
    [
        (
            b'{"choices": [{"index": 0, "message": {"content": "Hi"}, "finish_reason": "stop"}]}',
            "upstream answer, before the proxy rewrote it (JSON)",
        ),
        (b'{"error": {"code": 400, "message": "Bad schema"}}', NOT_A_COMPLETION),
        (b'[{"error": {"code": 400, "message": "Bad schema"}}]', NOT_A_COMPLETION),  # Gemini wraps errors in a list
        (b"<html>502 Bad Gateway</html>", "upstream body, before the proxy rewrote it: The body is not JSON: "),
    ],
)
def test_upstream_raw_that_is_not_sse(raw, first_line):
    text = LLMUpstreamRawView().prettify(b"", response_meta(chat_flow(upstream_raw=raw)))
    assert text.startswith(first_line) and text.endswith("\n\nraw body:\n" + raw.decode())


def test_mitmdump_flow_detail_3(registry):
    out = io.StringIO()
    d = dumper.Dumper(out)
    with taddons.context(d) as tctx:
        tctx.configure(d, flow_detail=3)
        d.response(chat_flow(chunk_times=CHUNK_TIMES))
    printed = out.getvalue()
    assert "tool call [0] edit (call_3):" in printed and "tool-call check: all 2 calls fit" in printed
    assert "read(filePath: string*, offset?: number, limit?: number)" in printed


def test_a_request_with_an_attachment_opencode_sent_as_text_names_the_fix():
    placeholder = "[Attached image/png: crash.png]"
    messages = [*OPENCODE_REQUEST["messages"], {"role": "user", "content": f"See the screenshot.\n{placeholder}"}]
    f = chat_flow(
        request={**OPENCODE_REQUEST, "model": "gemini-2.5-flash", "messages": messages}, client_model="local-model"
    )
    text = view.prettify(f.request.content, request_meta(f))
    head = text.split("messages:")[0]
    assert "cannot read it" in head and "provider.<id>.models.local-model" in head and '"modalities"' in head
    assert f"  {placeholder}" in head
    assert "modalities" not in view.prettify(chat_flow().request.content, request_meta(chat_flow()))
