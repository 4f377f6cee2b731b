"""Evidently reports posted by a monitoring job, current (``Report(...).run(...).dict()``:
``metrics`` with ``metric_name``/``value``, ``tests`` with ``status``) or legacy
(``as_dict()``/``json()``: ``metrics`` with ``metric``/``result``, ``json()`` adds
``version`` and ``timestamp``; a legacy test suite's ``tests``).

The model is named by a wrapper ``{"model": "...", "report": {...}}`` (which may also give
``drift_share``, ``id``, ``observed_at``, ``tags``) or the query ``?model=``. Drift is: the
dataset drift flag, or a drifted share of columns at or above the threshold (the wrapper's
``drift_share``, else the report's own, else 0.5), or any failed test. A clean report is no
signal, but it is monitoring heard from (``ParseResult.heartbeat_model``).
"""

from __future__ import annotations

import re

from django.utils import timezone

from ..models import Severity, SignalFormat, SignalKind
from ._common import content_hash, dedupe_key, load_json, need_object, parse_time, text_tags
from .base import NormalisedSignal, ParseResult, PayloadError

DEFAULT_DRIFT_SHARE = 0.5
_PARAM = re.compile(r"(\w+)=([^,()]*)")


def parse(body: bytes, *, content_type: str = "", headers=None, query=None) -> ParseResult:
    doc = need_object(load_json(body), "The body")
    query = query or {}
    if isinstance(doc.get("report"), dict):
        wrapper, report = doc, doc["report"]
    elif "report" in doc:
        raise PayloadError("report must be the Evidently report as a JSON object.")
    else:
        wrapper, report = {}, doc
    model = wrapper.get("model") or query.get("model") or ""
    if not isinstance(model, str):
        raise PayloadError("model must be the model's name (a string).")
    model = model.strip()
    threshold = _number(wrapper.get("drift_share"), "drift_share")
    metrics = report.get("metrics")
    if isinstance(metrics, dict):  # keyed by metric id
        metrics = list(metrics.values())
    if metrics is None and "tests" not in report:
        raise PayloadError(
            "This is not an Evidently report: no metrics and no tests (post report.dict(), or "
            "the legacy as_dict()/json())."
        )
    if metrics is not None and not isinstance(metrics, list):
        raise PayloadError("metrics must be an array.")
    tests = report.get("tests") or []
    if not isinstance(tests, list):
        raise PayloadError("tests must be an array.")

    findings = _Findings(threshold)
    for i, metric in enumerate(metrics or []):
        if not isinstance(metric, dict):
            raise PayloadError(f"metrics[{i}] must be an object.")
        if "metric_name" in metric:
            findings.current_metric(metric)
        elif "metric" in metric:
            findings.legacy_metric(metric, i)
    for i, test in enumerate(tests):
        if not isinstance(test, dict):
            raise PayloadError(f"tests[{i}] must be an object.")
        findings.test(test)
    if not findings.seen:
        raise PayloadError(
            "The report has no drift metric and no test the portal reads (DriftedColumnsCount, "
            "ValueDrift, DatasetDriftMetric, DataDriftTable or tests with a status)."
        )

    observed_raw = wrapper.get("observed_at") or report.get("timestamp")
    if observed_raw:
        where = "observed_at" if wrapper.get("observed_at") else "timestamp"
        observed_at = parse_time(observed_raw, where)
    else:
        observed_at = timezone.now()
    summary = findings.summary()
    if not findings.drifted:
        return ParseResult(
            ignored=f"no drift: {summary}",
            format=SignalFormat.EVIDENTLY,
            heartbeat_model=model,
        )
    report_id = wrapper.get("id")
    key = (
        dedupe_key("evidently", report_id)
        if report_id
        else dedupe_key("evidently", model, content_hash(report))
    )
    attributes = {"tags": text_tags(wrapper.get("tags"), "tags")}
    if model:
        attributes["model"] = model
    return ParseResult(
        signals=[
            NormalisedSignal(
                kind=SignalKind.DRIFT,
                severity=Severity.WARNING,
                observed_at=observed_at,
                dedupe_key=key,
                title=f"Evidently: drift ({summary})"[:500],
                source_ref=f"Evidently report {report.get('version') or ''}".strip(),
                attributes=attributes,
                details=findings.details(report),
            )
        ],
        format=SignalFormat.EVIDENTLY,
    )


