"""Loop protection: every request this proxy forwards carries a hop mark; a request that arrives marked is a loop.

The mark is `x-translation-proxy-hop: <instance>; provider=<id>; model=<name>` (values percent-encoded). Any
instance's mark counts, not only this one's: replicas behind a balancer share one opencode.json, so a replica
that forwards to the balancer is answered by another replica that would forward the same way. Refusing at the
first hop (508 loop_detected) names the provider whose baseURL leads back to a translation proxy. The price:
one translation proxy cannot use another as its upstream.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, unquote

HEADER = "x-translation-proxy-hop"


def new_instance() -> str:
    """A random id for this proxy process, so the loop message can tell the instances apart."""
    return secrets.token_hex(4)


def mark(instance: str, provider: str | None, model: str) -> str:
    """The header value for a request this instance forwards for `model` by way of `provider`."""
    return f"{instance}; provider={quote(provider or '', safe='')}; model={quote(model, safe='')}"


def loop_message(value: str, here: str, listen: str) -> str:
    """What a client is told when a marked request arrives at instance `here`, listening at `listen`."""
    instance, _, rest = value.partition(";")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(";") if "=" in part)
    provider = unquote(fields.get("provider", ""))
    model = unquote(fields.get("model", "")) or "a model"
    by = f"provider {provider!r}" if provider else "the default upstream (GEMINI_API_BASE)"
    who = "this same proxy" if instance.strip() == here else f"translation proxy {instance.strip()[:16]!r}"
    fix = (
        f"give provider {provider!r} an `options.proxy.models` mapping (it is then an alias of this proxy) or point its "
        "baseURL at the real upstream"
        if provider
        else "point GEMINI_API_BASE at the real upstream"
    )
    return (
        f"Request loop: {who} forwarded {model!r} by way of {by}, and it came back to a translation proxy "
        f"(instance {here!r}, listening at {listen}) instead of reaching the upstream. To fix it, {fix}."
    )
