import json
from pathlib import Path

import pytest

from addon.config.opencode_config import GOOGLE_BASE, ConfigError, OpencodeConfig, load_config, parse_config
from addon.config.resolution import Settings, check_model_name, is_self, mask_key, resolve

REPO = Path(__file__).resolve().parent.parent
SETTINGS = Settings(api_base=None, api_key="AIzaSETTINGSKEY0000000000x9")
ALIAS = {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "http://127.0.0.1:8000/v1", "apiKey": "proxy-key"}}


def config(providers: dict, env: dict | None = None, path: str = "/cfg/opencode.json") -> OpencodeConfig:
    return parse_config(
        json.dumps({"$schema": "https://opencode.ai/config.json", "provider": providers}), path, env or {}
    )


def alias(
    models: dict, proxy: dict | None = None, base: str = "http://127.0.0.1:8000/v1", key: str | None = "pk"
) -> dict:
    options: dict = {"baseURL": base, "proxy": proxy or {}}
    if key:
        options["apiKey"] = key
    return {"options": options, "models": {m: {} for m in models}}


def remote(base: str, models: dict, key: str | None = None, **options: object) -> dict:
    return {"options": {"baseURL": base, **({"apiKey": key} if key else {}), **options}, "models": models}


GROQ = remote("https://api.groq.com/openai/v1", {"llama": {"id": "llama-3.1-8b-instant"}}, key="gsk-file")
ROUTER = remote("https://openrouter.ai/api/v1", {"meta-llama/llama-3.1-8b": {}, "shared": {}}, key="or-file")


# ---------------------------------------------------------------- the shipped file


def test_shipped_opencode_json_resolves_local_model() -> None:
    cfg = load_config(str(REPO / "opencode.json"), {"PROXY_API_KEY": "secret"})
    target = resolve(cfg, "local-model", SETTINGS)
    assert (target.upstream_model, target.api_base, target.provider) == ("gemini-2.5-flash", GOOGLE_BASE, "local")
    assert target.api_key == SETTINGS.api_key and target.is_gemini and target.litellm_model == "openai/gemini-2.5-flash"
    assert target.context_window and target.context_window > 100_000
    assert cfg.model_names() == [{"id": "local-model", "object": "model", "created": 0, "owned_by": "local"}]


# ---------------------------------------------------------------- name forms and lookup

NAMES_CFG = {
    "local": alias(["local-model"], {"models": {"local-model": "gemini-2.5-pro"}}),
    "groqp": GROQ,
    "router": ROUTER,
}
NAMES_SETTINGS = Settings(api_base=GOOGLE_BASE, api_key="k")  # else the default upstream is groqp, the first remote


