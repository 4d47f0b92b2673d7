"""Warm the dashboard's caches: open every page once, headless, whenever a new snapshot appears.

A page's first view after the analytics job publishes a snapshot runs that page's queries and
draws its chart (0.2-0.5 s more than a warm view with a month of data, see
docs/benchmarks/dashboard.md); every later view is served from the in-process caches. The
:class:`Warmer` thread in the dashboard process does that first view itself: it watches the
snapshot's version and, when it changes (and once at start), opens each page in a session of
its own over Streamlit's websocket protocol, as a browser would, with the default filters. The
caches it fills are the ones every visitor's default view reads.

Only a DuckDB snapshot is watched: PostgreSQL results expire every ``cache_ttl_s``, and warming
them would query the database all day for nobody. A dashboard behind a password warms nothing
(its pages stop at the sign-in form), nor does one whose users are bound to tenants one by one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

#: The dashboard's pages by URL path ("" is the overview), in the order they are warmed.
PAGES = ("", "vendors", "workloads", "recommendations", "fleet", "reports")


class WarmError(Exception):
    """A page could not be opened (server gone, script error, no answer in time)."""


def open_page(base_url: str, page: str, timeout_s: float = 120.0) -> float:
    """Open ``page`` of the Streamlit app at ``base_url`` in a new session and wait until its
    script has finished; returns the seconds it took.

    Raises:
        WarmError: the connection failed, the script raised, or it did not finish in time.
    """
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    ws_url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    start = time.monotonic()
    deadline = start + timeout_s
    rerun = BackMsg()
    rerun.rerun_script.page_name = page
    rerun.rerun_script.query_string = ""
    try:
        with connect(f"{ws_url}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10) as ws:
            ws.send(rerun.SerializeToString())
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WarmError(f"page /{page} did not finish in {timeout_s:.0f} s")
                data = ws.recv(timeout=left)
                msg = ForwardMsg()
                msg.ParseFromString(data if isinstance(data, bytes) else data.encode())
                if msg.WhichOneof("type") == "delta" and msg.delta.new_element.HasField(
                    "exception"
                ):
                    raise WarmError(
                        f"page /{page} raised {msg.delta.new_element.exception.type}: "
                        f"{msg.delta.new_element.exception.message}"
                    )
                if msg.WhichOneof("type") == "script_finished":
                    return time.monotonic() - start
    except (OSError, TimeoutError, WebSocketException) as e:
        raise WarmError(f"could not open page /{page}: {e}") from e


class Warmer(threading.Thread):
    """Open every page once at start and again whenever ``version()`` changes.

    ``version`` returns the data's current version, or ``None`` when there is nothing to warm
    (no snapshot, a PostgreSQL source, a password). ``ready`` says whether the server answers.
    Failures are logged and retried at the next change; the thread never stops the dashboard.
    """

    def __init__(
        self,
        base_url: str,
        version: Callable[[], str | None],
        *,
        ready: Callable[[], bool],
        pages: Sequence[str] = PAGES,
        poll_s: float = 2.0,
    ) -> None:
        super().__init__(name="wattledger-dashboard-warmer", daemon=True)
        self.base_url = base_url
        self.version = version
        self.ready = ready
        self.pages = tuple(pages)
        self.poll_s = poll_s
        self.warmed: str | None = None
        #: Set after each complete warm-up (tests wait on it).
        self.done = threading.Event()
        self._halt = threading.Event()

    def stop(self) -> None:
        """Ask the thread to end (it is a daemon: it also ends with the process)."""
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set() and not self.ready():
            self._halt.wait(0.2)
        while not self._halt.is_set():
            try:
                current = self.version()
            except Exception:  # a source that cannot be resolved right now
                log.debug("dashboard warm-up: no data version", exc_info=True)
                current = None
            if current is not None and current != self.warmed:
                self._warm(current)
            self._halt.wait(self.poll_s)

    def _warm(self, version: str) -> None:
        start = time.monotonic()
        try:
            took = [open_page(self.base_url, page) for page in self.pages]
        except WarmError as e:
            log.warning("dashboard warm-up failed (the next change retries): %s", e)
            self.warmed = version  # do not retry the same version in a loop
            return
        self.warmed = version
        self.done.set()
        log.info(
            "dashboard warm-up: %d pages in %.1f s (slowest %.2f s)",
            len(took),
            time.monotonic() - start,
            max(took),
        )
