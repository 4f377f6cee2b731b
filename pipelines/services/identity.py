"""Whom the portal's credentials are in ADO, and whether they work ("Test connection")."""

from __future__ import annotations

import logging
import time

from django.core.exceptions import ImproperlyConfigured

from core.admin_actions import ConnectionCheck, short_reason

from ..client import AdoClient, AdoError
from ..models import AdoProject

logger = logging.getLogger(__package__)

CHECK_TIMEOUT = (3.0, 5.0)  # seconds to connect, to read


def project_service_identity_record(*, project: AdoProject, client: AdoClient) -> str:
    """Ask ADO whom the portal's credentials are (``connectionData``) and keep the name on
    the project, so the approval page can name the identity a decision goes out under before
    the portal's first delivery there. Read by a full sync, any sync while none is recorded,
    and "Test connection" (after credentials change), not by every poll: a quiet sync stays
    at its few requests. A failure to read it never fails the caller: it is logged and the
    name recorded before is kept. Returns the name ADO gave, "" when it could not be read."""
    try:
        name = client.get_service_identity().name[:300]
    except AdoError as exc:
        logger.warning(
            "could not read the portal's ADO identity for %s (keeping %r): %s",
            project.name,
            project.service_identity,
            exc,
        )
        return ""
    if name and name != project.service_identity:
        AdoProject.objects.filter(pk=project.pk).update(service_identity=name)
        project.service_identity = name
    return name


def project_connection_check(
    *, project: AdoProject, timeout: float | tuple[float, float] = CHECK_TIMEOUT
) -> ConnectionCheck:
    """Read the project from ADO once, not retried, to see it answers and the credentials
    work ("Test connection"), and record whom they are in ADO; a failure is reported, never
    raised."""
    started = time.monotonic()
    try:
        with AdoClient.for_project(project, timeout=timeout, max_retries=0) as client:
            found = client.get_project()
            elapsed_ms = (time.monotonic() - started) * 1000
            identity = project_service_identity_record(project=project, client=client)
    except ImproperlyConfigured as error:  # no credentials in the settings
        return ConnectionCheck(False, str(error))
    except AdoError as error:
        logger.warning("connection check of %s failed: %s", project.name, error)
        status = f" (HTTP {error.status})" if error.status is not None else ""
        return ConnectionCheck(False, f"{short_reason(error.message)}{status}")
    as_whom = f", as {identity}" if identity else ""
    return ConnectionCheck(
        True,
        f"project {found.get('name') or project.project} answered in {elapsed_ms:.0f} ms" + as_whom,
    )
