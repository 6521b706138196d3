"""Side-by-side benchmark: direct, bare mitmdump, this proxy and LiteLLM Proxy against one fake upstream.

Run it with `./mitm_run.sh bench` (options: `--help`). Modules:
- run.py           entry point: starts the servers, runs the scenarios, prints the table, writes JSON
- upstream.py      the fast fake OpenAI-compatible upstream (raw asyncio, its own process)
- load.py          the async load client (its own process): latency, requests/s, per-chunk stream timing
- http11.py        the minimal HTTP/1.1 client side parser load.py uses
- wrk.py           plain non-streaming load through `wrk`, when it is installed
- bodies.py        request bodies: small requests and a ~1 MB opencode conversation
- servers.py       starting, health-checking, measuring (RSS) and stopping the servers under test
- litellm_proxy.py LiteLLM Proxy in its own virtual environment under .bench/
- report.py        the table, the ratios and the target checks
- micro.py         timeit micro-benchmarks of the hot paths (SSE rewriting, request rewriting)
"""
