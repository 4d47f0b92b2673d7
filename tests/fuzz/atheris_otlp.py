"""Coverage-guided fuzzing (atheris, libFuzzer) of the OTLP decoders and the mappings.

Run by ``make fuzz`` after the hypothesis tests; by hand::

    python tests/fuzz/atheris_otlp.py -runs=200000 -max_total_time=300

Each input picks a decoder (trace or metric, protobuf or JSON) and feeds it the rest of the
bytes. Anything but :class:`~wattledger.ingest.otlp.DecodeError` from decoding, an exception
from the mapping, or counts that do not add up is a crash, which libFuzzer saves as
``crash-<hash>`` for replay (``python tests/fuzz/atheris_otlp.py crash-<hash>``). The seed
corpus is built from valid requests in a temporary directory, removed at exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.fuzz

with atheris.instrument_imports(include=["wattledger"]):
    from wattledger.ingest.mapping.requests import map_requests
    from wattledger.ingest.mapping.samples import map_samples
    from wattledger.ingest.otlp import DecodeError, metrics, traces


def one_input(data: bytes) -> None:
    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    try:
        if kind < 2:
            spans = traces.decode_protobuf(body) if kind == 0 else traces.decode_json(body)
            m = map_requests(spans.columns, tenant="fuzz")
            assert m.table.num_rows + m.rejected + m.non_genai == spans.count
        else:
            points = metrics.decode_protobuf(body) if kind == 2 else metrics.decode_json(body)
            s = map_samples(points.columns, tenant="fuzz")
            assert s.ignored + s.rejected <= points.count
    except DecodeError:
        pass


def seeds(directory: Path) -> None:
    """Valid trace and metric requests, protobuf and JSON, as the first corpus."""
    from hypothesis import find, settings

    from tests.fuzz.strategies import metric_requests, trace_requests
    from tests.fuzz.test_fuzz_roundtrip import to_otlp_json

    i = 0
    for kind, strategy in ((0, trace_requests()), (2, metric_requests())):
        for size in range(1, 6):
            req = find(
                strategy,
                lambda r, n=size: r.ByteSize() > 40 * n,
                settings=settings(database=None),  # leave no .hypothesis directory
            )
            for k, body in ((kind, req.SerializeToString()), (kind + 1, to_otlp_json(req))):
                (directory / f"seed-{i}").write_bytes(bytes([k]) + body)
                i += 1


def main() -> None:
    """Build the seed corpus, fuzz in a child process (libFuzzer exits hard), clean up."""
    if sys.argv[1:2] == ["--worker"]:
        atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
        atheris.Fuzz()
        return
    work = Path(tempfile.mkdtemp(prefix="wattledger-atheris-"))
    corpus = work / "corpus"
    corpus.mkdir()
    # hypothesis (which builds the seeds) keeps caches in its storage directory: not in the tree
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(work / "hypothesis")
    try:
        seeds(corpus)
        args = sys.argv[1:]
        if not any(not a.startswith("-") for a in args):
            args.append(str(corpus))
        code = subprocess.call([sys.executable, __file__, "--worker", *args])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
