"""The address a request really came from, behind the TLS-terminating proxy."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _is_trusted_proxy(address: str) -> bool:
    trusted = settings.PORTAL_TRUSTED_PROXIES
    if "*" in trusted:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(request) -> str:
    """The peer's address, or when the peer is a trusted proxy (FORWARDED_ALLOW_IPS, the
    addresses gunicorn trusts too) the nearest X-Forwarded-For address that is not one.

    Read right to left: a client can put anything in the left part of the header, only the
    entries the proxies appended are facts. Sign-in throttling and the audit trail use it.
    """
    peer = request.META.get("REMOTE_ADDR", "") or ""
    if not _is_trusted_proxy(peer):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: trust nothing in it
        if not _is_trusted_proxy(hop):
            return hop
    return peer
