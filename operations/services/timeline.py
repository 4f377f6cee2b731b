"""The episode's timeline: one append-only row per step."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from ..models import Episode, EpisodeEvent


def event_add(
    episode: Episode,
    step: str,
    message: str,
    *,
    at: datetime | None = None,
    actor_name: str = "",
    detail: dict | None = None,
) -> EpisodeEvent:
    event = EpisodeEvent(
        episode=episode,
        at=at or timezone.now(),
        step=step,
        message=message,
        actor_name=actor_name[:300],
        detail=detail or {},
    )
    event.save()
    return event
