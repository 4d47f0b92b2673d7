"""Config loading under random TOML files and WATTLEDGER_* variables.

Whatever the file or the environment holds, ``load_settings`` returns settings or raises a
:class:`~wattledger.errors.ConfigError` whose message names the offending key (or the file):
never another exception, never a traceback for the user.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.fuzz.profiles import fuzz
from wattledger.config import Settings, load_settings
from wattledger.errors import ConfigError


def key_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every settings key, nested sections included, as a path of names."""
    out = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        out.append(path)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(key_paths(ann, path))
    return out


PATHS = key_paths(Settings)
TOP = sorted({p[0] for p in PATHS})
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    text,
    st.sampled_from(["INFO", "duckdb:///x.duckdb", "127.0.0.1", "mon", "UTC", "a@b.c", "*"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(text, st.sampled_from(TOP)), inner)
    ),
    max_leaves=8,
)


def toml_string(v: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    return (
        '"'
        + "".join(
            f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in v
        )
        + '"'
    )


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    """A config document: real keys (at their real depth or not) with random values."""
    doc: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.one_of(st.sampled_from(PATHS), st.tuples(text.filter(bool))))
        node = doc
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = draw(values)
    return doc


def load_file(content: bytes) -> Settings | ConfigError:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "wattledger.toml"
        path.write_bytes(content)
        try:
            return load_settings(path)
        except ConfigError as e:
            assert "Traceback" not in e.message and e.message.strip()
            return e


@fuzz(100)
@given(documents())
def test_random_toml_gives_settings_or_an_error_naming_the_key(doc: dict[str, Any]) -> None:
    content = "\n".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items())
    result = load_file(content.encode())
    if isinstance(result, ConfigError):
        # "Config key 'a.b' from …" / "Unknown config key 'a.b' in …"
        m = re.search(
            r"[Kk]ey '(.*)' (?:in|from) (?:config file|the configuration)", result.message, re.S
        )
        assert m, result.message
        assert any(m.group(1) == k or m.group(1).startswith(f"{k}.") for k in doc), result.message


@fuzz(60)
@given(st.binary(max_size=80))
def test_random_bytes_as_the_file(content: bytes) -> None:
    result = load_file(content)
    if isinstance(result, ConfigError):
        assert "wattledger.toml" in result.message or "Config key" in result.message


env_names = st.sampled_from(PATHS).map(lambda p: "WATTLEDGER_" + "__".join(p).upper())


@fuzz(100)
@given(st.dictionaries(env_names, st.one_of(text, values.map(json.dumps)), min_size=1, max_size=3))
def test_random_environment_gives_settings_or_an_error_naming_the_variable(
    env: dict[str, str],
) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v.replace("\x00", "") for k, v in env.items()})
    try:
        try:
            load_settings()
        except ConfigError as e:
            assert any(name in e.message for name in env) or "Config key" in e.message, e.message
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
