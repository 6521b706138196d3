"""addon/formats/errors.py: the proxy's own OpenAI-shaped errors, and Gemini's errors reshaped into that shape."""

import json

import httpx
import openai
import pytest

from addon.formats import errors

GEMINI_429 = json.dumps(
    [
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
            }
        }
    ]
).encode()


@pytest.mark.parametrize(
    "status,type_",
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "invalid_request_error"),
        (429, "rate_limit_error"),
        (418, "invalid_request_error"),  # not in the table: any other 4xx is the client's
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (599, "api_error"),
    ],
)
def test_error_type_by_status(status, type_):
    assert errors.error_type(status) == type_


def test_error_body_has_exactly_openais_three_fields():
    body = json.loads(errors.error_body("Model x is unknown.", 404, "model_not_found"))
    assert body == {"error": {"message": "Model x is unknown.", "type": "not_found_error", "code": "model_not_found"}}
    assert json.loads(errors.error_body("m", 400))["error"]["code"] is None  # the key is there, null
    assert json.loads(errors.error_body("m", 400, type_="custom_error"))["error"]["type"] == "custom_error"


def test_error_response_is_json_with_the_status_and_extra_headers():
    response = errors.error_response("Shutting down.", 503, "proxy_shutting_down", {"connection": "close"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert json.loads(response.content) == {
        "error": {"message": "Shutting down.", "type": "api_error", "code": "proxy_shutting_down"}
    }


def test_sse_error_event_is_one_complete_data_event():
    event = errors.sse_error_event("Upstream timed out.", 504, "upstream_timeout")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n") and event.count(b"\n") == 2
    assert json.loads(event[len(b"data: ") :])["error"] == {
        "message": "Upstream timed out.",
        "type": "timeout_error",
        "code": "upstream_timeout",
    }


def test_a_list_wrapped_gemini_error_is_reshaped():
    reshaped = json.loads(errors.normalize_upstream_error(429, GEMINI_429))
    assert reshaped == {
        "error": {
            "message": "Resource has been exhausted (e.g. check quota).",
            "type": "rate_limit_error",
            "code": "RESOURCE_EXHAUSTED",
        }
    }


def test_the_reshaped_error_is_what_the_openai_sdk_reads():
    """The SDK reads body["error"]: from Gemini's list it finds no code, type or message of its own."""
    reshaped = json.loads(errors.normalize_upstream_error(429, GEMINI_429))
    sdk = openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
    made = sdk._make_status_error_from_response(_httpx_response(429, reshaped))
    assert isinstance(made, openai.RateLimitError)
    assert made.code == "RESOURCE_EXHAUSTED" and made.type == "rate_limit_error"
    assert "Resource has been exhausted" in made.message


def _httpx_response(status: int, body: dict) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))


def test_an_unwrapped_google_error_is_reshaped_too():
    body = b'{"error": {"code": 400, "message": "Invalid JSON payload.", "status": "INVALID_ARGUMENT"}}'
    assert json.loads(errors.normalize_upstream_error(400, body))["error"] == {
        "message": "Invalid JSON payload.",
        "type": "invalid_request_error",
        "code": "INVALID_ARGUMENT",
    }


def test_a_google_error_without_status_keeps_its_numeric_code_and_gets_a_message():
    reshaped = json.loads(errors.normalize_upstream_error(500, b'[{"error": {"code": 500}}]'))
    assert reshaped["error"] == {"message": "Upstream answered 500.", "type": "api_error", "code": 500}


def test_an_openai_shaped_error_is_left_as_it_is():
    body = b'{"error": {"message": "Incorrect API key.", "type": "invalid_request_error", "code": "invalid_api_key"}}'
    assert errors.normalize_upstream_error(401, body) is None


def test_an_openai_shaped_error_with_a_string_code_keeps_it():
    """Has both type and status (some gateways): reshaped, and the string code wins over the status."""
    body = b'{"error": {"message": "m", "type": "t", "status": "S", "code": "the_code"}}'
    assert json.loads(errors.normalize_upstream_error(400, body))["error"]["code"] == "the_code"


def test_an_html_page_from_a_gateway_becomes_a_message_quoting_it():
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>" + b" " * 1000 + b"TAIL"
    reshaped = json.loads(errors.normalize_upstream_error(502, page))["error"]
    assert reshaped["type"] == "api_error" and reshaped["code"] == "upstream_error"
    assert reshaped["message"].startswith("Upstream answered 502 with a non-JSON body: <html><body><h1>502 Bad")
    assert "TAIL" not in reshaped["message"]  # quoted, not copied whole


@pytest.mark.parametrize("body", [b"", b"   "])
def test_an_empty_body_says_so(body):
    reshaped = json.loads(errors.normalize_upstream_error(503, body))["error"]
    assert reshaped["message"] == "Upstream answered 503 with a non-JSON body: (empty body)"


@pytest.mark.parametrize("body", [b"[]", b'{"detail": "nope"}', b"42", b'[{"err": 1}]', b'{"error": "just text"}'])
def test_json_that_is_no_known_error_is_quoted_in_an_openai_error(body):
    reshaped = json.loads(errors.normalize_upstream_error(400, body))["error"]
    assert reshaped["message"] == f"Upstream answered 400: {body.decode()}"
    assert reshaped["type"] == "invalid_request_error" and reshaped["code"] is None


def test_a_non_utf8_body_does_not_raise():
    reshaped = json.loads(errors.normalize_upstream_error(500, b"\xff\xfe\x00broken"))["error"]
    assert "broken" in reshaped["message"] and reshaped["code"] == "upstream_error"
