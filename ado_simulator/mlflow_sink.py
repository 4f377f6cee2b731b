"""The optional MLflow target: a succeeded live training run registers a model version.

A real training pipeline ends by logging an MLflow run (metrics, params) and registering the
trained model; the simulator does the same through MLflow's REST API (``/api/2.0/mlflow/``,
standard library only), so a portal watching that MLflow sees a new challenger version after a
training run it queued. The metrics are pseudo-random but deterministic (derived from the model
and the run id), near the previous version's when that version's run can be read; the
``simulateMetrics`` template parameter (a JSON object, or its text) overrides them, so a test or
a demo can force a better or worse challenger.

Registration runs in a background thread, outside the simulator's lock: a slow or down MLflow
never blocks the API. A failure is logged (and kept in ``log_entries()``), nothing else.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .util import log

API = "/api/2.0/mlflow"
# A first version's metrics: plausible values around which the generated ones vary.
DEFAULT_METRICS = {"auc": 0.86, "f1": 0.78, "precision": 0.81, "recall": 0.76, "rmse": 0.34}
# Largest move (up or down) of a generated metric from the previous version's value.
METRIC_SPREAD = 0.03
UNBOUNDED_METRICS = {"rmse", "mae", "mse", "loss", "log_loss"}  # errors: not capped at 1


@dataclass
class Registration:
    """One training run to register, captured under the simulator's lock (no live objects)."""

    build_id: int
    run_name: str
    pipeline_id: int
    pipeline: str
    model: str
    reason: str
    source_branch: str
    source_version: str
    template_parameters: dict
    start_ms: int
    end_ms: int
    status: str = "pending"  # pending | registered | failed
    experiment_id: str | None = None
    run_id: str | None = None
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "buildId": self.build_id,
            "pipeline": self.pipeline,
            "model": self.model,
            "status": self.status,
            "experimentId": self.experiment_id,
            "runId": self.run_id,
            "version": self.version,
            "metrics": dict(self.metrics),
            "error": self.error,
        }


class MlflowError(RuntimeError):
    def __init__(self, status: int | None, code: str, message: str):
        super().__init__(f"{status or 'no answer'} {code}: {message}".strip())
        self.status = status
        self.code = code


