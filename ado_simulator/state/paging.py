"""Query parameters and keyset paging, as the list endpoints of ADO read and page them."""

from __future__ import annotations

from datetime import datetime

from ..errors import bad_request
from ..util import decode_token, encode_token, parse_time

DEFAULT_PAGE = 1000


def int_param(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"The value '{raw}' of '{name}' is not a valid integer.") from exc
    if value < 0:
        raise bad_request(f"The value of '{name}' must not be negative.")
    return value


def time_param(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise bad_request(f"The value '{raw}' of '{name}' is not a valid date-time.") from exc


def keyset_page(
    items, key, descending: bool, top: int | None, token: str | None, default_top: int | None
):
    """Keyset paging: sort by ``key``, start after the token's key, return ``top`` items and
    the token of the next page (None when this is the last page)."""
    items = sorted(items, key=key, reverse=descending)
    if token:
        try:
            after = decode_token(token)
        except ValueError as exc:
            raise bad_request(
                f"The continuation token '{token}' is not valid.",
                "InvalidContinuationTokenException",
            ) from exc
        if not isinstance(after, list):
            raise bad_request(
                f"The continuation token '{token}' is not valid.",
                "InvalidContinuationTokenException",
            )
        try:
            items = [i for i in items if (key(i) < after if descending else key(i) > after)]
        except TypeError as exc:
            raise bad_request(
                f"The continuation token '{token}' is not valid.",
                "InvalidContinuationTokenException",
            ) from exc
    limit = top or default_top
    if limit is None or len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, encode_token(key(items[limit - 1]))
