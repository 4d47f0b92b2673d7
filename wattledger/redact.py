"""Hide secrets in database URLs and connection strings before they reach a log or a message.

One redaction for every form a user may give a database location:

- user-info: ``postgresql+psycopg://user:SECRET@host/db``;
- query parameters: ``…/db?password=SECRET&sslpassword=SECRET&sslmode=require``;
- libpq keyword strings: ``host=db user=app password=SECRET``, also inside a driver's message.

Every parameter whose name suggests a secret (password, passwd, pwd, token, secret, key,
credential, auth) is masked, so is the password in the user-info. Everything else (host,
port, database, sslmode) stays readable, because it is what a user needs to fix a typo.

This module is on the ground floor: it imports only the standard library, so every layer
(collectors, ingest, models, analytics, dashboard, CLI) may use it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"

# Parameter names that carry secrets: libpq's password/sslpassword, tokens, API keys,
# AWS/GCP-style credentials. Matched as substrings of the lower-cased name.
_SECRET_PARTS = ("pass", "pwd", "token", "secret", "key", "credential", "auth")
# `sslkey`/`sslcert` are paths, not secrets, but hiding a path costs nothing.

_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:?#\s]*):(?P<pw>[^@/\s]*)@"
)
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<key>[^=&#\s]+)=(?P<value>[^&#\s]*)")
# libpq keyword/value: key=value or key='quoted value' (with \' escapes).
_KEYWORD = re.compile(
    r"(?P<key>\b[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|[^\s'&]+)"
)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARTS)


def _mask_param(m: re.Match[str]) -> str:
    value = MASK if _is_secret(unquote(m["key"])) else m["value"]
    return f"{m['sep']}{m['key']}={value}"


def redact_url(url: str) -> str:
    """``url`` with its password, secret query parameters and secret keywords masked.

    Works on SQLAlchemy/URL forms and on libpq keyword strings; a string that is neither is
    returned with any ``key=value`` secret masked all the same.

    >>> redact_url("postgresql+psycopg://app:s3cr3t@db:5432/w?password=x&sslmode=require")
    'postgresql+psycopg://app:***@db:5432/w?password=***&sslmode=require'
    >>> redact_url("host=db user=app password='a b'")
    'host=db user=app password=***'
    """
    if not url:
        return url
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    if "://" in out:
        out = _QUERY_PARAM.sub(
            lambda m: (
                f"{m['sep']}{m['key']}={MASK if _is_secret(unquote(m['key'])) else m['value']}"
            ),
            out,
        )
    return _KEYWORD.sub(
        lambda m: f"{m['key']}={MASK}" if _is_secret(m["key"]) else m.group(0),
        out,
    )


def secrets_in(url: str) -> list[str]:
    """The secret values a URL or keyword string carries (to scrub them from other text)."""
    found: list[str] = []
    if not url:
        return found
    for m in _USERINFO.finditer(url):
        if m["pw"]:
            found += [m["pw"], unquote(m["pw"])]
    if "://" in url:
        try:
            query = urlsplit(url).query
        except ValueError:
            query = url.partition("?")[2]
        for key, value in parse_qsl(query, keep_blank_values=False):
            if _is_secret(key) and value:
                found.append(value)
        for m in _QUERY_PARAM.finditer(url):
            if _is_secret(unquote(m["key"])) and m["value"]:
                found += [m["value"], unquote(m["value"])]
    for m in _KEYWORD.finditer(url):
        if _is_secret(m["key"]):
            value = m["value"]
            if value.startswith("'") and value.endswith("'") and len(value) >= 2:
                value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
            if value:
                found.append(value)
    # Longest first, so a secret containing another is replaced whole. Values shorter than 3
    # characters are left to the pattern masking (replacing every "a" would garble the text).
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def scrub(text: str, *urls: str) -> str:
    """``text`` (a driver's error, a log line) with every secret of ``urls`` masked, and any
    URL or keyword secret it spells out itself redacted too."""
    for url in urls:
        for secret in secrets_in(url):
            text = text.replace(secret, MASK)
    return redact_url(text)
