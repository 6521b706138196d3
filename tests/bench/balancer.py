"""Two replicas of this proxy behind nginx, set up as docs/load-balancing.md says:
both started as mitm_run.sh starts them, reading one opencode.json that names the balancer, and nginx running the
that page's own config block (its ports replaced), in a frame of this run's own (files in the run's folder, enough
connections for 1,024 streams: each takes one from the client and one to a replica, and nginx counts
the connections it keeps open besides).

nginx is Debian's package (`apt-get install nginx-light`); without it the row says so and the run goes on.
"""

from __future__ import annotations

import os
import shutil

from . import servers

FRAME = """
{user}
worker_processes 1;
worker_rlimit_nofile {files};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    {access}
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{readme}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.path.exists(p)), None)


LOAD_BALANCING = servers.ROOT / "docs" / "load-balancing.md"


def readme_block(port: int, a: int, b: int) -> str:
    """The nginx block of docs/load-balancing.md on these ports (ValueError when the page no longer has it)."""
    block = LOAD_BALANCING.read_text()
    start = block.index("```nginx") + len("```nginx")
    block = block[start : block.index("```", start)]
    for old, new in (("127.0.0.1:8001", a), ("127.0.0.1:8002", b), ("127.0.0.1:8000", port)):
        if old not in block:
            raise ValueError(f"the nginx block of {LOAD_BALANCING} no longer names {old}")
        block = block.replace(old, f"127.0.0.1:{new}")
    return block


def start(upstream_port: int, extra_args: list[str], streams: int) -> tuple[list[servers.Server], str | None]:
    """nginx and two replicas, all healthy (the servers, None), or what could not start (servers to stop, why)."""
    binary = nginx_binary()
    if binary is None:
        return [], "nginx is not installed (apt-get install nginx-light)"
    port, a, b = servers.free_port(), servers.free_port(), servers.free_port()
    config = servers.opencode_config(port, name="opencode-replicas")
    started = [servers.this_proxy(p, upstream_port, extra_args, name=f"replica_{p}", config=config) for p in (a, b)]
    folder = servers.run_dir() / "nginx"
    folder.mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        FRAME.format(
            user="user root;" if os.geteuid() == 0 else "",
            dir=folder,
            files=8 * streams + 512,
            connections=4 * streams + 256,
            access="access_log off;",
            readme=readme_block(port, a, b),
        )
    )
    started.append(servers.start("nginx", port, [binary, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"]))
    for server in started:
        why = servers.wait_healthy(server, "/health", 60) if server.name == "nginx" else servers.wait_ready(server, 90)
        if why:
            return started, why
    return started, None
