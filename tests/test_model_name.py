"""addon/config/model_name.py: one rule for model names, the same wherever a name is checked."""

import orjson
import pytest

from addon.config.model_name import check_model_name
from addon.config.opencode_config import parse_config
from addon.config.resolution import Settings, resolve
from addon.request.chat_request import ClientError, parse_chat_request

GOOD = [
    "local-model",
    "gemini-2.5-flash",
    "models/gemini-2.5-flash",
    "openrouter/meta-llama/llama-3.1-8b-instruct:free",
    "a.b-c_d",
    "a..b",  # dots inside a segment are no path step
    "...",
    "x" * 256,
    "has space",
    "KTDS Model/gemini-3-flash-preview",  # an opencode provider key with a space
    "modèle/ünïcode-名前",
    "a+b=c@d!",
]
BAD = [
    ("", "empty"),
    ("   ", "empty"),
    ("x" * 257, "257 characters long"),
    ("m" * 10_000, "10000 characters long"),
    ("local\nmodel", r"'\\n'"),
    ("a\tb", r"'\\t'"),
    ("a\x00b", r"'\\x00'"),
    ("a\x7fb", r"'\\x7f'"),
    ("a\x85b", r"'\\x85'"),  # a C1 control
    ("a\u2028b", r"'\\u2028'"),  # a line separator
    ("m?x=1", "'\\?'"),
    ("m#frag", "'#'"),
    ("m%2e", "'%'"),
    ("a\\b", r"'\\\\'"),
    ("../etc/passwd", "segment"),
    ("local-model/../../x", "segment"),
    ("a/./b", "segment"),
    ("/abs", "segment"),
    ("//evil.example.com/x", "segment"),
    ("trailing/", "segment"),
    ("a//b", "segment"),
    ("KTDS Model/ /x", "segment"),
    ("..", "segment"),
]
CONFIG = parse_config("{}", "/x/opencode.json", {})
SETTINGS = Settings(api_base="http://upstream.test/v1beta/openai/", api_key="AIza-test")


def request(model: str) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.parametrize("model", GOOD)
def test_good_names_pass_everywhere(model):
    check_model_name(model)
    assert parse_chat_request(request(model), 1 << 20).model == model
    assert resolve(CONFIG, model, SETTINGS).client_model == model


@pytest.mark.parametrize("model, says", BAD)
def test_bad_names_are_refused_everywhere_with_the_same_words(model, says):
    with pytest.raises(ValueError, match=f"^The model name .*{says}") as checked:
        check_model_name(model)
    with pytest.raises(ClientError) as read:
        parse_chat_request(request(model), 1 << 20)
    assert (read.value.code, read.value.status, str(read.value)) == ("invalid_model", 400, str(checked.value))
    with pytest.raises(ValueError) as resolved:
        resolve(CONFIG, model, SETTINGS)
    assert str(resolved.value) == str(checked.value)


@pytest.mark.parametrize("model", [None, 5, ["local-model"], {"name": "x"}])
def test_a_model_that_is_not_a_string(model):
    with pytest.raises(ClientError, match="needs a `model` string") as read:
        parse_chat_request(orjson.dumps({"model": model, "messages": []}), 1 << 20)
    assert read.value.code == "invalid_model"
