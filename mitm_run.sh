#!/usr/bin/env bash
# The translation proxy's one command.
#
#   ./mitm_run.sh [ARGS...]        mitmdump in reverse-proxy mode with the addon (ARGS go to mitmdump)
#   ./mitm_run.sh web [ARGS...]    the same under mitmweb
#   ./mitm_run.sh capture [ARGS...] mitmweb as a forward proxy that only watches: any provider's LLM traffic, shown
#   ./mitm_run.sh test [ARGS...]   the checks, then the whole test suite in two workers (ARGS go to pytest)
#   ./mitm_run.sh test --quick [ARGS...]   the checks, then the in-process tests only (not marked e2e): under 2 min
#   ./mitm_run.sh check            lint (ruff), format check, types (mypy), import layering (import-linter)
#   ./mitm_run.sh bench [ARGS...]  the side-by-side benchmark (ARGS go to the benchmark)
#   ./mitm_run.sh export FLOWS.mitm [--session ID] [--format jsonl|openai]   chat exchanges as JSON lines on stdout
#
# The first run creates .venv from the lockfile (uv.lock) with uv, installing uv itself if it is missing.
# Environment (all optional): OPENCODE_CONFIG, PROXY_HOST, PROXY_PORT, GEMINI_API_BASE, GEMINI_API_KEY,
# GEMINI_MODEL, PROXY_API_KEY, WEB_HOST, WEB_PORT, CAPTURE_PORT. See README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
export UV_PYTHON_DOWNLOADS=never  # the machine's own Python only: no interpreter downloads
export UV_PROJECT_ENVIRONMENT="$VENV"
export LITELLM_LOCAL_MODEL_COST_MAP=True  # litellm would otherwise fetch its price table at import

log() { echo "mitm_run: $*" >&2; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
            command -v "$candidate"; return
        fi
    done
    # pyenv installs are often not on PATH (its shims fail for versions that are not selected).
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
        if [ -x "$candidate" ] && python_ok "$candidate"; then
            echo "$candidate"; return
        fi
    done
    return 1
}

find_uv() {
    if command -v uv >/dev/null; then command -v uv; return; fi
    if [ -x "$ROOT/.tools/bin/uv" ]; then echo "$ROOT/.tools/bin/uv"; return; fi
    log "uv not found; installing it into $ROOT/.tools"
    local py
    py="$(command -v python3 || command -v python)"
    "$py" -m venv "$ROOT/.tools" >&2
    "$ROOT/.tools/bin/pip" install --quiet "uv>=0.5" >&2
    echo "$ROOT/.tools/bin/uv"
}

setup() {
    local stamp="$VENV/.synced" py uv
    if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/uv.lock" ] && [ -x "$VENV/bin/mitmdump" ]; then
        return
    fi
    py="$(find_python)" || { log "Python >= 3.12 is required and none was found (PATH, pyenv)."; exit 1; }
    uv="$(find_uv)"
    log "setting up $VENV with $py"
    (cd "$ROOT" && "$uv" sync --frozen --python "$py" --quiet)
    touch "$stamp"
}

# The connection strategy this wrapper sets, unless ARGS set it themselves (mitmproxy refuses an option given twice).
lazy_unless_set() {  # ARGS...
    local arg
    for arg in "$@"; do
        case "$arg" in *connection_strategy=*) LAZY=(); return ;; esac
    done
    LAZY=(--set connection_strategy=lazy)
}

set_proxy_args() {  # ARGS...
    local upstream="${GEMINI_API_BASE:-https://generativelanguage.googleapis.com/v1beta/openai/}"
    lazy_unless_set "$@"
    # The reverse target only names a default; the addon routes every request itself. Lazy connections:
    # nothing is dialled for requests the addon answers itself (/health, /v1/models, errors).
    upstream="$(echo "$upstream" | sed -E 's#^(https?://[^/]+).*#\1#')"
    PROXY_ARGS=(--mode "reverse:$upstream"
        --listen-host "${PROXY_HOST:-127.0.0.1}" --listen-port "${PROXY_PORT:-8000}"
        "${LAZY[@]}"
        -s "$ROOT/addon/proxy.py")
}

set_web_args() {
    # mitmweb's default columns without "tls", plus "comment": each chat flow's one-line summary.
    WEB_ARGS=(--web-host "${WEB_HOST:-127.0.0.1}" --web-port "${WEB_PORT:-8081}" --set web_open_browser=false)
    for column in icon path method status size time comment; do WEB_ARGS+=(--set "web_columns=$column"); done
}

# Stop with advice in this wrapper's terms when a port is taken: mitmproxy's own message names a --mode option
# that this wrapper sets itself. Skipped when ARGS set that port themselves (the user chose it there) or start no
# server (-n, as in -nr FILE); any other problem binding (a host that is not local, no permission) is left for
# mitmproxy to tell.
check_port() {  # VARIABLE HOST PORT OPTION[,OPTION] SUBCOMMAND ARGS...
    local variable="$1" host="$2" port="$3" options="$4" subcommand="$5" arg option status=0
    shift 5
    for arg in "$@"; do
        case "$arg" in --no-server|server=false|-[!-]*n*) return ;; esac  # -n, -nr FILE: no proxy server at all
        for option in ${options//,/ }; do
            case "$arg" in "$option"|"$option"=*) return ;; esac
        done
    done
    "$VENV/bin/python" -I -S - "$host" "$port" <<'PY' || status=$?  # -I -S: no site-packages, a few ms