class _Findings:
    def __init__(self, threshold: float | None):
        self.threshold = threshold
        self.share: float | None = None
        self.report_threshold: float | None = None
        self.dataset_drift: bool | None = None
        self.drifted_columns: list[str] = []
        self.failed_tests: list[dict] = []
        self.tests_total = 0
        self.seen = False

    def current_metric(self, metric: dict) -> None:
        name = str(metric.get("metric_name") or "")
        params = dict(_PARAM.findall(name))
        value = metric.get("value")
        if name.startswith("DriftedColumnsCount"):
            self.seen = True
            if isinstance(value, dict) and isinstance(value.get("share"), int | float):
                self.share = float(value["share"])
            if params.get("drift_share"):
                self.report_threshold = _float(params["drift_share"])
        elif name.startswith("ValueDrift"):
            self.seen = True
            column = params.get("column", "")
            limit = _float(params.get("threshold", ""))
            if column and isinstance(value, int | float) and limit is not None:
                # A p-value drifts below the threshold; a distance at or above it.
                p_value = "p_value" in params.get("method", "").replace(" ", "_").lower()
                if (value < limit) if p_value else (value >= limit):
                    self.drifted_columns.append(column)

    def legacy_metric(self, metric: dict, i: int) -> None:
        name = metric.get("metric")
        result = metric.get("result")
        if name not in ("DatasetDriftMetric", "DataDriftTable"):
            return
        if not isinstance(result, dict):
            raise PayloadError(f"metrics[{i}].result must be an object.")
        self.seen = True
        if isinstance(result.get("dataset_drift"), bool):
            self.dataset_drift = bool(self.dataset_drift) or result["dataset_drift"]
        if isinstance(result.get("share_of_drifted_columns"), int | float):
            self.share = float(result["share_of_drifted_columns"])
        if isinstance(result.get("drift_share"), int | float):
            self.report_threshold = float(result["drift_share"])
        for column, facts in (result.get("drift_by_columns") or {}).items():
            detected = isinstance(facts, dict) and facts.get("drift_detected") is True
            if detected and column not in self.drifted_columns:
                self.drifted_columns.append(str(column))

    def test(self, test: dict) -> None:
        status = str(test.get("status") or "").upper()
        if not status:
            return
        self.seen = True
        self.tests_total += 1
        if status == "FAIL":
            self.failed_tests.append(
                {"name": test.get("name", ""), "description": test.get("description", "")}
            )

    @property
    def limit(self) -> float:
        for value in (self.threshold, self.report_threshold):
            if value is not None:
                return value
        return DEFAULT_DRIFT_SHARE

    @property
    def drifted(self) -> bool:
        share_over = self.share is not None and self.share >= self.limit
        return bool(self.dataset_drift) or share_over or bool(self.failed_tests)

    def summary(self) -> str:
        parts = []
        if self.share is not None:
            parts.append(f"{self.share:.0%} of columns drifted (threshold {self.limit:.0%})")
        if self.drifted_columns:
            parts.append("drifted: " + ", ".join(self.drifted_columns[:10]))
        if self.tests_total:
            parts.append(f"{len(self.failed_tests)} of {self.tests_total} tests failed")
        if self.dataset_drift:
            parts.append("dataset drift detected")
        return "; ".join(parts) or "no failed test"

    def details(self, report: dict) -> dict:
        return {
            "drift_share": self.share,
            "threshold": self.limit,
            "dataset_drift": self.dataset_drift,
            "drifted_columns": self.drifted_columns,
            "failed_tests": self.failed_tests[:50],
            "tests_total": self.tests_total,
            "evidently_version": report.get("version", ""),
            "report_timestamp": report.get("timestamp", ""),
        }


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _number(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise PayloadError(f"{where} must be a number between 0 and 1, not {value!r}.")
    return float(value)
