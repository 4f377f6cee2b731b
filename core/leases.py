"""A lease lock on a database row, so two syncs of one source never overlap.

It needs no Redis (the embedded default has none) and works on PostgreSQL and SQLite: taking the
lease is one conditional UPDATE. A crashed holder's lease simply expires.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.utils import timezone


def lease_acquire(model, pk, *, ttl_seconds: int) -> str | None:
    """Return a token if the lease on row ``pk`` was free (or expired) and is now ours."""
    now = timezone.now()
    token = secrets.token_hex(16)
    taken = (
        model.objects.filter(pk=pk)
        .filter(_free(now))
        .update(lock_token=token, lock_expires_at=now + timedelta(seconds=ttl_seconds))
    )
    return token if taken else None


def lease_renew(model, pk, token: str, *, ttl_seconds: int) -> bool:
    expires = timezone.now() + timedelta(seconds=ttl_seconds)
    return bool(model.objects.filter(pk=pk, lock_token=token).update(lock_expires_at=expires))


def lease_release(model, pk, token: str) -> None:
    model.objects.filter(pk=pk, lock_token=token).update(lock_token="", lock_expires_at=None)


def _free(now):
    from django.db.models import Q

    return Q(lock_expires_at__isnull=True) | Q(lock_expires_at__lt=now)


@contextmanager
def lease(model, pk, *, ttl_seconds: int) -> Iterator[str | None]:
    """Hold the lease on row ``pk`` for the block; yields None (and holds nothing) when busy."""
    token = lease_acquire(model, pk, ttl_seconds=ttl_seconds)
    try:
        yield token
    finally:
        if token:
            lease_release(model, pk, token)


def renewing(callback, model, pk, token: str, *, ttl_seconds: int):
    """Wrap a progress callback so every report also extends the lease of a long-running job."""

    def report(*args, **kwargs):
        lease_renew(model, pk, token, ttl_seconds=ttl_seconds)
        return callback(*args, **kwargs)

    return report
