"""End to end: replicas behind a plain TCP forwarder (nginx's stand-in, here in asyncio) sharing the README's
opencode.json send nothing round in a loop; a config that really loops is answered 508 at the first hop."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import free_port
from tests.test_replicas_nginx import readme_config, start_replicas

pytestmark = pytest.mark.e2e


class Forwarder:
    """Round-robin TCP forwarding from a loopback port to the given ports; counts the chat requests it carried."""

    def __init__(self, port: int) -> None:
        self.port, self.targets = port, [0]
        self.chat_requests = 0
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> Forwarder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _close(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self.targets[next(self._turn) % len(self.targets)]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(self._pipe(reader, up_writer, count=True), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool = False) -> None:
        try:
            while data := await reader.read(65536):
                if count:  # a request line arrives in one piece on loopback
                    self.chat_requests += data.count(b"POST /v1/chat/completions ")
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def forwarded(fake_gemini, tmp_path_factory) -> Iterator[tuple[Forwarder, list]]:
    forwarder = Forwarder(free_port())
    config = readme_config(forwarder.port)
    # A provider that is no alias (no options.proxy.models) and names the balancer: a config that truly loops.
    config["provider"]["loopy"] = {
        "npm": "@ai-sdk/openai-compatible",
        "options": {"baseURL": f"http://127.0.0.1:{forwarder.port}/v1"},
        "models": {"loop-model": {}},
    }
    replicas = start_replicas(fake_gemini, tmp_path_factory.mktemp("forwarded"), config)
    forwarder.targets = [p.port for p in replicas]
    forwarder.start()
    try:
        yield forwarder, replicas
    finally:
        forwarder.stop()
        for proxy in replicas:
            proxy.stop()


def client(forwarder: Forwarder) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{forwarder.port}/v1", api_key="anything", max_retries=0, timeout=30
    )


def test_shared_readme_config_reaches_gemini_once_per_request(forwarded, fake):
    forwarder, replicas = forwarded
    before = forwarder.chat_requests
    for n in range(4):  # round robin: each replica answers twice
        answer = client(forwarder).chat.completions.create(
            model="local-model", messages=[{"role": "user", "content": f"hello {n}"}]
        )
        assert answer.model == "local-model"
    assert forwarder.chat_requests - before == 4
    assert [r["body"]["model"] for r in fake.chat_requests()] == ["gemini-2.5-flash"] * 4
    assert all("x-translation-proxy-hop" in {k.lower() for k in r["headers"]} for r in fake.chat_requests())


def test_a_config_that_loops_gets_508_at_the_first_hop(forwarded, fake):
    forwarder, replicas = forwarded
    before = forwarder.chat_requests
    with pytest.raises(openai.APIStatusError) as caught:
        client(forwarder).chat.completions.create(model="loop-model", messages=[{"role": "user", "content": "hi"}])
    error = caught.value.response.json()["error"]
    assert caught.value.status_code == 508 and error["code"] == "loop_detected", error
    assert "provider 'loopy'" in error["message"] and "'loop-model'" in error["message"], error
    assert forwarder.chat_requests - before == 2  # the client's request, and one replica's forward: no more
    assert fake.chat_requests() == []
    assert all(p.alive() for p in replicas)