@pytest.mark.parametrize(
    ("model", "provider", "upstream", "base"),
    [
        ("local-model", "local", "gemini-2.5-pro", GOOGLE_BASE),
        ("local/local-model", "local", "gemini-2.5-pro", GOOGLE_BASE),
        ("llama", "groqp", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1"),  # `id` maps the key
        ("groqp/llama", "groqp", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1"),
        ("llama-3.1-8b-instant", "groqp", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1"),  # by id
        ("router/meta-llama/llama-3.1-8b", "router", "meta-llama/llama-3.1-8b", "https://openrouter.ai/api/v1"),
        ("meta-llama/llama-3.1-8b", "router", "meta-llama/llama-3.1-8b", "https://openrouter.ai/api/v1"),
        ("router/unlisted/model", "router", "unlisted/model", "https://openrouter.ai/api/v1"),
        ("local/unlisted", "local", "unlisted", GOOGLE_BASE),
        ("some-new-model", None, "some-new-model", GOOGLE_BASE),
        ("nosuchprovider/model", None, "nosuchprovider/model", GOOGLE_BASE),
    ],
)
def test_name_forms(model: str, provider: str | None, upstream: str, base: str) -> None:
    target = resolve(config(NAMES_CFG), model, NAMES_SETTINGS)
    got = (target.client_model, target.provider, target.upstream_model, target.api_base)
    assert got == (model, provider, upstream, base)


def test_explicit_provider_uses_its_key_and_headers() -> None:
    cfg = config({"p": remote("https://llm.example/v1", {"m": {}}, key="p-key", headers={"X-Team": "a"})})
    target = resolve(cfg, "m", SETTINGS)
    assert (target.api_key, target.headers, target.litellm_model) == ("p-key", {"X-Team": "a"}, "openai/m")


def test_api_field_is_a_base_url() -> None:
    cfg = config({"p": {"api": "https://llm.example/v1", "models": {"m": {}}}})
    assert resolve(cfg, "m", SETTINGS).api_base == "https://llm.example/v1"


def test_first_provider_in_file_order_wins() -> None:
    cfg = config(
        {"b": remote("https://b.example/v1", {"shared": {}}), "a": remote("https://a.example/v1", {"shared": {}})}
    )
    assert resolve(cfg, "shared", SETTINGS).provider == "b"
    assert resolve(cfg, "a/shared", SETTINGS).provider == "a"


def test_model_names_dedup_in_file_order() -> None:
    cfg = config(
        {"b": remote("https://b.example", {"x": {}, "y": {}}), "a": remote("https://a.example", {"y": {}, "z": {}})}
    )
    assert [(m["id"], m["owned_by"]) for m in cfg.model_names()] == [("x", "b"), ("y", "b"), ("z", "a")]


# ---------------------------------------------------------------- alias providers and the default upstream


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("http://127.0.0.1:8000/v1", 8000, True),
        ("http://localhost:8000/v1", 8000, True),
        ("http://0.0.0.0:8000", 8000, True),
        ("http://[::1]:8000/v1", 8000, True),
        ("http://localhost:8001/v1", 8000, False),
        ("http://localhost:8001/v1", 8001, True),
        ("http://localhost/v1", 80, True),
        ("http://192.0.2.1:8000/v1", 8000, False),
        ("https://api.groq.com/openai/v1", 8000, False),
        ("http://localhost:notaport/v1", 8000, False),
        (None, 8000, False),
    ],
)
def test_self_detection(url: str | None, port: int, expected: bool) -> None:
    assert is_self(url, port) is expected


def test_alias_on_another_port_is_an_ordinary_provider() -> None:
    cfg = config({"local": alias(["local-model"], base="http://localhost:9999/v1")})
    target = resolve(cfg, "local-model", SETTINGS)
    assert (target.api_base, target.upstream_model, target.api_key) == ("http://localhost:9999/v1", "local-model", "pk")


def test_alias_without_mapping_uses_default_model() -> None:
    cfg = config({"local": alias(["local-model"])})
    target = resolve(cfg, "local-model", Settings(None, "k", default_model="gemini-2.5-flash-lite"))
    assert target.upstream_model == "gemini-2.5-flash-lite"


def test_alias_mapping_without_models_entry() -> None:
    cfg = config({"local": alias([], {"models": {"fast": "gemini-2.5-flash-lite"}})})
    assert resolve(cfg, "fast", SETTINGS).upstream_model == "gemini-2.5-flash-lite"


@pytest.mark.parametrize(
    ("settings_base", "providers", "expected"),
    [
        ("https://override.example/v1", {"local": alias(["m"]), "g": GROQ}, "https://override.example/v1"),
        (None, {"local": alias(["m"]), "g": GROQ, "r": ROUTER}, "https://api.groq.com/openai/v1"),
        (None, {"local": alias(["m"]), "other": alias([], base="http://localhost:8000/x")}, GOOGLE_BASE),
        (None, {}, GOOGLE_BASE),
    ],
)
def test_default_upstream_choice(settings_base: str | None, providers: dict, expected: str) -> None:
    assert resolve(config(providers), "m", Settings(settings_base, "k")).api_base == expected


@pytest.mark.parametrize(
    ("settings", "alias_key", "expected"),
    [
        (Settings(None, "settings-key"), "alias-key", "settings-key"),
        (Settings(None, None), "alias-key", "alias-key"),
        (Settings(None, None), None, "gsk-file"),  # the default upstream provider's own key
        (Settings("https://override.example/v1", None), None, None),  # never sent to another host
    ],
)
def test_key_choice(settings: Settings, alias_key: str | None, expected: str | None) -> None:
    cfg = config({"local": alias(["m"], key=alias_key), "g": GROQ})
    assert resolve(cfg, "m", settings).api_key == expected


def test_default_provider_headers_only_with_its_base() -> None:
    cfg = config({"local": alias(["m"]), "p": remote("https://p.example/v1", {}, key="pk", headers={"X-A": "1"})})
    assert resolve(cfg, "m", SETTINGS).headers == {"X-A": "1"}
    assert resolve(cfg, "m", Settings("https://other.example/v1", None)).headers == {}


def test_unknown_name_goes_upstream_unchanged() -> None:
    target = resolve(config({"local": alias(["local-model"], key="alias-key")}), "gemini-2.5-pro", Settings(None, None))
    got = (target.upstream_model, target.api_base, target.provider, target.api_key)
    assert got == ("gemini-2.5-pro", GOOGLE_BASE, None, None)


# ---------------------------------------------------------------- litellm-known provider prefixes


@pytest.mark.parametrize(
    ("model", "upstream", "base", "env"),
    [
        ("groq/llama-3.1-8b-instant", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ("deepseek/deepseek-chat", "deepseek-chat", "https://api.deepseek.com/beta", "DEEPSEEK_API_KEY"),
        (
            "openrouter/meta-llama/llama-3.1-8b-instruct",
            "meta-llama/llama-3.1-8b-instruct",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
        ),
        ("mistral/mistral-small-latest", "mistral-small-latest", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        (
            "together_ai/meta-llama/Llama-3-8b",
            "meta-llama/Llama-3-8b",
            "https://api.together.ai/v1",
            "TOGETHERAI_API_KEY",
        ),
    ],
)
def test_litellm_known_prefix(model: str, upstream: str, base: str, env: str) -> None:
    target = resolve(config({"local": alias(["local-model"])}, env={env: "env-key"}), model, SETTINGS)
    assert (target.upstream_model, target.api_base, target.api_key) == (upstream, base, "env-key")
    assert (target.litellm_model, target.provider, target.is_gemini) == (model, None, False)


def test_litellm_prices_when_known() -> None:
    target = resolve(config({}), "deepseek/deepseek-chat", SETTINGS)
    assert target.context_window and target.input_cost_per_token and target.output_cost_per_token


def test_file_provider_key_shadows_litellm_prefix() -> None:
    cfg = config({"groq": remote("https://my-groq-mirror.example/v1", {}, key="mine")})
    target = resolve(cfg, "groq/llama-3.1-8b-instant", SETTINGS)
    got = (target.api_base, target.provider, target.litellm_model)
    assert got == ("https://my-groq-mirror.example/v1", "groq", "openai/llama-3.1-8b-instant")


def test_file_provider_without_base_uses_litellm_base() -> None:
    cfg = config({"groq": {"options": {"apiKey": "file-key"}, "models": {"llama-3.1-8b-instant": {}}}})
    target = resolve(cfg, "llama-3.1-8b-instant", SETTINGS)
    assert (target.api_base, target.api_key, target.provider) == ("https://api.groq.com/openai/v1", "file-key", "groq")


def test_non_openai_prefix_goes_to_default_upstream() -> None:
    target = resolve(config({}), "anthropic/claude-sonnet-4", SETTINGS)
    assert (target.api_base, target.upstream_model) == (GOOGLE_BASE, "anthropic/claude-sonnet-4")


# ---------------------------------------------------------------- fallbacks, repairs, Gemini detection


def test_fallbacks() -> None:
    proxy = {"fallbacks": {"local-model": ["groqp/llama", "router/meta-llama/llama-3.1-8b"]}}
    cfg = config({"local": alias(["local-model", "other"], proxy), "groqp": GROQ, "router": ROUTER})
    assert resolve(cfg, "local-model", SETTINGS).fallbacks == ("groqp/llama", "router/meta-llama/llama-3.1-8b")
    assert resolve(cfg, "local/local-model", SETTINGS).fallbacks == ("groqp/llama", "router/meta-llama/llama-3.1-8b")
    assert resolve(cfg, "other", SETTINGS).fallbacks == ()
    for name in resolve(cfg, "local-model", SETTINGS).fallbacks:
        assert resolve(cfg, name, SETTINGS).provider in ("groqp", "router")


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        (remote("https://generativelanguage.googleapis.com/v1beta/openai/", {"m": {}}), "m", True),
        (remote("https://us-central1-aiplatform.googleapis.com/v1/projects/p/endpoints/openapi", {"m": {}}), "m", True),
        (remote("https://llm.example/v1", {"gemini-2.5-pro": {}}), "gemini-2.5-pro", True),
        (remote("https://llm.example/v1", {"m": {"id": "gemini-3-pro-preview"}}), "m", True),
        (remote("https://api.groq.com/openai/v1", {"llama": {}}), "llama", False),
        (remote("https://llm.example/v1", {"gemini-x": {}}, proxy={"repairs": False}), "gemini-x", False),
        (remote("https://api.groq.com/openai/v1", {"llama": {}}, proxy={"repairs": True}), "llama", True),
        (alias(["local-model"], {"repairs": False}), "local-model", False),
    ],
)
def test_is_gemini(provider: dict, model: str, expected: bool) -> None:
    assert resolve(config({"p": provider}), model, SETTINGS).is_gemini is expected


# ---------------------------------------------------------------- bad names


@pytest.mark.parametrize(
    "model",
    [
        "",
        "x" * 257,
        "local\nmodel",
        "a\x00b",
        "a\x7fb",
        "../etc/passwd",
        "a/../b",
        "a/./b",
        "/abs",
        "trailing/",
        "a//b",
        "m?x=1",
        "m#frag",
        "m%2e",
        "a\\b",
    ],
)
def test_bad_names(model: str) -> None:
    with pytest.raises(ValueError, match="model name"):
        resolve(config({}), model, SETTINGS)


@pytest.mark.parametrize(
    "model",
    [
        "local-model",
        "x" * 256,
        "openrouter/meta-llama/llama-3.1-8b-instruct:free",
        "a.b-c_d",
        "has space",
        "KTDS Model/gemini-3-flash-preview",
    ],
)
def test_good_names(model: str) -> None:
    check_model_name(model)


# ---------------------------------------------------------------- JSONC and substitutions


def test_jsonc_comments_trailing_commas_and_slashes_in_strings() -> None:
    text = """{
      // line comment with "quotes" and a {file:nope.txt} reference that is never read
      "provider": {
        /* block
           comment */
        "p": {
          "options": {"baseURL": "https://llm.example//v1", /* inline */ "apiKey": "a/*b*/c//d",},
          "models": {"m": {"name": "trailing // and \\"escaped\\" /* ok */",},},
        },
      },
    }"""
    provider = parse_config(text, "/x/opencode.jsonc", {}).providers["p"]
    assert (provider.base_url, provider.api_key) == ("https://llm.example//v1", "a/*b*/c//d")
    assert provider.models["m"].name == 'trailing // and "escaped" /* ok */'


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"K": "sk-123"}, "sk-123"), ({}, None), ({"K": 'q"uo\\te'}, 'q"uo\\te')],
)
def test_env_substitution(env: dict, expected: str | None) -> None:
    cfg = parse_config('{"provider": {"p": {"options": {"apiKey": "{env:K}"}}}}', "/x/opencode.json", env)
    assert cfg.providers["p"].api_key == expected


