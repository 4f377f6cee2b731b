"""The signal payloads the portal reads: one parser per endpoint, each
``parse(body, *, content_type, headers, query) -> ParseResult`` (or ``PayloadError``)."""

from . import azure_monitor, databricks, event_grid, evidently, generic
from .base import NormalisedSignal, ParseResult, PayloadError

PARSERS = {
    "azure-monitor": azure_monitor.parse,
    "event-grid": event_grid.parse,
    "databricks": databricks.parse,
    "evidently": evidently.parse,
    "generic": generic.parse,
}

__all__ = ["PARSERS", "NormalisedSignal", "ParseResult", "PayloadError"]
