"""The "instrument your service" example at the top of docs/sdk.md works as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sdk_support import OpenAIServer, OtlpReceiver

from wattledger.collectors import semconv

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def first_python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, "docs/sdk.md has no python example"
    return match.group(1)


def test_three_line_example_instruments_a_real_client(
    otlp_receiver: OtlpReceiver, openai_server: OpenAIServer
) -> None:
    example = first_python_block(DOC.read_text())
    assert len([line for line in example.splitlines() if line.strip()]) == 3
    program = (
        example  # then one request and a clean exit
        + 'client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])\n'
        + "wattledger.shutdown()\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WATTLEDGER_", "OTEL_"))},
        "WATTLEDGER_ENDPOINT": otlp_receiver.url,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": "sk-local",
    }
    run = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    ((resource, attrs, span),) = otlp_receiver.spans()
    assert resource[semconv.SERVICE_NAME] == "chat-api"
    assert span.name == "chat m"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12


def test_every_semconv_name_is_documented() -> None:
    doc = (DOC.parent / "semantic-conventions.md").read_text()
    names = {
        key: value
        for key, value in vars(semconv).items()
        if key.isupper() and isinstance(value, str) and key not in ("SCHEMA_URL", "SCOPE_NAME")
    }
    assert names
    assert [key for key, value in names.items() if f"`{value}" not in doc] == []
