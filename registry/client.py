"""The one module that speaks to MLflow: a thin wrapper of MlflowClient for one source.

It returns plain dataclasses, so the sync never touches MLflow entities, and it turns every
MLflow or transport failure into RegistryUnavailable (or RegistryModelNotFound), so a source
that is down is an error to record, not a crash. The URIs are configuration: an `mlflow server`,
a Databricks workspace registry (`databricks`) or Unity Catalog (`databricks-uc`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from core.errors import PortalError

# MLflow's HTTP client retries 7 times with a backoff factor of 2 by default: minutes before a
# down source is reported. Keep it shorter unless the operator set these explicitly.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

MODELS_PAGE_SIZE = 1000  # the most search_registered_models accepts
VERSIONS_PAGE_SIZE = 10_000  # the most Databricks accepts (OSS allows 200,000)
RUN_IDS_PER_SEARCH = 100
NAMES_PER_VERSION_SEARCH = 50


class RegistryError(PortalError):
    """Anything that went wrong talking to a registry (the sync records it as its error;
    a view that let it through would answer 502 with the message)."""

    code = "registry_unavailable"
    http_status = 502


class RegistryUnavailable(RegistryError):
    """The registry could not be read (down, refused, timed out, or answered an error)."""


class RegistryModelNotFound(RegistryError):
    """The registry says the model does not exist (deleted or renamed upstream)."""


@dataclass(frozen=True)
class UpstreamModel:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    created_ms: int | None
    updated_ms: int | None


@dataclass(frozen=True)
class UpstreamVersion:
    model_name: str
    version: int
    description: str
    status: str
    status_message: str
    stage: str
    user_id: str
    source_uri: str
    run_id: str
    run_link: str
    tags: dict[str, str]
    created_ms: int | None
    updated_ms: int | None


@dataclass(frozen=True)
class UpstreamRun:
    run_id: str
    experiment_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _ms(value) -> int | None:
    return int(value) if value else None


def _model(entity) -> UpstreamModel:
    return UpstreamModel(
        name=entity.name,
        description=entity.description or "",
        tags=dict(entity.tags or {}),
        aliases={alias: int(version) for alias, version in (entity.aliases or {}).items()},
        created_ms=_ms(entity.creation_timestamp),
        updated_ms=_ms(entity.last_updated_timestamp),
    )


def _version(entity) -> UpstreamVersion:
    stage = entity.current_stage or ""
    return UpstreamVersion(
        model_name=entity.name,
        version=int(entity.version),
        description=entity.description or "",
        status=entity.status or "",
        status_message=entity.status_message or "",
        stage="" if stage == "None" else stage,
        user_id=entity.user_id or "",
        source_uri=entity.source or "",
        run_id=entity.run_id or "",
        run_link=entity.run_link or "",
        tags=dict(entity.tags or {}),
        created_ms=_ms(entity.creation_timestamp),
        updated_ms=_ms(entity.last_updated_timestamp),
    )


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RegistryClient:
    """Reads one registry. Construct with ``for_source`` or with the URIs directly."""

    def __init__(self, tracking_uri: str, registry_uri: str = "", unity_catalog: bool = False):
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.unity_catalog = unity_catalog
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or None)
        self._experiment_ids: list[str] | None = None

    @classmethod
    def for_source(cls, source) -> RegistryClient:
        return cls(source.tracking_uri, source.registry_uri, source.is_unity_catalog)

    def _call(self, fn: Callable, *args, **kwargs):
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryModelNotFound(exc.message) from exc
            raise RegistryUnavailable(f"{exc.error_code}: {exc.message}"[:500]) from exc
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            raise RegistryUnavailable(f"{type(exc).__name__}: {exc}"[:500]) from exc

    def _pages(self, fn: Callable, **kwargs) -> Iterator:
        token = None
        while True:
            page = self._call(fn, page_token=token, **kwargs)
            yield page
            token = page.token
            if not token:
                return

    def check(self, *, timeout: float = 5.0) -> float:
        """One cheap authenticated read of the registry, not retried, within ``timeout``
        seconds (the admin's "Test connection"); returns how long the registry took to answer
        (seconds), raises RegistryUnavailable with the reason."""
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        area = "unity-catalog/" if self.unity_catalog else ""
        endpoint = f"/api/2.0/mlflow/{area}registered-models/search"

        def search_one() -> float:
            store = self._client._get_registry_client().store
            started = time.monotonic()
            response = http_request(
                store.get_host_creds(),
                endpoint,
                "GET",
                max_retries=0,
                timeout=timeout,
                params={"max_results": 1},
            )
            verify_rest_response(response, endpoint)
            return time.monotonic() - started

        return self._call(search_one)

    # Registered models ------------------------------------------------------------------

    def iter_models(self) -> Iterator[UpstreamModel]:
        """Every registered model (prompts excluded by MLflow), in pages of 1,000."""
        for page in self._pages(
            self._client.search_registered_models, max_results=MODELS_PAGE_SIZE
        ):
            yield from (_model(entity) for entity in page)

    def models_updated_after(self, cursor_ms: int, page_size: int = 100) -> list[UpstreamModel]:
        """Models whose last update is newer than the cursor, newest first.

        MLflow cannot filter on timestamps, so read by last update descending and stop at the
        first model at or below the cursor (small pages: usually nothing changed).
        """
        if self.unity_catalog:  # UC rejects order_by: read everything, keep the newer ones
            return [m for m in self.iter_models() if (m.updated_ms or 0) > cursor_ms]
        changed: list[UpstreamModel] = []
        for page in self._pages(
            self._client.search_registered_models,
            max_results=page_size,
            order_by=["last_updated_timestamp DESC"],
        ):
            for entity in page:
                model = _model(entity)
                if (model.updated_ms or 0) <= cursor_ms:
                    return changed
                changed.append(model)
            page_size = MODELS_PAGE_SIZE
        return changed

    def get_model(self, name: str) -> UpstreamModel:
        return _model(self._call(self._client.get_registered_model, name))

    # Versions ---------------------------------------------------------------------------

    def iter_all_versions(self, model_names: Iterable[str]) -> Iterator[UpstreamVersion]:
        """Every version in the registry (one paged search; per model on Unity Catalog)."""
        if self.unity_catalog:
            for name in model_names:
                yield from self.versions_of([name])
            return
        for page in self._pages(self._client.search_model_versions, max_results=VERSIONS_PAGE_SIZE):
            yield from (_version(entity) for entity in page)

    def versions_of(self, names: list[str]) -> list[UpstreamVersion]:
        """The versions of the named models (batched `name IN (...)` where supported)."""
        versions: list[UpstreamVersion] = []
        step = 1 if self.unity_catalog else NAMES_PER_VERSION_SEARCH
        for start in range(0, len(names), step):
            chunk = names[start : start + step]
            if len(chunk) == 1:
                filter_string = f"name = {_quote(chunk[0])}"
            else:
                filter_string = f"name IN ({', '.join(_quote(n) for n in chunk)})"
            for page in self._pages(
                self._client.search_model_versions,
                filter_string=filter_string,
                max_results=VERSIONS_PAGE_SIZE,
            ):
                versions.extend(_version(entity) for entity in page)
        return versions

    # Source runs ------------------------------------------------------------------------

    def runs(self, run_ids: Iterable[str]) -> tuple[dict[str, UpstreamRun], dict[str, str]]:
        """Read source runs in batches; return (runs by id, error by id for the unreadable)."""
        wanted = sorted({r for r in run_ids if r})
        found: dict[str, UpstreamRun] = {}
        errors: dict[str, str] = {}
        if not wanted:
            return found, errors
        try:
            experiment_ids = self._all_experiment_ids()
        except RegistryUnavailable:
            experiment_ids = []
        if experiment_ids:
            for start in range(0, len(wanted), RUN_IDS_PER_SEARCH):
                chunk = wanted[start : start + RUN_IDS_PER_SEARCH]
                filter_string = f"attributes.run_id IN ({', '.join(_quote(r) for r in chunk)})"
                for page in self._pages(
                    self._client.search_runs,
                    experiment_ids=experiment_ids,
                    filter_string=filter_string,
                    max_results=len(chunk),
                    run_view_type=3,  # ViewType.ALL: a deleted run still describes its version
                ):
                    for run in page:
                        found[run.info.run_id] = self._run(run)
        for run_id in wanted:  # not found by search (another workspace?): ask one by one
            if run_id in found:
                continue
            try:
                found[run_id] = self._run(self._call(self._client.get_run, run_id))
            except RegistryError as exc:
                errors[run_id] = str(exc)[:500]
        return found, errors

    def _all_experiment_ids(self) -> list[str]:
        if self._experiment_ids is None:
            ids: list[str] = []
            for page in self._pages(self._client.search_experiments, view_type=3, max_results=1000):
                ids.extend(e.experiment_id for e in page)
            self._experiment_ids = ids
        return self._experiment_ids

    @staticmethod
    def _run(run) -> UpstreamRun:
        return UpstreamRun(
            run_id=run.info.run_id,
            experiment_id=str(run.info.experiment_id or ""),
            metrics={k: float(v) for k, v in (run.data.metrics or {}).items()},
            params=dict(run.data.params or {}),
            tags={
                k: v
                for k, v in (run.data.tags or {}).items()
                if not k.startswith("mlflow.log-model")
            },
        )

    # Webhooks (OSS MLflow 3.3+ only) ----------------------------------------------------

    def webhooks_named(self, name: str) -> list:
        """Every webhook called ``name`` (MLflow does not make names unique)."""
        found = []
        for page in self._pages(self._client.list_webhooks, max_results=1000):
            found += [webhook for webhook in page if webhook.name == name]
        return found

    def webhook_create(self, *, name: str, **fields):
        return self._call(self._client.create_webhook, name=name, **fields)

    def webhook_update(self, webhook_id: str, **fields):
        return self._call(self._client.update_webhook, webhook_id, **fields)

    def webhook_test(self, webhook_id: str):
        return self._call(self._client.test_webhook, webhook_id)