def test_file_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key.txt").write_text('  line1\n"quoted" \\ path\n\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "home.txt").write_text("from-home\n")
    text = '{"provider": {"p": {"options": {"apiKey": "{file:secrets/key.txt}", "baseURL": "{file:~/home.txt}"}}}}'
    (tmp_path / "opencode.json").write_text(text)
    provider = load_config(str(tmp_path / "opencode.json"), {}).providers["p"]
    assert (provider.api_key, provider.base_url) == ('line1\n"quoted" \\ path', "from-home")


def test_missing_file_reference_names_file_and_line(tmp_path: Path) -> None:
    text = '{\n  "provider": {\n    "p": {"options": {"apiKey": "{file:missing.txt}"}}\n  }\n}'
    with pytest.raises(ConfigError, match=r"opencode\.json, line 3: \{file:missing\.txt\}"):
        parse_config(text, str(tmp_path / "opencode.json"), {})


# ---------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{\n  "provider": {\n    "p": {}\n    "q": {}\n  }\n}', r"line 4, column 5: Expecting ',' delimiter"),
        ('{\n  "provider": {"p": {\n', r"line 3, column 1: Expecting property name"),
        ('{\n  // just a comment\n  "a": tru\n}', r"line 3, column 8: Expecting value"),
        ("[1, 2]", r"the top level must be an object, not a list"),
        ('{"provider": []}', r"provider must be an object, not a list"),
        ('{"provider": {"p": "x"}}', r"provider\.p must be an object, not a string"),
        ('{"provider": {"p": {"models": []}}}', r"provider\.p\.models must be an object"),
        (
            '{"provider": {"p": {"models": {"m": {"id": 3}}}}}',
            r"provider\.p\.models\.m\.id must be a string, not a number",
        ),
        ('{"provider": {"p": {"options": {"baseURL": 8000}}}}', r"provider\.p\.options\.baseURL must be a string"),
        (
            '{"provider": {"p": {"options": {"headers": {"X": 1}}}}}',
            r"provider\.p\.options\.headers\.X must be a string",
        ),
        (
            '{"provider": {"p": {"options": {"proxy": {"repairs": "yes"}}}}}',
            r"options\.proxy\.repairs must be true or false",
        ),
        ('{"provider": {"p": {"options": {"proxy": {"fallbacks": {"m": "x"}}}}}}', r"fallbacks\.m must be a list"),
        (
            '{"provider": {"p": {"options": {"proxy": {"fallbacks": {"m": ["a", 2]}}}}}}',
            r"fallbacks\.m\[1\] must be a string",
        ),
        ('{"provider": {"p": {"options": {"proxy": {"models": {"m": true}}}}}}', r"proxy\.models\.m must be a string"),
        ('{"provider": {"p": {"models": {"m": null}}}}', r"provider\.p\.models\.m must be an object, not null"),
    ],
)
def test_config_errors(text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=r"/etc/opc/opencode\.json\b.*" + pattern):
        parse_config(text, "/etc/opc/opencode.json", {})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json does not exist"):
        load_config(str(tmp_path / "nope.json"))


# ---------------------------------------------------------------- key masking


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        (None, "(none)"),
        ("", "(none)"),
        ("short", "…"),
        ("x" * 15, "…"),
        ("AIzaSyA1234567890abcdefghijklmnopqx9", "AIza…x9"),
    ],
)
def test_mask_key(key: str | None, masked: str) -> None:
    assert mask_key(key) == masked


@pytest.mark.parametrize("length", range(1, 80))
def test_mask_key_reveals_at_most_six_characters(length: int) -> None:
    key = "".join(chr(ord("A") + i % 26) for i in range(length))
    assert len(mask_key(key).replace("…", "")) <= 6
