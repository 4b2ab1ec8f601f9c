"""Loopback: whether a name or an address stands for this machine.

One rule for every place that asks: the address the mock is bound to, a ``Host``
header's name (``http/origins.py``), a client's address (``http/admin.py``) and an OAuth
redirect URI's host (``core/oauth.py``). A redirect URI's host is read strictly
(:func:`is_loopback_redirect_host`): it gets a code with no consent asked, so only the
exact forms RFC 8252 names pass.
"""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["is_loopback", "is_loopback_redirect_host"]

_LOOPBACK_NAME = "localhost"


@functools.lru_cache(maxsize=256)
def is_loopback(host: str) -> bool:
    """True when ``host`` is this machine: the name ``localhost``, or an address of
    127.0.0.0/8 or ``::1`` (bracketed or not, with an IPv6 zone or not, or an IPv4 loopback
    address mapped into IPv6 as a dual-stack socket reports it). Case and a trailing dot of
    a name do not matter; anything else, a port included, is not loopback."""
    return _loopback(host, strict=False)


@functools.lru_cache(maxsize=256)
def is_loopback_redirect_host(host: str) -> bool:
    """True when ``host``, the host of an OAuth redirect URI, is loopback as RFC 8252
    (sections 7.3 and 8.3) lets a native app's redirect be: exactly ``localhost`` (any
    case) or a loopback IP literal (bracketed or not). Unlike :func:`is_loopback`, a
    trailing dot (``localhost.`` is another DNS name, resolved as the resolver likes) and
    an IPv6 zone (``[::1%25lo]``, an interface no URI should name) are refused."""
    return _loopback(host, strict=True)


def _loopback(host: str, *, strict: bool) -> bool:
    name = host.lower() if strict else host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not strict:
        name = name.rstrip(".")
    elif "%" in name:
        return False
    if name == _LOOPBACK_NAME:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped is not None and mapped.is_loopback
