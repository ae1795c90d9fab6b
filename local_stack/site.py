"""Plain HTTP on the WebSocket port: the web client's files, ``/config.json`` and the inspector.

``/`` is ``index.html``; any other path is a file under the web root, with its content type, or a
404. A path that would leave the web root (``..``, encoded or not, or a symlink out of it) is a
404 as well: nothing outside the folder is ever read. Paths under a prefix given to ``mount``
(the inspector's ``/_local/``) go to that handler, whatever the method.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

CONFIG_PATH = "/config.json"
# mimetypes reads the system's tables, which differ between machines: these must not.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
}


class Mounted(Protocol):
    """A handler for every request under one path prefix."""

    def respond(self, request: Request) -> Awaitable[Response]: ...


class StaticSite:
    """Serves ``web_root`` and the stack's configuration."""

    def __init__(self, web_root: Path, config: Callable[[], Mapping[str, Any]]) -> None:
        self._root = web_root.resolve()
        self._config = config
        self._mounted: dict[str, Mounted] = {}

    def mount(self, prefix: str, handler: Mounted) -> None:
        """Hand every request for ``prefix`` (and the same without its last slash) to ``handler``."""
        self._mounted[prefix] = handler

    async def handle(self, request: Request) -> Response:
        """Any plain HTTP request on the port: a mounted handler's, else a GET of a file."""
        url_path = urlsplit(request.path).path
        for prefix, handler in self._mounted.items():
            if url_path.startswith(prefix) or url_path == prefix.rstrip("/"):
                return await handler.respond(request)
        if request.method != "GET":
            return _response(405, "Method Not Allowed", b"Method Not Allowed\n", "text/plain; charset=utf-8")
        return self.respond(request.path)

    def respond(self, path: str) -> Response:
        url_path = urlsplit(path).path
        if url_path == CONFIG_PATH:
            body = json.dumps(self._config(), indent=2).encode()
            return _response(200, "OK", body, "application/json", cache=False)
        file = self.resolve(url_path)
        if file is None:
            return _response(404, "Not Found", b"Not Found\n", "text/plain; charset=utf-8")
        return _response(200, "OK", file.read_bytes(), content_type(file))

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names inside the web root, or None."""
        relative = unquote(url_path).lstrip("/") or "index.html"
        if "\x00" in relative or "\\" in relative:
            return None
        candidate = (self._root / relative).resolve()
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_relative_to(self._root) or not candidate.is_file():
            return None
        return candidate


def content_type(file: Path) -> str:
    suffix = file.suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"


def _response(status: int, reason: str, body: bytes, content_type: str, *, cache: bool = True) -> Response:
    headers = Headers(
        {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            # The files change while someone works on the client; always revalidate.
            "Cache-Control": "no-cache" if cache else "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    return Response(status, reason, headers, body)
