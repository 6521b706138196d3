"""addon/inspection/media_placeholders.py: opencode's text in place of an attachment, and the setting that fixes it."""

import orjson
import pytest

from addon.inspection import media_placeholders

# opencode 1.18's texts (its message transform, and its media stripping), as they reach the proxy.
UNSUPPORTED = 'ERROR: Cannot read "screenshot.png" (this model does not support image input). Inform the user.'
STRIPPED = "[Attached image/png: screenshot.png]"


def request(*parts: dict, role: str = "user") -> dict:
    return {
        "model": "local-model",
        "messages": [
            {"role": "system", "content": "You are opencode, an interactive CLI tool."},
            {"role": role, "content": [{"type": "text", "text": "What does this screenshot show?"}, *parts]},
        ],
        "stream": True,
    }


@pytest.mark.parametrize("placeholder", [UNSUPPORTED, STRIPPED, "[Attached application/pdf: spec.pdf]"])
def test_opencodes_placeholders_are_found(placeholder):
    body = request({"type": "text", "text": placeholder})
    assert media_placeholders.may_have(str(body).encode())
    assert media_placeholders.find(body) == [placeholder]


def test_a_plain_string_content_and_repeats():
    body = {"messages": [{"role": "user", "content": f"{STRIPPED}\n{STRIPPED}\nand {UNSUPPORTED}"}]}
    assert media_placeholders.find(body) == [STRIPPED, UNSUPPORTED]


@pytest.mark.parametrize(
    "body",
    [
        request({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}),  # the real image
        request({"type": "text", "text": STRIPPED}, role="assistant"),  # the model quoting it is not opencode's doing
        request({"type": "text", "text": "[Attached 2 files]"}),
        {"messages": "not a list"},
        "not an object",
    ],
)
def test_other_requests_have_none(body):
    assert media_placeholders.find(body) == []


def test_the_advice_names_the_setting_as_opencodes_schema_spells_it():
    advice = media_placeholders.advice("local/local-model")
    assert "provider.<id>.models.local-model" in advice
    assert '"modalities": {"input": ["text", "image", "pdf"], "output": ["text"]}' in advice


@pytest.mark.parametrize("placeholder", [UNSUPPORTED, STRIPPED])
@pytest.mark.parametrize("before", [0, 3, media_placeholders.CANDIDATES + 5])
def test_the_first_look_finds_a_marker_behind_any_number_of_lookalike_bytes(placeholder, before):
    """`[` and `E` are everywhere in code: the look at each of them gives way to one search past CANDIDATES."""
    noise = b'x = [1]; raise Exception("E") ' * before
    body = orjson.dumps(
        {"messages": [{"role": "tool", "content": noise.decode()}, {"role": "user", "content": placeholder}]}
    )
    assert media_placeholders.may_have(body)
    assert not media_placeholders.may_have(body.replace(placeholder.encode().replace(b'"', b'\\"'), b"gone"))
