"""Moving each open episode along: run queued → started → finished → version registered →
challenger against champion → release → QA → PROD → closed (docs/operations.md, "Episodes").

It reads only the mirror (runs, versions, approvals the syncs keep), so following is cheap
and convergent: run it twice, or after a crash, and each episode ends where the mirror says.
Beat's ``operations.tick`` (every 30 s) runs it for every open episode, which also sets the
stall flags.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStatus
from approvals.services.promotion import PROMOTE, evaluate, promotion_policy_for
from pipelines.models import Environment, PipelineKind, PipelineRun, RunRequest, RunResult, RunState
from pipelines.selectors import deployments_now
from pipelines.services import trigger_run
from registry.models import ModelVersion

from ..models import OPEN_STATES, Episode, EpisodeKind, EpisodeOutcome, EpisodeState, EpisodeStep
from .policies import policy_for, release_pipeline_for
from .timeline import event_add
from .triggering import AUTOMATION, episode_close

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
NO_VERSION_GIVE_UP = timedelta(hours=24)
REJECTED = (ApprovalStatus.REJECTED, ApprovalStatus.CANCELED, ApprovalStatus.TIMED_OUT,
            ApprovalStatus.FAILED, ApprovalStatus.SKIPPED)  # fmt: skip


def episodes_follow(episode_ids=None) -> int:
    """Advance the open episodes (all, or those named); returns how many moved."""
    qs = Episode.objects.filter(state__in=OPEN_STATES).exclude(
        state__in=(EpisodeState.PROPOSED, EpisodeState.DEFERRED)
    )
    if episode_ids is not None:
        qs = qs.filter(pk__in=list(episode_ids))
    moved = 0
    for pk in qs.order_by("opened_at").values_list("pk", flat=True):
        try:
            moved += episode_follow(pk)
        except Exception:  # one broken episode must not stop the others
            logger.exception("following episode %s failed", pk)
    return moved


def episode_follow(episode_id: int) -> bool:
    """Take one episode as far as the mirror allows; True if it moved."""
    with transaction.atomic():
        episode = (
            Episode.objects.select_for_update(skip_locked=True)
            .filter(pk=episode_id, state__in=OPEN_STATES)
            .first()
        )
        if episode is None:
            return False
        before = (episode.state, episode.outcome)
        for _ in range(8):  # each step may unlock the next (a run that finished long ago)
            state = episode.state
            step = STEPS.get(state)
            if step is None:
                break
            step(episode)
            if episode.state == state:
                break
        _stall_check(episode)
        Episode.objects.filter(pk=episode.pk).update(followed_at=timezone.now())
        return (episode.state, episode.outcome) != before


# --- the steps, one per waiting state --------------------------------------------------------


def _requested(episode: Episode) -> None:
    request = RunRequest.objects.filter(pk=episode.run_request_id).select_related("run").first()
    if request is None:
        episode_close(episode, EpisodeOutcome.REQUEST_FAILED, "The run request is gone.")
        return
    if request.status == RunRequest.Status.FAILED:
        episode_close(
            episode, EpisodeOutcome.REQUEST_FAILED, f"ADO did not queue the run: {request.error}"
        )
        return
    if request.status != RunRequest.Status.SENT or request.run is None:
        return
    run = request.run
    episode.run = run
    episode.state = EpisodeState.RUNNING
    episode.save(update_fields=["run", "state"])
    event_add(
        episode,
        EpisodeStep.RUN_QUEUED,
        f"ADO queued run {run.name or run.ado_id} of {run.pipeline.name}.",
        # ADO's queue time: the request is marked sent only once ADO answered, by which
        # time the run may have started (its start then followed "queued" on the timeline).
        at=run.queued_at or request.sent_at,
        detail={"run": run.pk, "ado_id": run.ado_id},
    )


def _running(episode: Episode) -> None:
    run = PipelineRun.objects.filter(pk=episode.run_id).first()
    if run is None:
        return
    if run.started_at and episode.run_started_at is None:
        episode.run_started_at = run.started_at
        episode.save(update_fields=["run_started_at"])
        event_add(episode, EpisodeStep.RUN_STARTED, "The run started.", at=run.started_at)
    if run.state != RunState.COMPLETED:
        return
    finished = run.finished_at or timezone.now()
    episode.run_finished_at = finished
    if episode.run_started_at is None:
        episode.run_started_at = run.started_at or run.queued_at
    episode.save(update_fields=["run_finished_at", "run_started_at"])
    result = run.get_result_display() if run.result else "no result"
    event_add(
        episode,
        EpisodeStep.RUN_FINISHED,
        f"Run {run.name or run.ado_id} finished: {result}.",
        at=finished,
        detail={"result": run.result},
    )
    if run.result not in (RunResult.SUCCEEDED, RunResult.PARTIALLY_SUCCEEDED):
        episode_close(
            episode, EpisodeOutcome.RUN_FAILED, f"The run ended {result.lower()}.", at=finished
        )
        return
    if episode.kind == EpisodeKind.RESCORE:
        _scored(episode, run)
        return
    episode.state = EpisodeState.EVALUATING
    episode.save(update_fields=["state"])


def _scored(episode: Episode, run: PipelineRun) -> None:
    """A rule-based model ends with the scoring run's outcome, and a release if configured."""
    policy = policy_for(episode.catalog_model)
    if not (episode.policy or {}).get("release_after_scoring"):
        episode_close(
            episode, EpisodeOutcome.SCORED, "The scoring run succeeded.", at=run.finished_at
        )
        return
    version = run.stated_version or (str(run.model_version.version) if run.model_version else "")
    _release(episode, policy, version_number=version, challenger=run.model_version)


