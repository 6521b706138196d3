"""addon/inspection/render/document.py: what every LLM view is drawn with (record, sections, bodies, clipping)."""

from __future__ import annotations

import orjson
import pytest
from mitmproxy.contentviews import Metadata
from mitmproxy.test import tflow

from addon.formats import kept_body
from addon.formats.exchange import Exchange
from addon.inspection.render.document import (
    RULE,
    TEXT_LIMIT,
    Section,
    View,
    clip,
    indent,
    join,
    kept_request,
    loads,
    pretty,
    record,
    shorten,
)


def test_sections_are_joined_by_a_rule_and_empty_ones_left_out() -> None:
    text = join(Section("first:", ["a", "b"]), None, Section(None, ["c"]), Section("last:"))
    assert text.split("\n") == ["first:", "a", "b", "", RULE, "c", "", RULE, "last:"]
    assert join(Section("only:", ["x"])) == "only:\nx"
    assert join(None) == ""


class Shout(View):
    name = "shout"
    not_mine = "Not loud enough."

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        return [Section(f"model {ex.client_model}:", [data.decode().upper()])] if data.endswith(b"!") else None


def test_a_view_draws_its_sections_from_the_flows_record_or_says_it_is_not_its_data() -> None:
    flow = tflow.tflow()
    flow.metadata["llm"] = Exchange(client_model="local-3")
    assert Shout().prettify(b"hi!", Metadata(flow=flow)) == "model local-3:\nHI!"
    assert Shout().syntax_highlight == "none"
    with pytest.raises(ValueError, match="Not loud enough."):
        Shout().prettify(b"hi", Metadata(flow=flow))


def test_the_record_is_the_flows_own_or_an_empty_one_and_none_is_created() -> None:
    flow = tflow.tflow()
    assert record(Metadata(flow=flow)) == Exchange() and "llm" not in flow.metadata
    assert record(Metadata()) == Exchange()
    flow.metadata["llm"] = {"client_model": "saved"}  # a flow read from a -w file holds plain data
    assert record(Metadata(flow=flow)).client_model == "saved"
    ex = Exchange(client_format="anthropic")
    flow.metadata["llm"] = ex
    assert record(Metadata(flow=flow)) is ex


def test_the_kept_request_is_whole_again_when_kept_as_a_patch() -> None:
    flow = tflow.tflow()
    messages = [{"role": "user", "content": "a question long enough that a patch is the cheaper way to keep it"}]
    forwarded = orjson.dumps({"model": "gemini-3", "messages": messages})
    flow.request.content = forwarded
    patch = kept_body.make(orjson.dumps({"model": "local-3", "messages": messages}), forwarded)
    assert patch is not None
    stored = {"method": "POST", "path": "/v1/chat/completions", "headers": [], "body_patch": patch}
    ex = Exchange(client_request=stored)
    whole = kept_request(Metadata(flow=flow), ex)
    assert whole is not None and orjson.loads(whole["body"]) == {"model": "local-3", "messages": messages}
    flow.request.content = b'{"edited": true}'  # the forwarded body changed since: the record as stored
    assert kept_request(Metadata(flow=flow), ex) == stored
    assert kept_request(Metadata(flow=flow), Exchange()) is None
    assert kept_request(Metadata(), ex) is None


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"a":[1,{"b":null}]}', '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ]\n}'),
        (b"not json", "not json"),
        (b"caf\xe9", "caf\ufffd"),
        (b"", ""),
    ],
)
def test_a_body_is_indented_json_or_its_text(body: bytes, shown: str) -> None:
    assert pretty(body) == shown


def test_loads_is_none_for_what_is_not_json() -> None:
    assert loads(b'{"a": 1}') == {"a": 1} and loads(b"{") is None and loads("[]") == []


def test_clipping_keeps_one_line_of_the_limit() -> None:
    assert clip("a\nb", 10) == "a b"
    assert clip("x" * 10, 10) == "x" * 10
    assert clip("x" * 11, 10) == "x" * 9 + "…"
    assert clip("plain") == "plain" and clip({"k": [1]}) == '{"k":[1]}'
    assert clip({1, 2}) == '"{1, 2}"' and len(clip("y" * 500)) == 200


def test_long_text_loses_its_middle_and_says_how_much() -> None:
    assert shorten("s" * TEXT_LIMIT) == "s" * TEXT_LIMIT
    text = "h" * 1500 + "m" * 1000 + "t" * 600
    cut = shorten(text)
    assert cut.startswith("h" * 1200 + "\n... (1300 chars) ...\n") and cut.endswith("\n" + "t" * 600)


def test_indent() -> None:
    assert indent("a\nb", 2) == ["  a", "  b"] and indent("", 4) == []
