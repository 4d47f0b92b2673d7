"""Decode workers: request bodies wait here and are decoded and mapped several at a time.

Decoding a body costs a fixed part (a few dozen Arrow and NumPy calls, the same for 10 spans
or 10,000) and a part per span. When requests arrive faster than one body is decoded, they
queue up; a worker then takes all that are waiting and decodes them as one
(:meth:`~wattledger.ingest.service.IngestService.process_many`), which spreads the fixed part.
Under light load each body is decoded alone, as soon as it arrives.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from wattledger.ingest.spool import SpoolRecord

logger = logging.getLogger(__name__)

ProcessMany = Callable[[list[SpoolRecord]], list]


class DecoderStopped(Exception):
    """The decode workers are not running (the service is starting or stopping): retry."""


class DecodeQueue:
    """Bodies waiting for a decode worker; :meth:`submit` returns a future of the outcome.

    Args:
        process_many: Decodes and maps a list of records; returns, per record, its outcome or
            the exception to raise for it.
        threads: Worker threads (decoding holds the GIL, so few help).
        max_records: Most bodies decoded together.
        max_bytes: Most body bytes (as received) decoded together.
    """

    def __init__(
        self,
        process_many: ProcessMany,
        threads: int,
        max_records: int = 16,
        max_bytes: int = 32 << 20,
        linger_s: float = 0.002,
    ) -> None:
        self._process_many = process_many
        self._threads_wanted = threads
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._linger_s = linger_s
        self._incoming = 0
        self._queue: collections.deque[tuple[SpoolRecord, concurrent.futures.Future[object]]] = (
            collections.deque()
        )
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads. Idempotent."""
        with self._cond:
            if self._threads:
                return
            self._stopping = False
            for i in range(self._threads_wanted):
                t = threading.Thread(target=self._run, name=f"wattledger-decode-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish what is queued and stop the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(timeout_s)

    def expect(self) -> None:
        """A body is being received and will be submitted (or :meth:`withdraw` is called)."""
        with self._cond:
            self._incoming += 1

    def withdraw(self) -> None:
        """An expected body will not come (the request was refused)."""
        with self._cond:
            self._incoming = max(0, self._incoming - 1)
            self._cond.notify_all()

    def submit(
        self, record: SpoolRecord, *, expected: bool = False
    ) -> concurrent.futures.Future[object]:
        """Queue ``record``; the future gives its outcome or raises its decode error.

        ``expected``: the body was announced with :meth:`expect`.
        """
        future: concurrent.futures.Future[object] = concurrent.futures.Future()
        with self._cond:
            if expected:
                self._incoming = max(0, self._incoming - 1)
            if self._stopping or not self._threads:
                future.set_exception(DecoderStopped("the decoder is not running"))
                return future
            self._queue.append((record, future))
            self._cond.notify()
        return future

    @property
    def incoming(self) -> int:
        """Bodies announced with :meth:`expect` and not yet submitted or withdrawn."""
        return self._incoming

    @property
    def depth(self) -> int:
        """Bodies waiting for a worker."""
        return len(self._queue)

    def _take(self) -> list[tuple[SpoolRecord, concurrent.futures.Future[object]]]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            # Bodies still being received will be here in a moment: wait briefly for them,
            # as decoding them with these costs less than decoding them apart.
            deadline = time.monotonic() + self._linger_s
            while (
                self._incoming
                and len(self._queue) < self._max_records
                and not self._stopping
                and (left := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(left)
            taken: list[tuple[SpoolRecord, concurrent.futures.Future[object]]] = []
            size = 0
            while self._queue and len(taken) < self._max_records:
                record = self._queue[0][0]
                if taken and size + len(record.body) > self._max_bytes:
                    break
                taken.append(self._queue.popleft())
                size += len(record.body)
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return  # stopping and nothing left
            try:
                results = self._process_many([record for record, _ in taken])
            except Exception as e:  # noqa: BLE001 - a bug: fail these requests, keep serving
                logger.exception("decoding %d request(s) failed", len(taken))
                results = [e] * len(taken)
            for (_, future), result in zip(taken, results, strict=True):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