def _version_of(episode: Episode) -> ModelVersion | None:
    """The version the episode's run registered, among the episode's own model's versions
    only (a run linked to another model's version is not this episode's challenger)."""
    run = episode.run
    if run is None:
        return None
    own = ModelVersion.objects.filter(registered_model__catalog_model=episode.catalog_model)
    if run.model_version_id:
        linked = own.filter(pk=run.model_version_id).select_related("registered_model__source")
        found = linked.first()
        if found is not None:
            return found
    build = str(run.ado_id)
    return (
        own.filter(deleted_upstream_at__isnull=True)
        .filter(
            Q(run_tags__contains={"ado.build_id": build})
            | Q(tags__contains={"ado.build_id": build})
        )
        .select_related("registered_model__source")
        .order_by("registered_model__source__is_central", "-version")
        .last()
    )


def champion_of(episode: Episode, challenger: ModelVersion) -> ModelVersion | None:
    """The registry's ``champion`` alias of the challenger's registered model, else the
    version in PROD now, else none (the first version)."""
    registered = challenger.registered_model
    number = (registered.aliases or {}).get(CHAMPION_ALIAS)
    if number is not None and str(number).isdigit() and int(number) != challenger.version:
        found = ModelVersion.objects.filter(
            registered_model=registered, version=int(number)
        ).first()
        if found is not None:
            return found
    for deployment in deployments_now(episode.catalog_model).get(Environment.PROD, []):
        if deployment.version is not None and deployment.version.pk != challenger.pk:
            return deployment.version
    return None


def _evaluating(episode: Episode) -> None:
    challenger = _version_of(episode)
    if challenger is None:
        finished = episode.run_finished_at or timezone.now()
        if timezone.now() - finished > NO_VERSION_GIVE_UP:
            episode_close(
                episode,
                EpisodeOutcome.NO_VERSION,
                "No version was registered within 24 h of the successful run.",
            )
        return
    registered_at = challenger.created_upstream_at or challenger.first_seen_at
    champion = champion_of(episode, challenger)
    policy = promotion_policy_for(episode.catalog_model)
    result = evaluate(challenger, champion, policy)
    now = timezone.now()
    episode.challenger = challenger
    episode.champion = champion
    episode.version_registered_at = registered_at
    episode.evaluation = result
    episode.evaluated_at = now
    episode.save(
        update_fields=[
            "challenger",
            "champion",
            "version_registered_at",
            "evaluation",
            "evaluated_at",
        ]
    )
    event_add(
        episode,
        EpisodeStep.VERSION,
        f"Version {challenger.version} registered in {challenger.registered_model.source.name}.",
        at=registered_at,
        detail={"version": challenger.pk},
    )
    event_add(
        episode,
        EpisodeStep.EVALUATED,
        evaluation_sentence(result),
        at=now,
        detail=result,
    )
    if result["verdict"] != PROMOTE:
        episode_close(episode, EpisodeOutcome.HELD, evaluation_sentence(result), at=now)
        return
    trigger_policy = policy_for(episode.catalog_model)
    if not (episode.policy or {}).get("release_on_promote", True):
        episode.state = EpisodeState.RELEASING
        episode.save(update_fields=["state"])
        event_add(
            episode,
            EpisodeStep.RELEASE_REQUESTED,
            "The policy does not queue the release: waiting for a release run of "
            f"version {challenger.version}.",
        )
        return
    _release(episode, trigger_policy, version_number=str(challenger.version), challenger=challenger)


def evaluation_sentence(result: dict) -> str:
    if result.get("metric") is None:
        return " ".join(result.get("reasons") or ["No comparison."])
    ours, theirs = result.get("challenger"), result.get("champion")
    head = f"v{result.get('challenger_version')} {result['metric']} "
    head += "n/a" if ours is None else f"{ours:.4g}"
    if result.get("champion_version") is not None:
        head += f" against the champion v{result['champion_version']}'s "
        head += "n/a" if theirs is None else f"{theirs:.4g}"
        if result.get("absolute_change") is not None:
            head += f" ({result['absolute_change']:+.4g}"
            if result.get("relative_change") is not None:
                head += f", {result['relative_change']:+.2%}"
            head += ")"
    verdict = "promote" if result["verdict"] == PROMOTE else "hold"
    return f"{head}: {verdict}. " + " ".join(result.get("reasons") or [])


def _release(episode: Episode, policy, *, version_number: str, challenger) -> None:
    pipeline = release_pipeline_for(episode.catalog_model, policy)
    if pipeline is None:
        episode_close(
            episode,
            EpisodeOutcome.SCORED if episode.kind == EpisodeKind.RESCORE else EpisodeOutcome.HELD,
            f"{episode.catalog_model.name} has no release pipeline to queue.",
        )
        return
    parameters = {
        "modelVersion": version_number,
        "trigger": episode.parameters.get("trigger", ""),
        "signalId": episode.parameters.get("signalId", ""),
        "signalKind": episode.parameters.get("signalKind", ""),
        "episodeId": str(episode.pk),
    }
    if challenger is not None:
        parameters["registrySource"] = challenger.registered_model.source.name
    try:
        request = trigger_run(
            pipeline=pipeline,
            parameters=parameters,
            reason=parameters["trigger"] or "operations",
            note=f"Operations episode #{episode.pk}: release of version {version_number}.",
            allow_release=True,
        )
    except ValidationError as exc:
        episode_close(episode, EpisodeOutcome.REQUEST_FAILED, " ".join(exc.messages))
        return
    now = timezone.now()
    episode.state = EpisodeState.RELEASING
    episode.release_request = request
    episode.release_requested_at = now
    episode.save(update_fields=["state", "release_request", "release_requested_at"])
    event_add(
        episode,
        EpisodeStep.RELEASE_REQUESTED,
        f"Requested {pipeline.name} for version {version_number}.",
        at=now,
        actor_name=AUTOMATION,
        detail={"run_request": request.pk, "parameters": request.parameters},
    )


def _releasing(episode: Episode) -> None:
    run = _release_run(episode)
    if run is None:
        request = episode.release_request
        if request is not None and request.status == RunRequest.Status.FAILED:
            episode_close(
                episode,
                EpisodeOutcome.REQUEST_FAILED,
                f"ADO did not queue the release: {request.error}",
            )
        return
    if episode.release_run_id != run.pk:
        episode.release_run = run
        episode.save(update_fields=["release_run"])
    qa = _approval(run, Environment.QA)
    if qa is not None:
        episode.qa_approval = qa
        episode.qa_requested_at = qa.created_on
        episode.state = EpisodeState.IN_QA
        episode.save(update_fields=["qa_approval", "qa_requested_at", "state"])
        event_add(
            episode,
            EpisodeStep.QA_REQUESTED,
            f"QA approval requested for version {_number(episode)}.",
            at=qa.created_on,
            detail={"approval": qa.pk},
        )
        return
    _release_run_ended(episode, run)


def _release_run(episode: Episode) -> PipelineRun | None:
    if episode.release_run_id:
        return episode.release_run
    request = episode.release_request
    if request is not None:
        request.refresh_from_db()
        return request.run
    if episode.challenger_id:  # released by hand (the policy does not queue releases)
        return (
            PipelineRun.objects.filter(
                pipeline__kind=PipelineKind.RELEASE,
                model_version=episode.challenger_id,
                queued_at__gte=episode.evaluated_at or episode.opened_at,
            )
            .order_by("queued_at")
            .first()
        )
    return None


def _approval(run: PipelineRun, environment: str) -> ApprovalRequest | None:
    return (
        ApprovalRequest.objects.filter(run=run, environment=environment)
        .order_by("created_on")
        .first()
    )


def _number(episode: Episode) -> str:
    if episode.challenger_id:
        return str(episode.challenger.version)
    return str(
        (episode.release_request.parameters if episode.release_request else {}).get(
            "modelVersion", "?"
        )
    )


def _release_run_ended(episode: Episode, run: PipelineRun) -> None:
    if run.state != RunState.COMPLETED:
        return
    if run.result in (RunResult.SUCCEEDED, RunResult.PARTIALLY_SUCCEEDED):
        episode_close(
            episode,
            EpisodeOutcome.CANCELED,
            "The release run ended without reaching a PROD approval.",
            at=run.finished_at,
        )
    else:
        episode_close(
            episode,
            EpisodeOutcome.RUN_FAILED,
            f"The release run ended {run.get_result_display().lower()}.",
            at=run.finished_at,
        )


def _decided_at(approval: ApprovalRequest) -> datetime:
    return approval.decided_at or approval.last_modified_on or timezone.now()


def _in_qa(episode: Episode) -> None:
    qa = ApprovalRequest.objects.filter(pk=episode.qa_approval_id).first()
    if qa is None:
        return
    if qa.status in REJECTED:
        at = _decided_at(qa)
        event_add(
            episode,
            EpisodeStep.QA_DECIDED,
            f"QA {qa.get_status_display().lower()} by {qa.decided_by or 'ADO'}.",
            at=at,
        )
        episode.qa_decided_at = at
        episode.save(update_fields=["qa_decided_at"])
        episode_close(
            episode, EpisodeOutcome.REJECTED, f"QA {qa.get_status_display().lower()}.", at=at
        )
        return
    if qa.status != ApprovalStatus.APPROVED:
        return
    if episode.qa_decided_at is None:
        at = _decided_at(qa)
        episode.qa_decided_at = at
        episode.save(update_fields=["qa_decided_at"])
        event_add(
            episode, EpisodeStep.QA_DECIDED, f"QA approved by {qa.decided_by or 'ADO'}.", at=at
        )
    run = episode.release_run
    prod = _approval(run, Environment.PROD) if run else None
    if prod is not None:
        episode.prod_approval = prod
        episode.prod_requested_at = prod.created_on
        episode.state = EpisodeState.IN_PROD
        episode.save(update_fields=["prod_approval", "prod_requested_at", "state"])
        event_add(
            episode,
            EpisodeStep.PROD_REQUESTED,
            f"PROD approval requested for version {_number(episode)}.",
            at=prod.created_on,
            detail={"approval": prod.pk},
        )
        return
    if run is not None:
        run.refresh_from_db()
        _release_run_ended(episode, run)


def _in_prod(episode: Episode) -> None:
    prod = ApprovalRequest.objects.filter(pk=episode.prod_approval_id).first()
    if prod is None:
        return
    at = _decided_at(prod)
    if prod.status in REJECTED:
        episode.prod_decided_at = at
        episode.save(update_fields=["prod_decided_at"])
        event_add(
            episode,
            EpisodeStep.PROD_DECIDED,
            f"PROD {prod.get_status_display().lower()} by {prod.decided_by or 'ADO'}.",
            at=at,
        )
        episode_close(
            episode, EpisodeOutcome.REJECTED, f"PROD {prod.get_status_display().lower()}.", at=at
        )
        return
    if prod.status != ApprovalStatus.APPROVED:
        return
    episode.prod_decided_at = at
    episode.save(update_fields=["prod_decided_at"])
    event_add(
        episode, EpisodeStep.PROD_DECIDED, f"PROD approved by {prod.decided_by or 'ADO'}.", at=at
    )
    episode_close(
        episode,
        EpisodeOutcome.REACHED_PROD,
        f"Version {_number(episode)} was approved for PROD.",
        at=at,
    )


STEPS = {
    EpisodeState.REQUESTED: _requested,
    EpisodeState.RUNNING: _running,
    EpisodeState.EVALUATING: _evaluating,
    EpisodeState.RELEASING: _releasing,
    EpisodeState.IN_QA: _in_qa,
    EpisodeState.IN_PROD: _in_prod,
}


# --- stalls ------------------------------------------------------------------------------------


def stall_reason(episode: Episode, now: datetime | None = None) -> str:
    """Why the episode is stuck, or "" (a failed run closes it; this is for waiting too long)."""
    now = now or timezone.now()
    state = episode.state
    if state == EpisodeState.REQUESTED and episode.run_request_id:
        request = episode.run_request
        if now - request.requested_at > timedelta(minutes=10):
            why = request.error or "waiting to be sent"
            return f"ADO has not queued the run after {request.attempts} attempt(s): {why}."
    if state == EpisodeState.EVALUATING and episode.run_finished_at:
        limit = timedelta(minutes=settings.OPERATIONS_NO_VERSION_STALL_MINUTES)
        if now - episode.run_finished_at > limit:
            return "No version registered after the run succeeded."
    if state == EpisodeState.RELEASING and episode.release_requested_at:
        limit = timedelta(minutes=settings.OPERATIONS_RELEASE_STALL_MINUTES)
        if now - episode.release_requested_at > limit:
            return "The release has not reached its QA approval."
    hours_text = settings.OPERATIONS_APPROVAL_STALL_HOURS
    hours = timedelta(hours=hours_text)
    if (
        state == EpisodeState.IN_QA
        and episode.qa_requested_at
        and now - episode.qa_requested_at > hours
    ):
        return f"The QA approval is overdue (waiting over {hours_text} h)."
    if (
        state == EpisodeState.IN_PROD
        and episode.prod_requested_at
        and now - episode.prod_requested_at > hours
    ):
        return f"The PROD approval is overdue (waiting over {hours_text} h)."
    if state == EpisodeState.RUNNING and episode.run_id:
        run = episode.run
        if (
            run.state != RunState.COMPLETED
            and run.queued_at
            and now - run.queued_at > timedelta(hours=12)
        ):
            return "The run has not finished after 12 h."
    return ""


def _stall_check(episode: Episode) -> None:
    if episode.state == EpisodeState.CLOSED:
        return
    reason = stall_reason(episode)
    if reason == episode.stalled_reason:
        return
    now = timezone.now()
    episode.stalled_reason = reason
    episode.stalled_since = now if reason else None
    episode.save(update_fields=["stalled_reason", "stalled_since"])
    if reason:
        event_add(episode, EpisodeStep.STALLED, reason, at=now)
