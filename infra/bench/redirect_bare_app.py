"""The reference app of `just bench redirect`: a bare Starlette app answering 302 from a dict.

Same codes and URLs as the real service, an idiomatic Starlette handler (Request, Response),
no lookup service, no click event: what the web server + Starlette alone cost per redirect.
Run: python infra/bench/redirect_bare_app.py --server granian --port 18001 --links links.json
"""

import argparse
import json
import os

from platformkit.server import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app() -> Starlette:
    """Factory (the server imports this module by name); the links file comes from the environment."""
    with open(os.environ["BENCH_LINKS_FILE"]) as f:
        links: dict[str, str] = json.load(f)

    async def redirect(request: Request) -> Response:
        url = links.get(request.path_params["code"])
        if url is None:
            return Response(status_code=404)
        return Response(status_code=302, headers={"location": url, "cache-control": "private, no-cache"})

    return Starlette(routes=[Route("/{code}", redirect, methods=["GET", "HEAD"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["hypercorn", "granian", "uvicorn"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--links", required=True)
    args = parser.parse_args()
    os.environ["BENCH_LINKS_FILE"] = args.links
    serve(factory="redirect_bare_app:app", server=args.server, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
