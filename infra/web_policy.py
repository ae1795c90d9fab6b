"""What the hosted web page may load and talk to: its Content-Security-Policy, as plain data.

The stack puts it in the CloudFront response headers policy, with the stack's own WebSocket URL and
Cognito endpoint; the browser tests serve the local page under the same policy with the local
stack's URLs. The page (``clients/web/``) loads only its own ``app.js``, ``style.css``, icons, web
app manifest and service worker, fetches ``config.json`` from its own origin (the worker fetches
the page's own files again), posts to Cognito's JSON API and opens one WebSocket, so
everything else is refused: a configuration naming another host, an injected script or a frame
around the page all fail in the browser, whatever the page's code does.
"""

from __future__ import annotations

# Each directive and its sources, in the order they are written. connect-src gets the two URLs.
_FIXED_DIRECTIVES: tuple[tuple[str, str], ...] = (
    ("default-src", "'none'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("manifest-src", "'self'"),
    # The service worker (sw.js, which caches the page's own files) comes from the page's origin.
    ("worker-src", "'self'"),
    ("base-uri", "'none'"),
    ("form-action", "'none'"),
    ("frame-ancestors", "'none'"),
)


def content_security_policy(*, websocket_url: str, cognito_endpoint: str) -> str:
    """The policy for the page talking to ``websocket_url`` and ``cognito_endpoint``.

    ``connect-src 'self'`` is for ``config.json``; the WebSocket URL is the stage's (a source with
    a path matches that path exactly, whatever the query string), the Cognito endpoint its root.
    Either may be a CloudFormation token: the result is then a token string too.
    """
    fetch_directives = 6  # default-src … worker-src; connect-src follows them
    directives = [
        *_FIXED_DIRECTIVES[:fetch_directives],
        ("connect-src", f"'self' {websocket_url} {cognito_endpoint}"),
    ]
    directives += _FIXED_DIRECTIVES[fetch_directives:]
    return "; ".join(f"{name} {sources}" for name, sources in directives)


def directives(policy: str) -> dict[str, list[str]]:
    """A policy parsed into its directives and their sources (for checks and tests)."""
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed
