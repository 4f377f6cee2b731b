"""What a signal starts, by the model's trigger policy (docs/operations.md, "Trigger policies").

Each decision locks the model's ``ModelOperations`` row, so concurrent signals for one model
are decided one after another: a burst of a thousand alerts in a minute opens one episode
(the rest join it) and requests one run. A run is requested through pipelines'
``trigger_run`` (the run-request outbox: exactly once), with the signal's id and kind in
its template parameters, so ADO shows why it ran.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals.services import user_display_name
from core.errors import PortalError
from core.roles import Role, user_has_role
from pipelines.services import trigger_run

from ..models import (
    OPEN_STATES,
    SEVERITY_RANK,
    Disposition,
    Episode,
    EpisodeOutcome,
    EpisodeState,
    EpisodeStep,
    ModelOperations,
    Signal,
    SignalKind,
    TriggerMode,
    TriggerPolicy,
)
from .policies import episode_kind, pipeline_for, policy_for, policy_snapshot
from .timeline import event_add

logger = logging.getLogger(__name__)

# The template parameter ``trigger`` the run carries, in the workflow's words (maturity and
# the pipelines pages read it).
RUN_TRIGGER = {
    SignalKind.DATA_ARRIVAL: "new-data",
    SignalKind.DRIFT: "drift",
    SignalKind.THRESHOLD_BREACH: "threshold",
    SignalKind.PERFORMANCE_DROP: "performance-drop",
}
FAILURE_OUTCOMES = (
    EpisodeOutcome.RUN_FAILED,
    EpisodeOutcome.NO_VERSION,
    EpisodeOutcome.REQUEST_FAILED,
)
CONFIRM_ROLES = (Role.DATA_SCIENTIST, Role.APPROVER, Role.ADMIN)
AUTOMATION = "operations (trigger policy)"


class ProposalRefused(PortalError):
    code = "proposal_refused"
    http_status = 409


def _set(signal: Signal, disposition: str, note: str, episode: Episode | None = None) -> None:
    signal.disposition = disposition
    signal.disposition_note = note[:2000]
    if episode is not None:
        signal.episode = episode


def _mark(signal: Signal, disposition: str, note: str, episode: Episode | None = None) -> None:
    _set(signal, disposition, note, episode)
    fields = ["disposition", "disposition_note"]
    if episode is not None:
        fields.append("episode")
    signal.save(update_fields=fields)


def _resolve(signal: Signal) -> None:
    fired = signal.resolves
    if fired is None and signal.details.get("resolves_key"):
        fired = Signal.objects.filter(dedupe_key=signal.details["resolves_key"]).first()
    if fired is None:
        _mark(signal, Disposition.RESOLVES, "Resolves an alert the portal never received.")
        return
    Signal.objects.filter(pk=fired.pk, resolved_at__isnull=True).update(
        resolved_at=signal.observed_at
    )
    signal.resolves = fired
    signal.save(update_fields=["resolves"])
    note = f"Resolves signal #{fired.pk}."
    if fired.episode_id and fired.episode.state == EpisodeState.PROPOSED:
        note += f" Episode #{fired.episode_id} is still waiting for a confirmation."
    _mark(signal, Disposition.RESOLVES, note, fired.episode if fired.episode_id else None)


def _lock(catalog_model) -> ModelOperations:
    ModelOperations.objects.get_or_create(catalog_model=catalog_model)
    return ModelOperations.objects.select_for_update().get(catalog_model=catalog_model)


def in_business_hours(policy: TriggerPolicy, when: datetime) -> bool:
    local = when.astimezone(_zone(policy))
    days = policy.business_days or []
    return local.weekday() in days and (
        policy.business_hours_start <= local.time() < policy.business_hours_end
    )


def next_business_start(policy: TriggerPolicy, when: datetime) -> datetime:
    """The first moment at or after ``when`` inside the policy's business hours."""
    zone = _zone(policy)
    local = when.astimezone(zone)
    for offset in range(0, 8):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in (policy.business_days or []):
            continue
        start = datetime.combine(day, policy.business_hours_start, tzinfo=zone)
        end = datetime.combine(day, policy.business_hours_end, tzinfo=zone)
        if local < start:
            return start
        if start <= local < end:
            return when
    return when + timedelta(days=1)  # no business day at all: the policy is misconfigured


def _zone(policy: TriggerPolicy):
    try:
        return ZoneInfo(policy.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _last_start(catalog_model, state: ModelOperations) -> datetime | None:
    """When a run was last requested, or a dry run last said it would have been."""
    dry = (
        Episode.objects.filter(catalog_model=catalog_model, outcome=EpisodeOutcome.DRY_RUN)
        .order_by("-opened_at")
        .values_list("opened_at", flat=True)
        .first()
    )
    times = [t for t in (state.last_run_requested_at, dry) if t is not None]
    return max(times) if times else None


def _runs_in_last_day(catalog_model, now: datetime) -> int:
    requested = Episode.objects.filter(
        catalog_model=catalog_model, run_requested_at__gte=now - timedelta(days=1)
    ).count()
    dry = Episode.objects.filter(
        catalog_model=catalog_model,
        outcome=EpisodeOutcome.DRY_RUN,
        opened_at__gte=now - timedelta(days=1),
    ).count()
    return requested + dry


@transaction.atomic
def signal_decide(signal: Signal) -> None:
    """Decide what ``signal`` (saved, matched or not) starts; called when a rule matches an
    unmatched signal later (the intake calls ``signal_decide_locked``)."""
    signal_decide_locked(signal, None)


def signal_decide_locked(signal: Signal, state: ModelOperations | None) -> None:
    """``signal_decide`` inside the caller's transaction, with the model's row already locked
    (``state``, the intake's) or not yet (None: locked here)."""
    if signal.kind == SignalKind.RESOLVED:
        _resolve(signal)
        return
    model = signal.catalog_model
    if model is None:
        _mark(signal, Disposition.UNMATCHED, UNMATCHED_NOTE)
        return
    now = timezone.now()
    late = timedelta(minutes=settings.OPERATIONS_LATE_MATCH_MINUTES)
    if now - signal.received_at > late:
        _mark(
            signal,
            Disposition.IGNORED,
            f"Matched to {model.name} {_minutes(now - signal.received_at)} after it came in: "
            "recorded, not acted on.",
        )
        return
    state = state if state is not None else _lock(model)
    policy = policy_for(model)
    verdict = _verdict(signal, model, policy, state, now)
    if verdict is not None:
        _mark(signal, *verdict)
        return
    _episode_open(signal, model, policy, state, now)


DECIDED, OPENS = "decided", "opens"


def signal_decide_unsaved(signal: Signal, state: ModelOperations | None) -> str | None:
    """Decide a new, matched, not yet saved signal when the decision needs nothing of the
    saved row (unmatched, ignored, joined, suppressed: the intake then inserts it decided, in
    one statement); the model's row is locked (``state``). Reads only. Returns DECIDED, or
    OPENS when the policy opens an episode (``signal_episode_open`` once it is saved, in the
    same transaction), or None (a Resolved signal: ``signal_decide_locked`` once saved)."""
    if signal.kind == SignalKind.RESOLVED:
        return None
    model = signal.catalog_model
    if model is None:
        _set(signal, Disposition.UNMATCHED, UNMATCHED_NOTE)
        return DECIDED
    if state is None:
        return None
    verdict = _verdict(signal, model, policy_for(model), state, timezone.now())
    if verdict is None:
        return OPENS
    _set(signal, *verdict)
    return DECIDED


def signal_episode_open(signal: Signal, state: ModelOperations) -> None:
    """Open the episode ``signal_decide_unsaved`` said the saved ``signal`` opens (the model's
    row locked since, so nothing it read has changed)."""
    model = signal.catalog_model
    _episode_open(signal, model, policy_for(model), state, timezone.now())


UNMATCHED_NOTE = "No catalog model matches this signal."


def _verdict(signal: Signal, model, policy: TriggerPolicy, state, now: datetime):
    """(disposition, note, episode) when the policy does not open an episode, else None."""
    if not policy.enabled:
        return Disposition.IGNORED, f"The trigger policy of {model.name} is disabled.", None
    if signal.kind not in (policy.signal_kinds or []):
        return (
            Disposition.IGNORED,
            f"The trigger policy of {model.name} does not act on {signal.get_kind_display()} "
            "signals.",
            None,
        )
    if policy.min_severity and SEVERITY_RANK.get(signal.severity, 0) < SEVERITY_RANK.get(
        policy.min_severity, 0
    ):
        return (
            Disposition.IGNORED,
            f"Severity {signal.get_severity_display()} is below the policy's minimum "
            f"{policy.get_min_severity_display()}.",
            None,
        )
    joined = _join_target(signal, model, policy)
    if joined is not None:
        return (Disposition.JOINED, *joined)
    last = _last_start(model, state)
    cooldown = timedelta(minutes=policy.cooldown_minutes)
    if last is not None and now - last < cooldown:
        return (
            Disposition.SUPPRESSED,
            f"Cooldown: a run was requested {_minutes(now - last)} ago; the policy allows the "
            f"next one from {(last + cooldown):%Y-%m-%d %H:%M} UTC.",
            None,
        )
    if _runs_in_last_day(model, now) >= policy.max_runs_per_day:
        return (
            Disposition.SUPPRESSED,
            f"Daily limit: {policy.max_runs_per_day} runs were requested for {model.name} in "
            "the last 24 hours.",
            None,
        )
    return None


def _join_target(signal: Signal, model, policy: TriggerPolicy) -> tuple[str, Episode] | None:
    """(note, episode) of the episode the signal joins: the open one, else one whose first
    signal of the same kind is within the dedupe window."""
    # Only what the note needs: an episode row is wide (JSON policy, parameters, evaluation).
    open_episode = (
        Episode.objects.filter(catalog_model=model, state__in=OPEN_STATES)
        .only("pk", "state")
        .order_by("-opened_at")
        .first()
    )
    if open_episode is not None:
        state = open_episode.get_state_display().lower()
        return f"Episode #{open_episode.pk} is open ({state}).", open_episode
    window = timedelta(minutes=policy.dedupe_window_minutes)
    recent = (
        Episode.objects.filter(
            catalog_model=model,
            trigger_kind=signal.kind,
            signal_at__gte=signal.observed_at - window,
            signal_at__lte=signal.observed_at + window,
        )
        .only("pk")
        .order_by("-opened_at")
        .first()
    )
    if recent is not None:
        return (
            f"Within the {policy.dedupe_window_minutes} min dedupe window of episode #{recent.pk}.",
            recent,
        )
    return None


def _episode_open(signal: Signal, model, policy: TriggerPolicy, state, now: datetime) -> Episode:
    pipeline = pipeline_for(model, policy)
    episode = Episode.objects.create(
        catalog_model=model,
        kind=episode_kind(model),
        trigger_kind=signal.kind,
        mode=policy.mode,
        state=EpisodeState.PROPOSED,
        policy=policy_snapshot(policy),
        first_signal=signal,
        pipeline=pipeline,
        signal_at=signal.observed_at,
        opened_at=now,
    )
    episode.parameters = _run_parameters(episode, signal)
    episode.save(update_fields=["parameters"])
    event_add(
        episode,
        EpisodeStep.SIGNAL,
        f"{signal.get_kind_display()} signal ({signal.get_format_display()}): "
        f"{signal.title or signal.source_ref or 'no title'}",
        at=signal.observed_at,
        actor_name=signal.raw.sender if signal.raw_id else "",
        detail={"signal": signal.pk, "severity": signal.severity},
    )
    if pipeline is None:
        which = "scoring" if episode.kind == "rescore" else "training"
        _close(episode, EpisodeOutcome.REQUEST_FAILED, f"{model.name} has no {which} pipeline.")
        _mark(signal, Disposition.STARTED, f"Episode #{episode.pk}: no {which} pipeline.", episode)
        return episode
    if policy.mode == TriggerMode.DRY_RUN:
        _close(
            episode,
            EpisodeOutcome.DRY_RUN,
            f"Dry run: would have queued {pipeline.name} with {episode.parameters}.",
        )
        _mark(signal, Disposition.DRY_RUN, f"Dry run recorded as episode #{episode.pk}.", episode)
        return episode
    if policy.mode == TriggerMode.CONFIRM:
        event_add(
            episode,
            EpisodeStep.PROPOSED,
            f"Proposed {pipeline.name}: a data scientist or approver confirms it within "
            f"{policy.proposal_expiry_hours} h.",
        )
        _mark(
            signal,
            Disposition.PROPOSED,
            f"Episode #{episode.pk} waits for a confirmation.",
            episode,
        )
        return episode
    if policy.business_hours_only and not in_business_hours(policy, now):
        episode.state = EpisodeState.DEFERRED
        episode.not_before = next_business_start(policy, now)
        episode.save(update_fields=["state", "not_before"])
        event_add(
            episode,
            EpisodeStep.DEFERRED,
            f"Outside business hours: {pipeline.name} is queued at "
            f"{episode.not_before:%Y-%m-%d %H:%M %Z}.",
        )
        _mark(
            signal,
            Disposition.DEFERRED,
            f"Episode #{episode.pk} starts in business hours.",
            episode,
        )
        return episode
    _mark(signal, Disposition.STARTED, f"Episode #{episode.pk} requested {pipeline.name}.", episode)
    episode_start(episode, state=state)
    return episode


def _run_parameters(episode: Episode, signal: Signal) -> dict:
    return {
        "trigger": RUN_TRIGGER.get(signal.kind, str(signal.kind)),
        "signalId": str(signal.pk),
        "signalKind": str(signal.kind),
        "episodeId": str(episode.pk),
    }


def episode_start(episode: Episode, *, state: ModelOperations | None = None, user=None) -> Episode:
    """Request the episode's run (through the run-request outbox)."""
    state = state or _lock(episode.catalog_model)
    now = timezone.now()
    actor = user_display_name(user) if user is not None else AUTOMATION
    try:
        request = trigger_run(
            pipeline=episode.pipeline,
            parameters=episode.parameters,
            reason=episode.parameters.get("trigger", "operations"),
            note=f"Operations episode #{episode.pk}: {episode.get_trigger_kind_display()} signal.",
            acting_user=user,
        )
    except ValidationError as exc:
        _close(episode, EpisodeOutcome.REQUEST_FAILED, " ".join(exc.messages))
        return episode
    episode.state = EpisodeState.REQUESTED
    episode.run_request = request
    episode.run_requested_at = now
    episode.save(update_fields=["state", "run_request", "run_requested_at"])
    ModelOperations.objects.filter(pk=state.pk).update(last_run_requested_at=now)
    state.last_run_requested_at = now
    event_add(
        episode,
        EpisodeStep.RUN_REQUESTED,
        f"Requested a run of {episode.pipeline.name} ({request.parameters.get('trigger')}).",
        at=now,
        actor_name=actor,
        detail={"run_request": request.pk, "parameters": request.parameters},
    )
    return episode


def _close(episode: Episode, outcome: str, note: str, *, at: datetime | None = None) -> Episode:
    at = at or timezone.now()
    episode.state = EpisodeState.CLOSED
    episode.outcome = outcome
    episode.outcome_note = note
    episode.closed_at = at
    # A failure closes the episode but stays flagged until someone looks (the inbox lists it).
    failed = outcome in FAILURE_OUTCOMES
    episode.stalled_reason = note[:300] if failed else ""
    episode.stalled_since = at if failed else None
    episode.save(
        update_fields=[
            "state",
            "outcome",
            "outcome_note",
            "closed_at",
            "stalled_reason",
            "stalled_since",
        ]
    )
    event_add(
        episode,
        EpisodeStep.CLOSED,
        f"{EpisodeOutcome(outcome).label}. {note}".strip(),
        at=at,
        detail={"outcome": outcome},
    )
    return episode


def episode_close(
    episode: Episode, outcome: str, note: str, *, at: datetime | None = None
) -> Episode:
    return _close(episode, outcome, note, at=at)


def _proposal_check(episode: Episode, user) -> None:
    if not user_has_role(user, *CONFIRM_ROLES):
        raise ProposalRefused(
            "Only a data scientist, an approver or an admin can confirm or decline a proposal.",
            code="not_allowed",
            http_status=403,
        )
    if episode.state != EpisodeState.PROPOSED:
        raise ProposalRefused(
            f"Episode #{episode.pk} is not waiting for a confirmation "
            f"({episode.get_state_display().lower()}).",
            code="not_proposed",
        )


@transaction.atomic
def proposal_confirm(*, episode: Episode, user) -> Episode:
    """A person confirms the proposed run: it is requested now (business hours do not hold
    back a person's decision)."""
    state = _lock(episode.catalog_model)
    episode = Episode.objects.select_for_update().get(pk=episode.pk)
    _proposal_check(episode, user)
    if episode.pipeline_id is None:
        raise ProposalRefused("The model has no pipeline to run.", code="no_pipeline")
    now = timezone.now()
    episode.decided_by = user
    episode.decided_at = now
    episode.save(update_fields=["decided_by", "decided_at"])
    event_add(
        episode,
        EpisodeStep.CONFIRMED,
        f"Confirmed by {user_display_name(user)}.",
        at=now,
        actor_name=user_display_name(user),
    )
    return episode_start(episode, state=state, user=user)


@transaction.atomic
def proposal_decline(*, episode: Episode, user, reason: str) -> Episode:
    reason = (reason or "").strip()
    episode = Episode.objects.select_for_update().get(pk=episode.pk)
    _proposal_check(episode, user)
    if not reason:
        raise ProposalRefused(
            "Say why the run is declined.", code="reason_required", http_status=400
        )
    now = timezone.now()
    episode.decided_by = user
    episode.decided_at = now
    episode.save(update_fields=["decided_by", "decided_at"])
    name = user_display_name(user)
    event_add(
        episode, EpisodeStep.DECLINED, f"Declined by {name}: {reason}", at=now, actor_name=name
    )
    return _close(episode, EpisodeOutcome.DECLINED, f"Declined by {name}: {reason}", at=now)


def deferred_start_due(now: datetime | None = None) -> int:
    """Start the deferred episodes whose business hours have come (beat's operations.tick)."""
    now = now or timezone.now()
    started = 0
    for pk in Episode.objects.filter(state=EpisodeState.DEFERRED, not_before__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            episode = Episode.objects.select_for_update().get(pk=pk)
            if episode.state != EpisodeState.DEFERRED:
                continue
            episode_start(episode)
            started += 1
    return started


def proposals_expire(now: datetime | None = None) -> int:
    now = now or timezone.now()
    expired = 0
    for episode in Episode.objects.filter(state=EpisodeState.PROPOSED):
        hours = int((episode.policy or {}).get("proposal_expiry_hours") or 24)
        if now - episode.opened_at < timedelta(hours=hours):
            continue
        with transaction.atomic():
            locked = Episode.objects.select_for_update().get(pk=episode.pk)
            if locked.state == EpisodeState.PROPOSED:
                _close(locked, EpisodeOutcome.EXPIRED, f"Nobody confirmed it within {hours} h.")
                expired += 1
    return expired


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h"
