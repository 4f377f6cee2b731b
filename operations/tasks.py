"""Thin tasks: follow episodes (after a sync changed what they wait on), and the periodic
tick that starts deferred runs, expires proposals and follows every open episode."""

from __future__ import annotations

from celery import shared_task

from .services import following, triggering


@shared_task(name="operations.follow_episodes")
def follow_episodes(episode_ids: list[int] | None = None) -> dict:
    return {"moved": following.episodes_follow(episode_ids)}


@shared_task(name="operations.tick")
def tick() -> dict:
    return {
        "started": triggering.deferred_start_due(),
        "expired": triggering.proposals_expire(),
        "moved": following.episodes_follow(),
    }
