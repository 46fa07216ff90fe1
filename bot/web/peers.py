"""Which peers are the trusted proxies whose X-Forwarded-For names the client, read as gunicorn reads
FORWARDED_ALLOW_IPS: addresses or networks (`10.0.0.0/8`), `*` for any, an IPv4 peer seen as
`::ffff:a.b.c.d` on a dual-stack bind the same as `a.b.c.d`."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def networks(allowed: tuple[str, ...]) -> tuple[Network, ...] | None:
    """FORWARDED_ALLOW_IPS as networks; None for `*`. An entry that is no address is skipped (gunicorn
    refuses to start with it, so only a bare app ever sees one)."""
    if "*" in allowed:
        return None
    found = []
    for entry in allowed:
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return tuple(found)


@lru_cache(maxsize=4096)
def is_trusted(peer: str, allowed: tuple[str, ...]) -> bool:
    """Whether `peer` is one of the proxies in `allowed` (FORWARDED_ALLOW_IPS, split)."""
    trusted = networks(allowed)
    if trusted is None:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in trusted)