import errno, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers bind
        sock.bind((host, port))
except OSError as e:
    sys.exit(1 if e.errno == errno.EADDRINUSE else 0)
PY
    if [ "$status" = 1 ]; then
        log "port $port on ${host:-every address} is in use (is the proxy already running?): set $variable to a free port, e.g. $variable=$((port + 1)) ./mitm_run.sh${subcommand:+ $subcommand}"
        exit 1
    fi
}

# Debian packages some end-to-end tests need: headless Chromium (mitmweb, the session page) and nginx (replicas).
test_packages() {
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v nginx >/dev/null || missing+=(nginx-light)
    [ ${#missing[@]} -eq 0 ] && return
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        log "installing ${missing[*]} with apt-get, once, for the browser and load-balancer tests"
        if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null); then
            return
        fi
        log "apt-get could not install ${missing[*]}"
    fi
    log "the browser and load-balancer tests need Debian's ${missing[*]}: run 'sudo apt-get install ${missing[*]}'; those tests fail without them"
}

run_checks() {
    cd "$ROOT"
    log "checks: ruff, ruff format, mypy, import-linter"
    "$VENV/bin/ruff" check --quiet addon tests
    "$VENV/bin/ruff" format --check --quiet addon tests
    local typing  # mypy over addon/ ([tool.mypy] in pyproject.toml): its report only when it finds something
    typing=$("$VENV/bin/mypy" 2>&1) || { printf '%s\n' "$typing"; return 1; }
    "$VENV/bin/lint-imports" --no-cache >/dev/null || "$VENV/bin/lint-imports" --no-cache
}

command="${1:-}"
case "$command" in
    check)
        shift; setup
        run_checks ;;
    test)
        shift; setup
        run_checks
        cd "$ROOT"
        if [ "${1:-}" = "--quick" ]; then
            # End-to-end tests (real mitmdump/mitmweb, browsers, CLIs, nginx) carry the e2e marker (tests/conftest.py).
            shift
            exec "$VENV/bin/python" -m pytest -m "not e2e" "$@"
        fi
        test_packages
        # Two workers, each taking whole files (a module's fixtures stay in one process): the end-to-end tests mostly
        # wait on processes, so on two cores the full suite takes half the time (26.5 -> 13.7 min, docs/development.md).
        # `-n 0` after it runs everything in one process.
        exec "$VENV/bin/python" -m pytest -n 2 --dist loadfile "$@" ;;
    bench)
        shift; setup
        cd "$ROOT" && exec "$VENV/bin/python" -m tests.bench.run "$@" ;;
    export)
        shift; setup
        # The flow file is named relative to where the user is; the module is found from ROOT.
        PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" LITELLM_LOCAL_MODEL_COST_MAP=True \
            exec "$VENV/bin/python" -m addon.inspection.export "$@" ;;
    web)
        shift; setup
        set_proxy_args "$@"
        set_web_args
        check_port PROXY_PORT "${PROXY_HOST:-127.0.0.1}" "${PROXY_PORT:-8000}" --listen-port,-p,--mode,-m,listen_port,mode web "$@"
        check_port WEB_PORT "${WEB_HOST:-127.0.0.1}" "${WEB_PORT:-8081}" --web-port,web_port web "$@"
        exec "$VENV/bin/mitmweb" "${PROXY_ARGS[@]}" "${WEB_ARGS[@]}" "$@" ;;
    capture)
        # Passive: a forward proxy in mitmproxy's usual confdir (~/.mitmproxy, its CA reused or created there).
        # Lazy connections: the server is dialled once the request is known, so --map-remote decides where it goes
        # (eager would dial the CONNECT's host first: a stand-in or gateway for an unreachable host never answers).
        shift; setup
        set_web_args
        lazy_unless_set "$@"
        check_port CAPTURE_PORT 127.0.0.1 "${CAPTURE_PORT:-8080}" --listen-port,-p,--mode,-m,listen_port,mode capture "$@"
        check_port WEB_PORT "${WEB_HOST:-127.0.0.1}" "${WEB_PORT:-8081}" --web-port,web_port capture "$@"
        exec "$VENV/bin/mitmweb" --mode regular --listen-host 127.0.0.1 --listen-port "${CAPTURE_PORT:-8080}" \
            "${LAZY[@]}" -s "$ROOT/addon/capture_mode.py" "${WEB_ARGS[@]}" "$@" ;;
    *)
        setup
        set_proxy_args "$@"
        check_port PROXY_PORT "${PROXY_HOST:-127.0.0.1}" "${PROXY_PORT:-8000}" --listen-port,-p,--mode,-m,listen_port,mode "" "$@"
        exec "$VENV/bin/mitmdump" "${PROXY_ARGS[@]}" "$@" ;;
esac
