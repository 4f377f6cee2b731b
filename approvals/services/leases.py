"""The lease both outboxes use (a decision's delivery, a check's callback): a worker takes a
row for one attempt with a conditional UPDATE, so two workers never hold it at once, and a
killed worker's lease simply runs out; the sweep finds rows due with nobody on them.

A leased model has ``state`` (``"queued"`` while it waits), ``claimed_until``, ``attempts``,
``last_attempt_at`` and ``next_attempt_at``."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F, Model, Q
from django.utils import timezone

QUEUED = "queued"


def lease_claim(
    *, model: type[Model], pk: int, seconds: float, related: tuple[str, ...] = ()
) -> tuple[Model | None, float | None]:
    """Take row ``pk`` for one attempt. Returns (row, None), or (None, seconds until it may
    be free) while another worker holds it, or (None, None) when it is gone or done."""
    now = timezone.now()
    taken = (
        model.objects.filter(pk=pk, state=QUEUED)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(
            claimed_until=now + timedelta(seconds=seconds),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )
    if taken:
        return model.objects.select_related(*related).get(pk=pk), None
    current = model.objects.filter(pk=pk).first()
    if current is None or current.state != QUEUED:
        return None, None
    wait = (current.claimed_until - now).total_seconds() if current.claimed_until else 1.0
    return None, max(wait, 1.0)


def lease_due_ids(*, model: type[Model], stuck_seconds: float, limit: int = 500) -> list[int]:
    """Rows due for longer than ``stuck_seconds`` with no live lease: their task was lost
    (broker down when it was queued, a worker killed mid-attempt). Each is marked due now, so
    the next sweep does not queue it twice meanwhile."""
    now = timezone.now()
    ids = list(
        model.objects.filter(
            state=QUEUED, next_attempt_at__lte=now - timedelta(seconds=stuck_seconds)
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        model.objects.filter(pk__in=ids).update(next_attempt_at=now)
    return ids
