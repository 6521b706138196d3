"""The stream relay (addon/runtime/stream_relay.py, a speed patch: translate_speed_patches on) on the path real
users take: Gemini over HTTPS. The upstream's
TLS layer decrypts each read before the relay sees it, so a streamed answer from an HTTPS upstream is relayed read
by read (each handled in the loop turn that received it: inline_reads.py), and the client gets every event,
renamed, in order, as from a plain-HTTP upstream.

The real proxy (mitm_run.sh) in front of the fake Gemini served over TLS with a certificate made here; a `-s`
script counts the reads the relay took and prints the count when mitmdump stops.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import speed_mode, start_proxy
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e

COUNTER = """
from addon.runtime import inline_reads, stream_relay

taken = [0]
inline = [0]
relay = stream_relay.relay
run_now = inline_reads.run


def counting(reader, event):
    out = relay(reader, event)
    taken[0] += out is not None
    return out


def counting_inline(coro):
    inline[0] += 1
    return run_now(coro)


stream_relay.relay = counting
inline_reads.run = counting_inline


class Count:
    def done(self):
        print(f"stream relay took {taken[0]} reads", flush=True)
        print(f"inline reads took {inline[0]} reads", flush=True)


addons = [Count()]
"""


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake gemini")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_gemini(tmp_path):
    cert, key = certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with FakeGemini(ssl_context=context) as fake:
        yield fake, cert


def test_a_stream_from_an_https_upstream_is_relayed_read_by_read_and_arrives_whole(tls_gemini, tmp_path):
    fake, cert = tls_gemini
    script = tmp_path / "count_relayed.py"
    script.write_text(COUNTER)
    proxy = start_proxy(
        fake,
        tmp_path,
        "--set",
        f"ssl_verify_upstream_trusted_ca={cert}",
        # The relay is a speed patch: on here, unless CI's speed pass already turns it on (an option given twice
        # stops the script from loading).
        *([] if speed_mode() else ["--set", "translate_speed_patches=true"]),
        "-s",
        str(script),
    )
    try:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, timeout=30)
        chunks = list(
            client.chat.completions.create(
                model="local-model",
                messages=[{"role": "user", "content": "count for me [chunks:40:5]"}],
                stream=True,
            )
        )
    finally:
        code = proxy.stop()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"chunk {i} " for i in range(40)), proxy.log_text()[-3000:]
    assert {c.model for c in chunks} == {"local-model"}
    assert fake.chat_requests()[-1]["body"]["model"] == "gemini-2.5-flash"  # it went over TLS, translated
    assert code == 0
    taken = [line for line in proxy.log_text().splitlines() if line.startswith("stream relay took ")]
    assert taken and int(taken[-1].split()[3]) >= 20, proxy.log_text()[-3000:]  # most of the 40 reads relayed
    # ... and handled in the loop turn that received them (inline_reads.py), TLS records decrypted on the way
    inline = [line for line in proxy.log_text().splitlines() if line.startswith("inline reads took ")]
    assert inline and int(inline[-1].split()[3]) >= 20, proxy.log_text()[-3000:]
