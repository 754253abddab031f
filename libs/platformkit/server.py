"""Serve an ASGI app factory under the server a setting names: hypercorn, granian or uvicorn.

hypercorn is the customer's server and works for every service; the redirect and shorten
services default to the one measured fastest by `just bench redirect` / `just bench writes`
(see docs/benchmarks).
"""

import logging
import os

from telemetry.logs import dict_config

from platformkit.settings import ServerName

log = logging.getLogger(__name__)

# How long a server keeps an idle keep-alive connection. nginx reuses idle upstream connections
# for up to its upstream `keepalive_timeout` (60 s in both nginx configs); a server that closes
# first races nginx's next request on that connection, and nginx does not retry a POST
# elsewhere, so the client gets a 502. hypercorn's and uvicorn's default is 5 s, granian's 30 s
# (its HTTP/1 header read timeout, which also runs on an idle connection). The server
# must therefore outlast the proxy: tests/unit/test_keep_alive.py checks the pair.
KEEP_ALIVE_TIMEOUT_S = 75


def serve(*, factory: str, server: ServerName, host: str, port: int, log_level: str = "info") -> None:
    """Run `factory` ("package.module:function", returns an ASGI app) until SIGTERM/SIGINT.

    The servers log through the process's logging setup (telemetry.logs), not their own format.
    """
    log.info("serving %s with %s on %s:%d", factory, server, host, port)
    if server == "hypercorn":
        _serve_hypercorn(factory, host, port)
    elif server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings

        # granian serves from a worker process; the worker must not outlive its parent (a
        # crashed parent restarted by the supervisor would otherwise leave an orphan serving
        # the same port with stale state). The wrapper factory arranges that in the worker.
        os.environ[_FACTORY_ENV] = factory
        Granian(
            "platformkit.server:worker_app",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            factory=True,
            # granian closes a keep-alive connection on which no request head arrived within
            # header_read_timeout (default 30 s, i.e. an idle one): it must outlast nginx too.
            http1_settings=HTTP1Settings(header_read_timeout=KEEP_ALIVE_TIMEOUT_S * 1000),
            log_level=log_level.lower(),  # type: ignore[arg-type]
            # granian's worker process configures logging from this dict: the same JSON lines.
            log_dictconfig=dict_config(_service_name(), log_level),
        ).serve()
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
            log_level=log_level.lower(),
            log_config=None,  # keep the process's logging setup
        )
    else:  # pragma: no cover - ServerName is a Literal, settings validation refuses others
        raise ValueError(f"unknown server {server!r}")


_FACTORY_ENV = "PLATFORMKIT_APP_FACTORY"


def _service_name() -> str:
    """The `service` of the process's log lines (set by telemetry.logs.setup_logging)."""
    for handler in logging.getLogger().handlers:
        fields = getattr(handler.formatter, "static_fields", None)
        if isinstance(fields, dict) and "service" in fields:
            return str(fields["service"])
    return "app"


_PR_SET_PDEATHSIG = 1


def exit_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent dies."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def worker_app() -> object:
    """granian's factory in the worker process: tie its life to the parent, then build the app."""
    exit_with_parent()
    return _load(os.environ[_FACTORY_ENV])


def _load(factory: str) -> object:
    import importlib

    module_name, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module_name), attr)()


def _serve_hypercorn(factory: str, host: str, port: int) -> None:
    import uvloop
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # through the process's handlers
    config.graceful_timeout = 5
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT_S

    async def main() -> None:
        app = _load(factory)
        await hypercorn_serve(app, config)  # type: ignore[arg-type]

    uvloop.run(main())
