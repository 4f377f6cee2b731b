"""Streamed CSV downloads that a spreadsheet opens safely (the audit trail, the maturity
portfolio): cells that would start a formula are quoted, times are UTC ISO 8601."""

from __future__ import annotations

import csv
from collections.abc import Iterable

from django.http import StreamingHttpResponse
from django.utils import timezone


class _Echo:
    """A file-like object whose write returns the line, for streaming a CSV."""

    def write(self, value):
        return value


def csv_cell(value) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_response(name: str, header: list[str], rows: Iterable[list]) -> StreamingHttpResponse:
    """Stream ``header`` then ``rows`` as ``<name>-<UTC stamp>.csv``."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
