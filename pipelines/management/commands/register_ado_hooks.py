"""Create or update the ADO service-hook subscriptions that tell the portal about pipeline runs.

This one-off admin command is the only place the portal uses the ``azure-devops`` SDK
(``ServiceHooksClient``): paging and throttling do not matter for five subscriptions, and the
SDK covers the subscriptions API. The project id the subscriptions filter on comes from
``AdoClient.get_project`` (plain HTTP). See docs/decisions/0001-azure-devops-client.md.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from pipelines.client import AdoClient, AdoCredentials, AdoError, credentials_from_settings
from pipelines.models import AdoProject

PIPELINES_RESOURCE_VERSION = "5.1-preview.1"
# build.complete: Microsoft's create-subscription docs use 1.0; the portal reads only ids.
BUILD_RESOURCE_VERSION = "1.0"


@dataclass(frozen=True)
class HookEvent:
    publisher_id: str
    event_type: str
    resource_version: str


HOOK_EVENTS = (
    HookEvent("pipelines", "ms.vss-pipelines.run-state-changed-event", PIPELINES_RESOURCE_VERSION),
    HookEvent(
        "pipelines", "ms.vss-pipelines.stage-state-changed-event", PIPELINES_RESOURCE_VERSION
    ),
    HookEvent(
        "pipelines", "ms.vss-pipelinechecks-events.approval-pending", PIPELINES_RESOURCE_VERSION
    ),
    HookEvent(
        "pipelines", "ms.vss-pipelinechecks-events.approval-completed", PIPELINES_RESOURCE_VERSION
    ),
    HookEvent("tfs", "build.complete", BUILD_RESOURCE_VERSION),
)


def _import_sdk():
    """Import the SDK with its disk caches off the home directory.

    ``azure.devops`` creates ``~/.azure-devops/python-sdk/cache`` when imported (failing on a
    read-only home) and keeps the routes it discovered there, by URL, for 12 hours.
    """
    os.environ.setdefault(
        "AZURE_DEVOPS_CACHE_DIR", str(Path(tempfile.gettempdir()) / "mlops-portal-azure-devops")
    )
    # The SDK logs request bodies at DEBUG: the body of a subscription holds the hook secret.
    for name in ("azure.devops", "msrest"):
        sdk_logger = logging.getLogger(name)
        if sdk_logger.getEffectiveLevel() < logging.INFO:
            sdk_logger.setLevel(logging.INFO)
    from azure.devops.connection import Connection
    from azure.devops.v7_1.service_hooks.models import Subscription
    from msrest.exceptions import ClientException

    return Connection, Subscription, ClientException


def _sdk_credentials(credentials: AdoCredentials):
    from msrest.authentication import BasicAuthentication, BasicTokenAuthentication

    if credentials.pat:
        return BasicAuthentication("", credentials.pat)
    return BasicTokenAuthentication({"access_token": credentials.bearer_token_provider()})


class Command(BaseCommand):
    help = (
        "Create (or update, matching event type and URL) the ADO service-hook subscriptions of "
        "a project that POST run, stage, approval and build-complete events to the portal, "
        "with basic auth (ADO_HOOK_SECRET as the password)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="name of the AdoProject")
        parser.add_argument(
            "--url",
            required=True,
            help="public URL of the portal endpoint, e.g. "
            "https://portal.example.com/pipelines/hooks/ado/<project>/",
        )
        parser.add_argument("--username", default="ado-hook", help="basic-auth user name ADO sends")

    def handle(self, *args, project: str, url: str, username: str, **options):
        ado_project = self._project(project)
        secret = getattr(settings, "ADO_HOOK_SECRET", "")
        if not secret:
            raise CommandError(
                "ADO_HOOK_SECRET is not set: the portal would refuse every delivery. "
                "Set it in the portal's environment first."
            )
        self._check_url(url, ado_project)
        try:
            credentials = credentials_from_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

        where = f"{ado_project.organization_url} project {ado_project.project!r}"
        try:
            with AdoClient(
                ado_project.organization_url,
                ado_project.project,
                credentials,
                user_agent="mlops-portal register_ado_hooks",
                max_retries=2,  # an operator is waiting
            ) as client:
                project_id = client.get_project()["id"]
            sdk_credentials = _sdk_credentials(credentials)
        except (AdoError, KeyError) as exc:
            raise CommandError(f"Azure DevOps at {where} could not be read: {exc}") from exc

        connection_class, subscription_class, sdk_error = _import_sdk()
        connection = connection_class(
            base_url=ado_project.organization_url.rstrip("/"),
            creds=sdk_credentials,
            user_agent="mlops-portal register_ado_hooks",
        )
        try:
            hooks = connection.clients_v7_1.get_service_hooks_client()
            existing = hooks.list_subscriptions(
                consumer_id="webHooks", consumer_action_id="httpRequest"
            )
            for event in HOOK_EVENTS:
                subscription = subscription_class(
                    publisher_id=event.publisher_id,
                    event_type=event.event_type,
                    resource_version=event.resource_version,
                    consumer_id="webHooks",
                    consumer_action_id="httpRequest",
                    publisher_inputs={"projectId": project_id},
                    consumer_inputs={
                        "url": url,
                        "basicAuthUsername": username,
                        "basicAuthPassword": secret,
                        "resourceDetailsToSend": "minimal",
                        "messagesToSend": "none",
                        "detailedMessagesToSend": "none",
                    },
                )
                matches = [
                    s
                    for s in existing
                    if s.event_type == event.event_type
                    and (s.consumer_inputs or {}).get("url") == url
                ]
                if matches:
                    subscription.id = matches[0].id
                    saved = hooks.replace_subscription(subscription, matches[0].id)
                    verb = "Updated"
                    if len(matches) > 1:
                        others = ", ".join(s.id for s in matches[1:])
                        self.stderr.write(
                            self.style.WARNING(
                                f"Warning: {len(matches)} subscriptions send {event.event_type} "
                                f"to {url}; updated {matches[0].id} only. Delete the others "
                                f"({others}) in Project settings > Service hooks, or the "
                                "portal gets every event more than once."
                            )
                        )
                else:
                    saved = hooks.create_subscription(subscription)
                    verb = "Created"
                self.stdout.write(f"{verb} {event.event_type} ({saved.id})")
        except sdk_error as exc:
            raise CommandError(
                f"Azure DevOps at {ado_project.organization_url} refused the service-hook "
                f"subscriptions: {exc}"
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(HOOK_EVENTS)} service-hook subscriptions of {where} deliver to {url} "
                f"as {username!r}."
            )
        )

    @staticmethod
    def _project(name: str) -> AdoProject:
        found = AdoProject.objects.filter(name=name).first()
        if found is None:
            known = ", ".join(AdoProject.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"Unknown ADO project {name!r} (known: {known}).")
        return found

    def _check_url(self, url: str, project: AdoProject) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise CommandError(f"--url must be an absolute http(s) URL, got {url!r}.")
        expected = f"/hooks/ado/{project.name}/"
        if not parsed.path.endswith(expected):
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {url} does not end with {expected}; deliveries are attributed "
                    "to the project named in the URL."
                )
            )
        if parsed.scheme == "http":
            self.stderr.write(
                self.style.WARNING(
                    "Warning: plain http: ADO sends basic-auth credentials only over https "
                    "(and cannot reach localhost); fine for the simulator only."
                )
            )
