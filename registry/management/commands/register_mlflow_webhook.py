"""Create or update the MLflow webhook that tells the portal about registry changes."""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from registry.client import RegistryClient, RegistryError
from registry.models import RegistrySource
from registry.webhooks import MODEL_EVENTS


class Command(BaseCommand):
    help = (
        "Create (or update, matching by name) the webhook on a source's MLflow server that "
        "POSTs model-registry events to the portal, signed with MLFLOW_WEBHOOK_SECRET."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, help="name of the RegistrySource")
        parser.add_argument(
            "--url",
            required=True,
            help="public URL of the portal endpoint, e.g. "
            "https://portal.example.com/registry/webhooks/mlflow/<source>/",
        )
        parser.add_argument("--name", default="portal-sync", help="webhook name in MLflow")
        parser.add_argument(
            "--test", action="store_true", help="then ask MLflow to send a test delivery"
        )

    def handle(self, *args, source: str, url: str, name: str, test: bool, **options):
        registry_source = self._source(source)
        secret = getattr(settings, "MLFLOW_WEBHOOK_SECRET", "")
        if not secret:
            raise CommandError(
                "MLFLOW_WEBHOOK_SECRET is not set: the portal would refuse every delivery. "
                "Set it in the portal's environment first."
            )
        self._check_url(url, registry_source)

        client = RegistryClient.for_source(registry_source)
        server = registry_source.registry_uri or registry_source.tracking_uri
        try:
            webhook, created = self._upsert(
                client, name=name, url=url, secret=secret, source=registry_source
            )
            verb = "Created" if created else "Updated"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{verb} webhook {webhook.name!r} ({webhook.webhook_id}) on {server}: "
                    f"{len(MODEL_EVENTS)} events -> {webhook.url}"
                )
            )
            if test:
                self._test(client, webhook)
        except RegistryError as exc:
            raise CommandError(f"MLflow at {server} could not be used: {exc}") from exc

    @staticmethod
    def _source(name: str) -> RegistrySource:
        registry_source = RegistrySource.objects.filter(name=name).first()
        if registry_source is None:
            known = ", ".join(RegistrySource.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"Unknown registry source {name!r} (known: {known}).")
        if registry_source.is_unity_catalog:
            raise CommandError(
                f"Source {name!r} is a Unity Catalog registry: Unity Catalog has no registry "
                "webhooks. The periodic sync keeps it up to date."
            )
        if (registry_source.registry_uri or registry_source.tracking_uri).startswith("databricks"):
            raise CommandError(
                f"Source {name!r} is a Databricks workspace registry: its webhooks are a "
                "different API (registry-webhooks, X-Databricks-Signature) that this endpoint "
                "does not accept. The periodic sync keeps it up to date."
            )
        return registry_source

    def _check_url(self, url: str, registry_source: RegistrySource) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise CommandError(f"--url must be an absolute http(s) URL, got {url!r}.")
        path = reverse("registry:mlflow-webhook", kwargs={"source": registry_source.name})
        if not parsed.path.endswith(path):
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {url} does not end with {path}; deliveries are attributed to "
                    "the source named in the URL."
                )
            )
        if parsed.scheme == "http":
            self.stderr.write(
                self.style.WARNING(
                    "Warning: plain http: MLflow refuses it unless the server runs with "
                    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https (local development only)."
                )
            )

    def _upsert(self, client, *, name: str, url: str, secret: str, source: RegistrySource):
        fields = {
            "url": url,
            "events": list(MODEL_EVENTS),
            "description": f"MLOps portal: sync of registry source {source.name}",
            "secret": secret,
            "status": "ACTIVE",
        }
        existing = client.webhooks_named(name)
        if not existing:
            return client.webhook_create(name=name, **fields), True
        if len(existing) > 1:
            others = ", ".join(w.webhook_id for w in existing[1:])
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {len(existing)} webhooks are named {name!r}; updating "
                    f"{existing[0].webhook_id} only. Delete the others ({others}) in MLflow "
                    "(Settings > Webhooks) or they keep delivering with their own settings."
                )
            )
        return client.webhook_update(existing[0].webhook_id, **fields), False

    def _test(self, client, webhook) -> None:
        result = client.webhook_test(webhook.webhook_id)
        details = f"HTTP {result.response_status}" if result.response_status else "no response"
        if result.response_body:
            details += f": {result.response_body[:500]}"
        if result.error_message:
            details += f" ({result.error_message})"
        if not result.success:
            raise CommandError(f"Test delivery failed: {details}")
        self.stdout.write(self.style.SUCCESS(f"Test delivery succeeded: {details}"))
