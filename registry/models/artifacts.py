"""Where each version's binary is in JFrog Artifactory, and what the last check found.

One current row per model version, updated in place by each check (the check is a probe of
the present, not history): the location and expected sha256 read from the tags by the
convention in docs/artifactory.md, what Artifactory answered, and the state it adds up to.
"""

from __future__ import annotations

from django.db import models

from .base import ModelVersion


class ArtifactState(models.TextChoices):
    OK = "ok", "OK"
    MISSING = "missing", "Missing"
    DIFFERS = "differs", "Checksum differs"
    NO_LOCATION = "no_location", "No location"
    UNREACHABLE = "unreachable", "Artifactory unreachable"
    NOT_CONFIGURED = "not_configured", "Not configured"


# The states an approver or an operator must act on.
BAD_STATES = (ArtifactState.MISSING, ArtifactState.DIFFERS)


class LocationSource(models.TextChoices):
    NONE = "", "—"
    VERSION_TAGS = "version_tags", "Version tags"
    RUN_TAGS = "run_tags", "Source run's tags"


class ArtifactCheck(models.Model):
    model_version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="artifact_check"
    )
    state = models.CharField(max_length=20, choices=ArtifactState.choices)
    repo = models.CharField(max_length=255, blank=True)
    path = models.CharField(max_length=1000, blank=True)
    url = models.CharField(max_length=1000, blank=True, help_text="From the URL tag, if any.")
    location_source = models.CharField(
        max_length=20, choices=LocationSource.choices, blank=True, default=LocationSource.NONE
    )
    expected_sha256 = models.CharField(max_length=64, blank=True)
    found_sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    download_uri = models.CharField(max_length=1000, blank=True)
    message = models.TextField(blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["state"])]
        verbose_name = "binary check (Artifactory)"
        verbose_name_plural = "binary checks (Artifactory)"

    def __str__(self) -> str:
        return f"{self.model_version}: {self.state}"

    @property
    def is_bad(self) -> bool:
        return self.state in BAD_STATES
