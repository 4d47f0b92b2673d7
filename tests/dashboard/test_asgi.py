"""The dashboard's page shell middleware, on a small Starlette app standing in for Streamlit."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from wattledger.dashboard import asgi

PAGE = "<!DOCTYPE html><html><head><title>x</title></head><body>" + "x" * 2000 + "</body></html>"


def _page(request: Request) -> Response:
    return HTMLResponse(PAGE)


def _script(request: Request) -> Response:
    return Response("console.log(1)" * 200, media_type="text/javascript")


def _missing(request: Request) -> Response:
    return HTMLResponse("<html><head></head>not here</html>", status_code=404)


def _client() -> TestClient:
    inner = Starlette(
        routes=[
            Route("/", _page),
            Route("/vendors", _page),
            Route("/static/js/index.js", _script),
            Route("/gone", _missing),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=100)],  # as Streamlit compresses
    )
    return TestClient(asgi.PageShell(inner))


def test_every_page_tells_streamlit_where_its_server_is_and_preloads_code() -> None:
    client = _client()
    for path in ("/", "/vendors"):
        r = client.get(path, headers={"accept-encoding": "gzip"})
        assert r.status_code == 200
        assert r.headers.get("content-encoding") is None  # asked for uncompressed, to edit it
        assert int(r.headers["content-length"]) == len(r.content)
        head = r.text.split("</head>")[0]
        assert 'window.__streamlit=Object.assign({BACKEND_BASE_URL:location.origin+"/"}' in head
        assert '<link rel="modulepreload" crossorigin href="./static/js/Html.' in head
        assert "purify.es." in head and "MaterialSymbols-Rounded." in head
        assert r.text.endswith("x" * 2000 + "</body></html>")  # the rest is untouched


def test_other_responses_pass_through_unchanged() -> None:
    client = _client()
    js = client.get("/static/js/index.js", headers={"accept-encoding": "gzip"})
    assert js.headers["content-encoding"] == "gzip" and js.text == "console.log(1)" * 200
    missing = client.get("/gone")
    assert missing.status_code == 404 and "__streamlit" not in missing.text
    assert client.post("/vendors").status_code == 405  # only GET is edited


def test_a_base_url_path_is_kept() -> None:
    assert b'location.origin+"/wattledger/"' in asgi.head_snippet("/wattledger/")
    assert b'location.origin+"/"' in asgi.head_snippet("")
    # A path from the config cannot end the script early.
    assert asgi.head_snippet("/a</script><b>").count(b"</script>") == 1


def test_preloads_name_only_files_of_this_streamlit() -> None:
    links = asgi.preload_links()
    assert links.count("<link") == 3  # Html, purify.es and the icon font, each exactly once
