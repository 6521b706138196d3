"""addon/gemini/native_request.py: an OpenAI chat body as a generateContent body, media never fetched."""

from __future__ import annotations

import pytest

from addon.gemini import native_request
from tests.fake_gemini_native import check_body


def body(**fields: object) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


def test_paths() -> None:
    assert native_request.native_path("gemini-2.5-flash", False) == "models/gemini-2.5-flash:generateContent"
    assert native_request.native_path("models/g", True) == "models/g:streamGenerateContent?alt=sse"


def test_a_plain_request_asks_for_thought_summaries_and_passes_the_strict_fake() -> None:
    native, notes = native_request.translate(
        body(stream=True, stream_options={"include_usage": True}), "gemini-2.5-flash", "gemini"
    )
    assert native["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}
    assert "messages" not in native and "model" not in native and "stream" not in native
    assert any("includeThoughts" in n for n in notes)
    check_body(native, "gemini-2.5-flash", set())


def test_a_model_that_does_not_think_gets_no_thinking_config() -> None:
    native, _ = native_request.translate(body(), "gemini-2.0-flash", "gemini")
    assert "generationConfig" not in native


def test_reasoning_effort_none_on_gemini_3_is_a_low_level_without_thoughts() -> None:
    native, _ = native_request.translate(body(reasoning_effort="none"), "gemini-3-pro-preview", "gemini")
    assert native["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "low", "includeThoughts": False}
    check_body(native, "gemini-3-pro-preview", set())


def test_unknown_fields_are_dropped_and_noted() -> None:
    native, notes = native_request.translate(
        body(logit_bias={"1": 2}, prediction={"x": 1}), "gemini-2.5-flash", "gemini"
    )
    assert "logit_bias" not in str(native)
    assert "dropped logit_bias (no Gemini counterpart)" in notes


@pytest.mark.parametrize(
    "url",
    ["https://example.com/cat.png", "http://example.com/cat", "gs://bucket/object-without-extension"],
)
def test_media_that_would_be_downloaded_is_refused(url: str) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    with pytest.raises(ValueError, match="does not download media"):
        native_request.translate({"messages": messages}, "gemini-2.5-flash", "gemini")


def test_inline_media_passes() -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png;base64,iVBO"}]}]
    native, _ = native_request.translate({"messages": messages}, "gemini-2.5-flash", "gemini")
    assert native["contents"][0]["parts"][0]["inline_data"]["data"] == "iVBO"


def test_a_bad_reasoning_effort_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="reasoning_effort"):
        native_request.translate(body(reasoning_effort="loud"), "gemini-2.5-flash", "gemini")
