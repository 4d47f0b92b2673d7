"""Which provider really served a request: the producer's word, corrected by the endpoint host.

OpenAI-compatible clients report ``gen_ai.provider.name = "openai"`` (or older
``gen_ai.system``) whatever server they talk to, so when the producer says ``openai`` or nothing,
and ``server.address`` (or OpenLLMetry's ``gen_ai.openai.api_base``) names a host, the host
decides through :func:`wattledger.collectors.semconv.provider_from_host`. Users extend the host
table with ``[ingest] provider_hosts``; their entries are checked first.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from wattledger.collectors import semconv as sc

# scheme://[userinfo@]host[:port]/...  — host may be a bracketed IPv6 literal.
_URL_HOST = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?(?:[^@/?#]*@)?(?P<host>\[[^\]]*\]|[^:/?#\[\]]*)"


def host_table(extra: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The suffix table: user entries (lower-cased) first, then the built-in one."""
    user = tuple((k.lower().strip().rstrip("."), v) for k, v in (extra or {}).items())
    return user + sc.PROVIDER_HOSTS


def hosts_of_urls(urls: pa.Array) -> pa.Array:
    """The host part of each URL (``https://api.groq.com/openai/v1`` → ``api.groq.com``)."""
    hosts = pc.extract_regex(urls, _URL_HOST).field("host")
    hosts = pc.utf8_trim(hosts, "[]")
    return pc.if_else(pc.equal(hosts, ""), pa.scalar(None, pa.string()), hosts)


def resolve_providers(
    provider: pa.Array | None,
    server_address: pa.Array | None,
    api_base: pa.Array | None,
    n: int,
    extra_hosts: Mapping[str, str] | None = None,
) -> pa.Array:
    """The provider of each row, lower-cased; ``unknown`` when nothing says.

    Args:
        provider: ``gen_ai.provider.name`` coalesced with ``gen_ai.system``.
        server_address: ``server.address``.
        api_base: ``gen_ai.openai.api_base`` (a URL).
        n: Number of rows.
        extra_hosts: User ``host suffix -> provider`` pairs.
    """
    said = pc.utf8_lower(provider) if provider is not None else pa.nulls(n, pa.string())
    host = server_address
    if api_base is not None:
        from_url = hosts_of_urls(api_base)
        host = from_url if host is None else pc.coalesce(host, from_url)
    if host is None:
        return said.fill_null("unknown")
    ask = pc.and_(
        pc.or_(pc.is_null(said), pc.equal(said, "openai")).fill_null(True), pc.is_valid(host)
    )
    candidates = pc.unique(pc.filter(host, ask))
    if len(candidates) == 0:
        return said.fill_null("unknown")
    table = host_table(extra_hosts)
    mapped = pa.array(
        [sc.provider_from_host(h, table) for h in candidates.to_pylist()], pa.string()
    )
    by_host = pc.take(mapped, pc.index_in(host, value_set=candidates))
    resolved = pc.if_else(pc.and_(ask, pc.is_valid(by_host)), by_host, said)
    return resolved.fill_null("unknown")
