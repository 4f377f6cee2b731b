"""Comparing 2 to 4 versions of a catalog entry: the references people and API callers write,
the versions they resolve to, and the metric and param rows with deltas and the best marked,
then what each version is (description, source run) and its version and run tags."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from django.conf import settings

from core.errors import PortalError

from ..models import CatalogModel, ModelVersion

COMPARE_MIN, COMPARE_MAX = 2, 4


class CompareError(PortalError, ValueError):
    """Bad input to a comparison; the message is shown to the user as is.

    ``api_hint`` says how to write the request, for API callers only: a person on the page
    picks versions with checkboxes and never sees the query format (so both the page, which
    offers the versions again, and the API, which adds the hint, answer it themselves)."""

    code = "bad_request"
    http_status = 400

    def __init__(self, message: str, *, api_hint: str = ""):
        super().__init__(message)
        self.api_hint = api_hint


@dataclass(frozen=True)
class VersionRef:
    """``source:version`` or ``source:registered-model-name:version`` (names have no ':')."""

    source: str
    version: int
    name: str | None = None

    def __str__(self) -> str:
        if self.name is None:
            return f"{self.source}:{self.version}"
        return f"{self.source}:{self.name}:{self.version}"


def version_refs_parse(values: list[str]) -> list[VersionRef]:
    """Parse the ``v`` parameters of a comparison; raise CompareError with a clear message."""
    values = [v.strip() for v in values if v and v.strip()]
    if len(values) < COMPARE_MIN:
        raise CompareError(
            f"Pick at least {COMPARE_MIN} versions to compare ({len(values)} picked).",
            api_hint="pass them as v=source:version.",
        )
    if len(values) > COMPARE_MAX:
        raise CompareError(f"Compare at most {COMPARE_MAX} versions at a time (got {len(values)}).")
    refs = []
    for raw in values:
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[-1].isdigit():
            raise CompareError(
                f"“{raw}” is not a version reference: use source:version, e.g. central:3."
            )
        name = parts[1] if len(parts) == 3 else None
        refs.append(VersionRef(parts[0], int(parts[-1]), name))
    if len(set(refs)) != len(refs):
        raise CompareError("The same version is listed twice; pick different versions.")
    return refs


def compare_versions_resolve(
    *, catalog_model: CatalogModel, refs: list[VersionRef]
) -> list[ModelVersion]:
    """Find each referenced version among the catalog entry's registered models, in order."""
    candidates = list(
        ModelVersion.objects.select_related("registered_model__source").filter(
            registered_model__catalog_model=catalog_model,
            registered_model__source__name__in={r.source for r in refs},
            version__in={r.version for r in refs},
        )
    )
    found = []
    for ref in refs:
        matches = [
            v
            for v in candidates
            if v.registered_model.source.name == ref.source
            and v.version == ref.version
            and (ref.name is None or v.registered_model.name == ref.name)
        ]
        if not matches:
            raise CompareError(f"{catalog_model.name} has no version {ref} (source:version).")
        if len(matches) > 1:
            names = ", ".join(sorted(m.registered_model.name for m in matches))
            raise CompareError(
                f"{ref} is ambiguous: {ref.source} holds several models of {catalog_model.name} "
                f"({names}); use source:model-name:version."
            )
        found.append(matches[0])
    if len({v.pk for v in found}) != len(found):
        raise CompareError("The same version is listed twice; pick different versions.")
    return found


def version_ref(version: ModelVersion, *, with_name: bool = False) -> str:
    rm = version.registered_model
    if with_name:
        return str(VersionRef(rm.source.name, version.version, rm.name))
    return str(VersionRef(rm.source.name, version.version))


def lower_is_better(metric: str) -> bool:
    """True when the metric name starts with or contains a REGISTRY_LOWER_IS_BETTER entry."""
    name = metric.lower()
    return any(
        name.startswith(p.lower()) or p.lower() in name
        for p in settings.REGISTRY_LOWER_IS_BETTER
        if p
    )


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return float(value)


@dataclass(frozen=True)
class MetricCell:
    value: object  # the stored value (a number, normally), None when the version lacks it
    delta: float | None  # value - first column's value, when both are numbers
    is_best: bool
    better: bool | None  # compared with the first column: True better, False worse, None same


@dataclass(frozen=True)
class MetricRow:
    name: str
    lower_is_better: bool
    cells: tuple[MetricCell, ...]


@dataclass(frozen=True)
class ParamRow:
    name: str
    values: tuple[object, ...]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    versions: tuple[ModelVersion, ...]
    metrics: tuple[MetricRow, ...]
    params: tuple[ParamRow, ...]
    # About each version: description and source run (the run's name, else its id).
    about: tuple[ParamRow, ...] = ()
    tags: tuple[ParamRow, ...] = ()  # the versions' tags
    run_tags: tuple[ParamRow, ...] = ()  # their source runs' tags (MLflow's own last)


def _rows(versions: list[ModelVersion], attribute: str, *, system_last: bool = False):
    """One row per key of the versions' ``attribute`` dicts, differing rows marked."""
    names = {n for v in versions for n in (getattr(v, attribute) or {})}
    ordered = sorted(names, key=lambda n: (system_last and n.startswith("mlflow."), n))
    rows = []
    for name in ordered:
        values = tuple((getattr(v, attribute) or {}).get(name) for v in versions)
        rows.append(ParamRow(name, values, len({json.dumps(x) for x in values}) > 1))
    return tuple(rows)


def _run_name(version: ModelVersion) -> str:
    run_tags = version.run_tags if isinstance(version.run_tags, dict) else {}
    name = str(run_tags.get("mlflow.runName") or "")
    if name and version.run_id:
        return f"{name} ({version.run_id[:8]})"
    return name or version.run_id or ""


def _about(versions: list[ModelVersion]) -> tuple[ParamRow, ...]:
    rows = []
    for label, values in (
        ("description", tuple(v.description or None for v in versions)),
        ("source run", tuple(_run_name(v) or None for v in versions)),
    ):
        rows.append(ParamRow(label, values, len(set(values)) > 1))
    return tuple(rows)


def version_comparison(versions: list[ModelVersion]) -> Comparison:
    """Metrics (with deltas against the first version and the best marked), then params."""
    metric_names = sorted({n for v in versions for n in (v.metrics or {})})
    metric_rows = []
    for name in metric_names:
        lower = lower_is_better(name)
        values = [(v.metrics or {}).get(name) for v in versions]
        numbers = [_number(x) for x in values]
        present = [n for n in numbers if n is not None]
        best = None
        if len(present) >= 2 and len(set(present)) > 1:
            best = min(present) if lower else max(present)
        base = numbers[0]
        cells = []
        for i, (value, number) in enumerate(zip(values, numbers, strict=True)):
            delta = better = None
            if i > 0 and base is not None and number is not None:
                delta = number - base
                if delta != 0:
                    better = (delta < 0) if lower else (delta > 0)
            cells.append(MetricCell(value, delta, best is not None and number == best, better))
        metric_rows.append(MetricRow(name, lower, tuple(cells)))
    return Comparison(
        tuple(versions),
        tuple(metric_rows),
        _rows(versions, "params"),
        about=_about(versions),
        tags=_rows(versions, "tags", system_last=True),
        run_tags=_rows(versions, "run_tags", system_last=True),
    )
