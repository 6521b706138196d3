"""addon/config/native_route.py and its hook in resolution: which names and providers take the native path."""

from __future__ import annotations

import json

import pytest

from addon.config import native_route, opencode_config, resolution

SETTINGS = resolution.Settings(api_base=None, api_key="AIza-env-key-0123456789", proxy_port=8000)


def config(providers: dict, env: dict | None = None) -> opencode_config.OpencodeConfig:
    return opencode_config.parse_config(json.dumps({"provider": providers}), "opencode.json", env or {})


ALIAS = {"options": {"baseURL": "http://127.0.0.1:8000/v1", "proxy": {"models": {"fast": "gemini/gemini-2.5-flash"}}}}


def test_todays_configs_stay_openai_compatible() -> None:
    target = resolution.resolve(config({"local": {"options": {"baseURL": "http://127.0.0.1:8000/v1"}}}), "x", SETTINGS)
    assert target.api == "openai" and target.api_base == opencode_config.GOOGLE_BASE


def test_a_gemini_prefix_goes_to_googles_native_api_with_the_env_key() -> None:
    target = resolution.resolve(config({}), "gemini/gemini-2.5-flash", SETTINGS)
    assert (target.api, target.api_base, target.upstream_model) == (
        "gemini",
        native_route.GEMINI_NATIVE_BASE,
        "gemini-2.5-flash",
    )
    assert target.api_key == SETTINGS.api_key and target.litellm_model == "gemini/gemini-2.5-flash"
    assert target.is_gemini and target.cache_read_cost_per_token is not None


def test_an_alias_for_a_gemini_name_uses_the_native_provider_of_the_file() -> None:
    google = {"npm": "@ai-sdk/google", "options": {"baseURL": "http://fake/v1beta/openai/", "apiKey": "AIza-own"}}
    target = resolution.resolve(config({"local": ALIAS, "google": google}), "fast", SETTINGS)
    assert (target.api, target.api_base, target.api_key) == ("gemini", "http://fake/v1beta", "AIza-own")
    assert target.client_model == "fast" and target.provider == "local"


@pytest.mark.parametrize(
    ("provider", "api"),
    [
        ({"options": {"proxy": {"api": "gemini"}}}, "gemini"),
        ({"npm": "@ai-sdk/google"}, "gemini"),
        ({"npm": "@ai-sdk/google-vertex", "options": {"project": "p", "location": "europe-west4"}}, "vertex"),
        ({"npm": "@ai-sdk/google", "options": {"proxy": {"api": "openai"}}}, "openai"),
    ],
)
def test_a_provider_opts_in(provider: dict, api: str) -> None:
    provider = {**provider, "models": {"m": {"id": "gemini-2.5-pro"}}}
    target = resolution.resolve(config({"g": provider}), "g/m", SETTINGS)
    assert target.api == api and target.upstream_model == "gemini-2.5-pro"


def test_vertex_urls_are_built_from_project_and_location() -> None:
    target = resolution.resolve(
        config({"v": {"npm": "@ai-sdk/google-vertex", "options": {"project": "p", "location": "europe-west4"}}}),
        "v/gemini-2.5-pro",
        SETTINGS,
    )
    assert target.api_base == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/publishers/google"
    )
    assert target.api_key is None  # Vertex AI: an OAuth token, never the Gemini key
    env = {"GOOGLE_CLOUD_PROJECT": "q"}
    target = resolution.resolve(config({}, env), "vertex_ai/gemini-3-pro-preview", SETTINGS)
    assert target.api_base == "https://aiplatform.googleapis.com/v1/projects/q/locations/global/publishers/google"


def test_vertex_without_a_project_is_an_error_that_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        resolution.resolve(config({}), "vertex_ai/gemini-2.5-pro", SETTINGS)


def test_an_unknown_api_in_the_file_is_a_config_error() -> None:
    with pytest.raises(opencode_config.ConfigError, match="provider.g.options.proxy.api is 'grpc'"):
        config({"g": {"options": {"proxy": {"api": "grpc"}}}})
