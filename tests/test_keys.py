"""keys.py: which key may go to which base URL, placeholders, the ASCII mask and the 401/403 hint."""

import pytest

from addon.config import keys
from addon.config.keys import Key


@pytest.mark.parametrize(
    ("provider_id", "path"),
    [
        ("local", "provider.local.options.apiKey"),
        ("my-gw_2", "provider.my-gw_2.options.apiKey"),
        ("KTDS Model", 'provider["KTDS Model"].options.apiKey'),
    ],
)
def test_field_path(provider_id: str, path: str) -> None:
    assert keys.field_path(provider_id) == path


@pytest.mark.parametrize(
    ("base", "api_base", "applies"),
    [
        ("https://generativelanguage.googleapis.com/v1beta/openai/", None, True),
        ("https://us-central1-aiplatform.googleapis.com/v1/projects/p/endpoints/openapi", None, True),
        ("https://gateway.example/v1", "https://gateway.example/other/", True),  # GEMINI_API_BASE's origin
        ("https://gateway.example/v1", None, False),
        ("https://gateway.example:8443/v1", "https://gateway.example/v1", False),
        ("https://generativelanguage.googleapis.com.evil.example/v1", None, False),
    ],
)
def test_gemini_key_goes_only_to_its_bases(base: str, api_base: str | None, applies: bool) -> None:
    found = keys.gemini_key(base, "gemini-key", api_base)
    assert (found == Key("gemini-key", "GEMINI_API_KEY", "GEMINI_API_KEY")) is applies
    assert applies or found is None


def test_choose_takes_the_first_key_else_names_every_hint() -> None:
    a, b = Key(None, None, "provider.a.options.apiKey"), Key("kb", "GEMINI_API_KEY", "GEMINI_API_KEY")
    assert keys.choose(a, None, b) == b
    assert keys.choose(a, None, b._replace(value=None)) == Key(
        None, None, "provider.a.options.apiKey or GEMINI_API_KEY"
    )


@pytest.mark.parametrize(
    ("key", "placeholder"),
    [
        ("your-api-key-here", True),
        ("YOUR_API_KEY", True),
        ("<your key>", True),
        ("xxxxxxxxxxxxxxxx", True),
        ("sk-...", True),
        ("sk-", True),
        ("...", True),
        ("AIzaSyA1234567890abcdefghijklmnopqx9", False),
        ("sk-proj-4f9a8b7c6d5e", False),
        ("gsk_live_yourkeyhere2", False),
        (None, False),
    ],
)
def test_is_placeholder(key: str | None, placeholder: bool) -> None:
    assert keys.is_placeholder(key) is placeholder


def test_shown_and_refusal_hint_are_ascii() -> None:
    assert keys.shown(None, "http://127.0.0.1:9000/v1") == "no key for 127.0.0.1:9000"
    assert keys.shown("AIzaSyA1234567890abcdefghijklmnopqZ9", "https://x.test/v1") == "AIza...Z9"
    sent = Key("AIzaSyA1234567890abcdefghijklmnopqZ9", "GEMINI_API_KEY", "GEMINI_API_KEY")
    hint = keys.refusal_hint(sent, "https://generativelanguage.googleapis.com/v1beta/openai/")
    assert (
        hint == "The proxy sent the key from GEMINI_API_KEY (AIza...Z9) to generativelanguage.googleapis.com; check it."
    )
    assert hint.isascii()
    none = Key(None, None, 'provider["KTDS Model"].options.apiKey')
    assert keys.refusal_hint(none, "https://gw.test/v1") == (
        'The proxy sent no key to gw.test: set provider["KTDS Model"].options.apiKey.'
    )
