"""The model catalog and the mirror of one or more MLflow registries."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse

from core.models import EnvironmentDeclared, SyncBookkeeping


class ModelKind(models.TextChoices):
    ML = "ml", "ML model"
    RULE_BASED = "rule_based", "Rule-based model"
    UNKNOWN = "unknown", "Unknown"


class Serving(models.TextChoices):
    BATCH = "batch", "Batch"
    REAL_TIME = "real_time", "Real-time"
    UNKNOWN = "unknown", "Unknown"


DATABRICKS_SCHEMES = ("databricks", "databricks-uc")


def _http_uri_problem(value: str) -> str:
    parts = urlsplit(value)
    if not parts.hostname or any(c.isspace() for c in value):
        return f"“{value}” needs a host, e.g. https://mlflow.example.com or http://mlflow:5000."
    return ""


def mlflow_uri_problem(value: str, *, registry: bool) -> str:
    """Why MLflow's client cannot use ``value`` as a tracking (or registry) URI; "" if it can.

    What mlflow-skinny's client accepts (mlflow/tracking/_tracking_service/utils.py and
    _model_registry/utils.py): http(s) servers, ``databricks[://profile]``, and for the
    registry also ``databricks-uc[://profile]`` and ``uc:http(s)://…``. The file store (a
    bare path) and database URIs need the full mlflow package and a local disk or database,
    so a portal that mirrors over REST refuses them too."""
    head, _, rest = value.partition(":")
    head = head.lower()
    if head in ("http", "https"):
        return _http_uri_problem(value)
    if head in DATABRICKS_SCHEMES:
        if head == "databricks-uc" and not registry:
            return (
                "Unity Catalog is a registry, not a tracking server: put 'databricks' here "
                "and 'databricks-uc' in Registry URI."
            )
        profile = rest[2:] if rest.startswith("//") else None
        if value.lower() == head or (profile and "/" not in profile and " " not in profile):
            return ""
        return f"Write '{head}' or '{head}://profile' (a Databricks CLI profile)."
    if registry and head == "uc" and rest.split(":", 1)[0].lower() in ("http", "https"):
        return _http_uri_problem(rest)
    kind, extra = ("registry", ", 'databricks-uc'") if registry else ("tracking", "")
    return (
        f"“{value}” is not an MLflow {kind} URI: use http(s)://… of an MLflow server, "
        f"'databricks' or 'databricks://profile'{extra}."
    )


class RegistrySource(SyncBookkeeping, EnvironmentDeclared):
    """One MLflow registry the portal mirrors (the central workspace, Data Discovery...)."""

    name = models.SlugField(
        max_length=64, unique=True, help_text="Short name used in URLs and logs."
    )
    tracking_uri = models.CharField(
        max_length=500,
        help_text="http(s)://… of an MLflow server, or 'databricks' / 'databricks://profile'.",
    )
    registry_uri = models.CharField(
        max_length=500,
        blank=True,
        help_text="Only when it differs from the tracking URI, e.g. 'databricks-uc'.",
    )
    ui_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Base URL of the MLflow UI, for links (defaults to the tracking URI).",
    )
    is_central = models.BooleanField(
        default=False, help_text="The organisation's central registry."
    )
    enabled = models.BooleanField(default=True)
    sync_interval_seconds = models.PositiveIntegerField(
        default=300, help_text="Incremental sync every this many seconds (beat schedule)."
    )
    full_sync_interval_seconds = models.PositiveIntegerField(
        default=3600,
        help_text="Full sweep (deletes, renames, alias moves) every this many seconds.",
    )

    # Sync bookkeeping, written only by registry.services: the common columns come from
    # SyncBookkeeping (last_sync_*, the lease); these two are the registry's own.
    cursor_ms = models.BigIntegerField(
        null=True, blank=True, help_text="Highest last_updated_timestamp seen (MLflow ms epoch)."
    )
    last_full_sync_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_central", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """Refuse URIs the MLflow client cannot use (the admin and any form call this)."""
        errors = {}
        if self.tracking_uri and (problem := mlflow_uri_problem(self.tracking_uri, registry=False)):
            errors["tracking_uri"] = problem
        if self.registry_uri and (problem := mlflow_uri_problem(self.registry_uri, registry=True)):
            errors["registry_uri"] = problem
        if errors:
            raise ValidationError(errors)

    @property
    def is_unity_catalog(self) -> bool:
        return (self.registry_uri or self.tracking_uri).startswith("databricks-uc")

    @property
    def ui_base_url(self) -> str:
        base = self.ui_url or (self.tracking_uri if self.tracking_uri.startswith("http") else "")
        return base.rstrip("/")


class CatalogModel(models.Model):
    """A model as the organisation manages it, registered or not.

    Pipelines, approvals and maturity records hang on this entry. The category fields here
    override what the registry tags say; blank means "take it from the registry".
    """

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=ModelKind.choices, blank=True)
    serving = models.CharField(max_length=16, choices=Serving.choices, blank=True)
    team = models.CharField(max_length=100, blank=True)
    owners = models.JSONField(default=list, blank=True, help_text="E-mail addresses or user names.")
    headline_alias = models.CharField(
        max_length=255,
        blank=True,
        help_text="The alias shown as this model's headline version instead of the latest "
        "(blank: the team's choice, else REGISTRY_HEADLINE_ALIAS).",
    )
    # What the registry tags say (written by the sync; see REGISTRY_CATEGORY_TAGS).
    registry_kind = models.CharField(max_length=16, choices=ModelKind.choices, blank=True)
    registry_serving = models.CharField(max_length=16, choices=Serving.choices, blank=True)
    registry_team = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("registry:model-detail", kwargs={"name": self.name})

    @property
    def effective_kind(self) -> str:
        return self.kind or self.registry_kind or ModelKind.UNKNOWN

    @property
    def effective_serving(self) -> str:
        return self.serving or self.registry_serving or Serving.UNKNOWN

    @property
    def effective_team(self) -> str:
        return self.team or self.registry_team


class RegisteredModel(models.Model):
    """A registered model as one source holds it (mirror: written only by the sync)."""

    source = models.ForeignKey(RegistrySource, on_delete=models.PROTECT, related_name="models")
    catalog_model = models.ForeignKey(
        CatalogModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registered_models",
    )
    name = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    aliases = models.JSONField(default=dict, blank=True, help_text="alias -> version number")
    created_upstream_at = models.DateTimeField(null=True, blank=True)
    updated_upstream_at = models.DateTimeField(null=True, blank=True)
    updated_upstream_ms = models.BigIntegerField(null=True, blank=True)

    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    deleted_upstream_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "name"], name="registry_model_unique_per_source"
            )
        ]
        indexes = [
            models.Index(fields=["source", "deleted_upstream_at"]),
            models.Index(fields=["updated_upstream_at"]),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.source.name}:{self.name}"


class ModelVersion(models.Model):
    """One version of a registered model, with its source run's metrics and params."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="versions"
    )
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    status = models.CharField(max_length=32, blank=True)
    status_message = models.TextField(blank=True)
    stage = models.CharField(
        max_length=32, blank=True, help_text="Deprecated MLflow stage, if any."
    )
    user_id = models.CharField(max_length=255, blank=True)
    source_uri = models.CharField(max_length=1000, blank=True)
    run_id = models.CharField(max_length=64, blank=True)
    run_link = models.CharField(max_length=1000, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    aliases = models.JSONField(default=list, blank=True)
    created_upstream_at = models.DateTimeField(null=True, blank=True)
    updated_upstream_at = models.DateTimeField(null=True, blank=True)
    updated_upstream_ms = models.BigIntegerField(null=True, blank=True)

    # From the source run (MLflow tracking), when it can be read.
    metrics = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    run_tags = models.JSONField(default=dict, blank=True)
    experiment_id = models.CharField(max_length=64, blank=True)
    run_fetched_at = models.DateTimeField(null=True, blank=True)
    run_fetch_error = models.CharField(max_length=500, blank=True)

    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    deleted_upstream_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "version"], name="registry_version_unique_per_model"
            )
        ]
        indexes = [
            models.Index(fields=["registered_model", "-version"]),
            models.Index(fields=["run_id"]),
        ]
        ordering = ["registered_model", "-version"]

    def __str__(self) -> str:
        return f"{self.registered_model} v{self.version}"

    @property
    def author(self) -> str:
        """Who made the version: the registry's user id, else its run's ``mlflow.user`` tag.

        MLflow OSS leaves a version's user id empty; the run that logged the model names its
        author, and the sync mirrors the run's tags.
        """
        run_tags = self.run_tags if isinstance(self.run_tags, dict) else {}
        return self.user_id or str(run_tags.get("mlflow.user") or "")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_upstream_at is not None


class WebhookDelivery(models.Model):
    """MLflow webhook deliveries already accepted, so a replayed delivery id is refused."""

    delivery_id = models.CharField(max_length=100, unique=True)
    source = models.ForeignKey(
        RegistrySource, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=100)
    model_name = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["received_at"])]

    def __str__(self) -> str:
        return f"{self.event} {self.model_name} ({self.delivery_id})"


LIVE = Q(deleted_upstream_at__isnull=True)
