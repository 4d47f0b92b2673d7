"""The dashboard as an ASGI app: ``streamlit run`` finds ``app`` here and serves it with uvicorn.

It is the app of ``streamlit_app.py`` plus one middleware, :class:`PageShell`, that edits the
HTML page Streamlit sends for every URL (``/``, ``/vendors``, ...) before the browser runs it:

- **One connection attempt, not two.** Opened at ``/vendors``, Streamlit's front end first
  looks for its server under ``/vendors/_stcore/…``, gets 404s, waits its 100 ms minimum retry
  delay and only then tries ``/_stcore/…``. Every page but the overview paid ~110-130 ms for
  that on a direct link or a new tab. The page now tells the front end where the server is
  (``window.__streamlit.BACKEND_BASE_URL``, Streamlit's setting for hosting it elsewhere), so
  it connects at once. Switching pages inside the app never paid this.
- **The element code every page draws is fetched with the page.** The chunks for ``st.html``
  (and DOMPurify, which it uses) and for popovers are otherwise fetched only when the first
  such element arrives over the websocket; ``<link rel="modulepreload">`` asks for them at
  once, in parallel with Streamlit's own bundle.

It also warms the process up before it reports ready (:func:`warm_up`): the imports every page
needs and vl-convert's start-up would otherwise land on the first page someone opens. Then a
:class:`~wattledger.dashboard.warm.Warmer` opens every page once whenever a new snapshot is
published, so the first view after an analytics run is served from the caches too.

Nothing else changes: the same routes, the same ``streamlit run`` flags (see
:func:`wattledger.dashboard.launch.streamlit_command`). With a Streamlit that no longer reads
``window.__streamlit``, pages still work; they only load as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.middleware import Middleware
from streamlit import config

from wattledger.dashboard.warm import Warmer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Files of Streamlit's front end (``static/<folder>/<name>.<hash>.<ext>``) that every page
#: needs: the code for ``st.html`` and DOMPurify, and the icon font (navigation, buttons).
PRELOAD = (
    ("js", "Html", '<link rel="modulepreload" crossorigin href="./static/js/{}">'),
    ("js", "purify.es", '<link rel="modulepreload" crossorigin href="./static/js/{}">'),
    (
        "media",
        "MaterialSymbols-Rounded",
        '<link rel="preload" as="font" type="font/woff2" crossorigin href="./static/media/{}">',
    ),
)


def preload_links() -> str:
    """A preload link for each file of :data:`PRELOAD` found in this Streamlit's bundle."""
    static = Path(st.__file__).parent / "static" / "static"
    links = []
    for folder, name, link in PRELOAD:
        for path in sorted((static / folder).glob(f"{name}.*")):
            if path.name.count(".") == name.count(".") + 2:  # <name>.<hash>.<ext> only
                links.append(link.format(path.name))
    return "".join(links)


def head_snippet(base_url_path: str) -> bytes:
    """What goes at the top of the page's ``<head>``: the server's base URL, then preloads."""
    base = "/" + base_url_path.strip("/") if base_url_path.strip("/") else ""
    path = json.dumps(base + "/").replace("<", "\\u003c")  # cannot close the <script>
    script = (
        "<script>window.__streamlit=Object.assign("
        f"{{BACKEND_BASE_URL:location.origin+{path}}},window.__streamlit||{{}})</script>"
    )
    return (script + preload_links()).encode()


class PageShell:
    """ASGI middleware: add :func:`head_snippet` to every HTML page Streamlit serves.

    Only ``GET`` responses of type ``text/html`` are touched (the page shell, a few kB); the
    request is sent on without ``Accept-Encoding`` so the HTML arrives uncompressed. Every
    other request and response passes through unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.snippet = head_snippet(str(config.get_option("server.baseUrlPath") or ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or _is_asset(scope["path"]):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]
        start: Message | None = None
        chunks: list[bytes] = []

        async def edit(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if message["status"] == 200 and headers.get(b"content-type", b"").startswith(
                    b"text/html"
                ):
                    start = message  # hold it: the length changes
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks).replace(b"<head>", b"<head>" + self.snippet, 1)
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, edit)


def _is_asset(path: str) -> bool:
    """Streamlit's own endpoints and files: never the HTML page."""
    last = path.rsplit("/", 1)[-1]
    return "/_stcore/" in path or "/static/" in path or "/media/" in path or "." in last


log = logging.getLogger(__name__)

#: The smallest chart: drawing it starts vl-convert's JavaScript runtime (~0.4 s).
_TINY_CHART = {
    "data": {"values": [{"x": 1}]},
    "mark": "point",
    "encoding": {"x": {"field": "x", "type": "quantitative"}},
}


def warm_up() -> None:
    """Import what the pages use (pandas, Altair, SQLAlchemy, DuckDB, our modules) and start
    vl-convert, about a second of work the first page view would otherwise wait for."""
    import vl_convert

    from wattledger.dashboard import charts, data, filters, frames, frames_ops, ui  # noqa: F401

    vl_convert.vegalite_to_svg(_TINY_CHART)


def _local_url() -> str:
    """Where this server answers on this machine."""
    address = str(config.get_option("server.address") or "")
    host = "127.0.0.1" if address in ("", "0.0.0.0", "::") else address
    host = f"[{host}]" if ":" in host else host
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"http://{host}:{config.get_option('server.port')}" + (f"/{base}" if base else "")


def start_warmer() -> Warmer:
    """Start the thread that opens every page whenever a new snapshot appears (``warm.py``)."""
    import httpx

    from wattledger.config import load_settings
    from wattledger.dashboard.source import resolve_source

    settings = load_settings()
    url = _local_url()

    def version() -> str | None:
        if settings.dashboard.password_hash or settings.dashboard.users:
            return None  # the pages stop at the sign-in form
        src = resolve_source(settings)
        return src.version if src.kind == "snapshot" else None

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    warmer = Warmer(url, version, ready=ready)
    warmer.start()
    return warmer


@asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """Warm up before serving, then keep the caches warm; a failure here is logged, and the
    pages report it themselves."""
    if not logging.getLogger("wattledger").handlers:  # say what the warm-up did, on stderr
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("wattledger").addHandler(handler)
        logging.getLogger("wattledger").setLevel(logging.INFO)
    warmer = None
    try:
        await asyncio.to_thread(warm_up)
        warmer = start_warmer()
    except Exception:  # never keep the dashboard from starting
        log.warning("dashboard warm-up failed; the first page view will be slower", exc_info=True)
    yield
    if warmer is not None:
        warmer.stop()


app = st.App(
    Path(__file__).with_name("streamlit_app.py"),
    middleware=[Middleware(PageShell)],
    lifespan=lifespan,
)