class MlflowSink:
    """Registers model versions in the MLflow at ``tracking_uri``, one at a time in its thread."""

    def __init__(self, tracking_uri: str, *, timeout: float = 10.0):
        self.tracking_uri = tracking_uri.rstrip("/")
        self.timeout = timeout
        self._queue: queue.Queue[Registration | None] = queue.Queue()
        self._log: list[Registration] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    # --- producer side (called under the simulator's lock: it only queues) -------------------

    def submit(self, registration: Registration) -> None:
        with self._lock:
            self._log.append(registration)
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="ado-simulator-mlflow", daemon=True
                )
                self._thread.start()
        self._queue.put(registration)

    # --- inspection --------------------------------------------------------------------------

    def log_entries(self) -> list[Registration]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every queued registration has been tried; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=self.timeout * 8 + 1)
        self._thread = None

    # --- worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            registration = self._queue.get()
            if registration is None:
                return
            try:
                self.register(registration)
            except Exception as exc:  # never let one registration end the worker
                registration.status, registration.error = "failed", repr(exc)
                log("MLflow registration of build %s failed: %r", registration.build_id, exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def register(self, reg: Registration) -> None:
        """Log the training run in MLflow and register its model as a new version."""
        try:
            reg.metrics = self._metrics(reg)
            reg.experiment_id = self._experiment(f"/Shared/{reg.model}-training")
            reg.run_id = self._run(reg)
            self._registered_model(reg.model)
            answer = self._call(
                "POST",
                "/model-versions/create",
                {
                    "name": reg.model,
                    "source": f"runs:/{reg.run_id}/model",
                    "run_id": reg.run_id,
                    "tags": _tags(_version_tags(reg)),
                    "description": (
                        f"Trained by the ADO simulator's run {reg.build_id} ({reg.run_name}) of "
                        f"pipeline {reg.pipeline} (simulated, not a real training)."
                    ),
                },
            )
            reg.version = str(answer["model_version"]["version"])
        except (MlflowError, KeyError, TypeError, ValueError) as exc:
            reg.status, reg.error = "failed", str(exc)
            log(
                "could not register a version of %r in MLflow %s for training run %s: %s",
                reg.model,
                self.tracking_uri,
                reg.build_id,
                exc,
            )
            return
        reg.status = "registered"
        log(
            "training run %s of pipeline %r registered %s version %s in MLflow %s (run %s)",
            reg.build_id,
            reg.pipeline,
            reg.model,
            reg.version,
            self.tracking_uri,
            reg.run_id,
        )

    # --- the steps ---------------------------------------------------------------------------

    def _experiment(self, name: str) -> str:
        try:
            answer = self._call("GET", "/experiments/get-by-name", query={"experiment_name": name})
            return str(answer["experiment"]["experiment_id"])
        except MlflowError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return str(self._call("POST", "/experiments/create", {"name": name})["experiment_id"])
        except MlflowError as exc:  # created meanwhile by someone else
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
            answer = self._call("GET", "/experiments/get-by-name", query={"experiment_name": name})
            return str(answer["experiment"]["experiment_id"])

    def _run(self, reg: Registration) -> str:
        answer = self._call(
            "POST",
            "/runs/create",
            {
                "experiment_id": reg.experiment_id,
                "run_name": f"{reg.pipeline} #{reg.build_id} ({reg.run_name})",
                "start_time": reg.start_ms,
                "tags": _tags(_run_tags(reg)),
            },
        )
        run_id = answer["run"]["info"]["run_id"]
        self._call(
            "POST",
            "/runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": k, "value": v, "timestamp": reg.end_ms, "step": 0}
                    for k, v in sorted(reg.metrics.items())
                ],
                "params": [{"key": k, "value": v} for k, v in sorted(_params(reg).items())],
            },
        )
        self._call(
            "POST", "/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": reg.end_ms}
        )
        return run_id

    def _registered_model(self, name: str) -> None:
        try:
            self._call("POST", "/registered-models/create", {"name": name})
        except MlflowError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _previous_metrics(self, model: str) -> dict[str, float]:
        """The metrics of the run behind the model's latest version; empty if none is readable
        (no such model, no version, a version without a run)."""
        try:
            answer = self._call(
                "GET",
                "/model-versions/search",
                query={
                    "filter": f"name='{model.replace(chr(39), chr(39) * 2)}'",
                    "order_by": "version_number DESC",
                    "max_results": "1",
                },
            )
            versions = answer.get("model_versions") or []
            run_id = versions[0].get("run_id") if versions else None
            if not run_id:
                return {}
            run = self._call("GET", "/runs/get", query={"run_id": run_id})["run"]
        except MlflowError as exc:
            if exc.status is None:
                raise  # MLflow is not reachable: the registration fails anyway
            return {}
        metrics = (run.get("data") or {}).get("metrics") or []
        return {m["key"]: float(m["value"]) for m in metrics if "key" in m and "value" in m}

    def _metrics(self, reg: Registration) -> dict[str, float]:
        forced = simulated_metrics(reg.template_parameters.get("simulateMetrics"))
        base = self._previous_metrics(reg.model) or DEFAULT_METRICS
        generated = generate_metrics(reg.model, reg.build_id, base)
        return {**generated, **forced}

    # --- HTTP --------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict | None = None, query: dict | None = None
    ) -> dict:
        url = f"{self.tracking_uri}{API}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the configured MLflow's http(s) URL
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "User-Agent": "ADO-simulator"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                error = json.loads(text)
            except ValueError:
                error = {}
            raise MlflowError(
                exc.code,
                str(error.get("error_code") or "HTTP_ERROR"),
                str(error.get("message") or text[:300]),
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise MlflowError(None, "UNREACHABLE", str(getattr(exc, "reason", exc))) from exc


def generate_metrics(model: str, build_id: int, base: dict[str, float]) -> dict[str, float]:
    """Each metric of ``base`` moved by up to ``METRIC_SPREAD`` (scores stay within 0..1); the
    same model and run id always give the same values."""
    metrics = {}
    for key, value in sorted(base.items()):
        digest = hashlib.sha256(f"{model}:{build_id}:{key}".encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64  # 0 <= unit < 1
        moved = value + (2 * unit - 1) * METRIC_SPREAD
        if key.lower() in UNBOUNDED_METRICS:
            moved = max(moved, 0.0)
        elif 0.0 <= value <= 1.0:
            moved = min(max(moved, 0.0), 1.0)
        metrics[key] = round(moved, 4)
    return metrics


def simulated_metrics(value: object) -> dict[str, float]:
    """The ``simulateMetrics`` template parameter: a JSON object metric -> number, or its text
    (ADO passes template parameters as text). Anything else is logged and ignored."""
    if value in (None, ""):
        return {}
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
    if not isinstance(parsed, dict):
        log("ignored simulateMetrics %r: not a JSON object of metric -> number", value)
        return {}
    metrics = {}
    for key, number in parsed.items():
        try:
            metrics[str(key)] = float(number)
        except (TypeError, ValueError):
            log("ignored simulateMetrics %r: %r is not a number", key, number)
    return metrics


def registration_for(run) -> Registration | None:
    """What a completed training run registers: None if it names no model."""
    params = dict(run.template_parameters or {})
    model = str(params.get("modelName") or run.pipeline.model or "").strip()
    if not model:
        log(
            "training run %s of pipeline %r names no model (no modelName parameter, no model "
            "on the pipeline): nothing registered in MLflow",
            run.id,
            run.pipeline.name,
        )
        return None
    return Registration(
        build_id=run.id,
        run_name=run.name,
        pipeline_id=run.pipeline.id,
        pipeline=run.pipeline.name,
        model=model,
        reason=run.reason,
        source_branch=run.source_branch,
        source_version=run.source_version,
        template_parameters=params,
        start_ms=_ms(run.start_time or run.queue_time),
        end_ms=_ms(run.finish_time or run.start_time or run.queue_time),
    )


def _ms(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp() * 1000)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _run_tags(reg: Registration) -> dict[str, str]:
    params = reg.template_parameters
    tags = {
        "ado.build_id": str(reg.build_id),
        "ado.run_name": reg.run_name,
        "ado.pipeline": reg.pipeline,
        "ado.pipeline_id": str(reg.pipeline_id),
        "ado.trigger": _text(params.get("trigger") or reg.reason),
        "ado.source_branch": reg.source_branch,
        "mlflow.source.git.commit": reg.source_version,
        "ado.simulator": "true",
    }
    for param, tag in (
        ("signalId", "portal.signal_id"),
        ("signalKind", "portal.signal_kind"),
        ("portalRequestId", "portal.request_id"),
    ):
        if params.get(param) not in (None, ""):
            tags[tag] = _text(params[param])
    return tags


def _version_tags(reg: Registration) -> dict[str, str]:
    keep = ("ado.build_id", "ado.pipeline", "ado.trigger", "portal.signal_id", "portal.signal_kind")
    return {k: v for k, v in _run_tags(reg).items() if k in keep or k == "portal.request_id"}


def _params(reg: Registration) -> dict[str, str]:
    params = {k: _text(v)[:6000] for k, v in reg.template_parameters.items()}
    params.setdefault("modelName", reg.model)
    params["ado.pipeline"] = reg.pipeline
    return params


def _tags(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(values.items())]
