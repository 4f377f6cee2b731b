"""A stand-in of the JFrog Artifactory REST API subset the portal reads, for the tests and the
demo: ``GET /api/storage/{repo}/{path}`` (File Info) and ``PUT /{repo}/{path}`` (deploy an
artifact), with bearer-token or basic authentication. No Django, no app imports.

Every response carries ``X-Simulator: artifactory`` so nobody mistakes it for Artifactory.
"""

from .server import ArtifactorySimulator, StoredFile

__all__ = ["ArtifactorySimulator", "StoredFile"]
