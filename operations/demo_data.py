"""The demo's operations history: trigger and promotion policies for the demo models, signals
of every disposition and episodes in every state, so the inbox, the episode pages and the
model pages have something true to show on the first start (``manage.py demo`` calls
``seed_history()`` after the registry, pipelines and approvals are mirrored).

The episodes are backdated and written step by step with the services' own pieces (the
policy as it applies, ``event_add`` for the timeline, ``episode_close`` for the end,
``trigger_run`` for the requested run), linked to what the mirror holds where it fits: the
releases the ADO simulator leaves waiting at QA (fraud-detector) and at PROD
(churn-predictor), the training it leaves running (customer-lifetime-value), the demo
registry's versions and their metrics. Without a mirror (``--no-mlflow --no-ado``, tests) the
same episodes are written without those links, with the numbers of ``registry/demo_data.py``.

The open episodes stay where they are until the live demo moves them (an approval decided, a
proposal confirmed, the deferred batch window reached). ``LOOP_MODEL`` has none, a policy that
starts runs automatically and no recent run, so a signal sent for it (``manage.py send_signal``
or the inbox's demo button) runs the whole loop: episode, training in the simulator, a new
MLflow version, evaluation, the release waiting at its QA approval.

Idempotent: each seeded signal has a fixed dedupe key; what exists is left alone (also
policies someone edited), what is missing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStatus, PromotionPolicy
from approvals.services.promotion import evaluate
from pipelines.models import Environment, PipelineKind, PipelineRun, RunRequest, RunState
from pipelines.services import trigger_run
from registry import demo_data as registry_demo
from registry.models import CatalogModel, ModelVersion

from .models import (
    Disposition,
    Episode,
    EpisodeOutcome,
    EpisodeState,
    EpisodeStep,
    IntakeOutcome,
    ModelOperations,
    RawSignal,
    Severity,
    Signal,
    SignalFormat,
    SignalKind,
    TriggerMode,
    TriggerPolicy,
)
from .services import episode_close, event_add
from .services.following import evaluation_sentence
from .services.intake import heard_from
from .services.policies import episode_kind, pipeline_for, policy_for, policy_snapshot
from .services.triggering import AUTOMATION, RUN_TRIGGER, next_business_start

KEY_PREFIX = "demo-seed:"
LOOP_MODEL = "credit-scoring"  # ado_simulator/seed.py LOOP_MODEL: its training beats the champion
SCIENTIST = "Dana Scientist"  # the demo's data scientist (portal/services.py DEMO_USERS)

# model: (mode, extra TriggerPolicy fields). Written only for a model that has no policy yet.
TRIGGER_POLICIES: dict[str, tuple[str, dict]] = {
    "credit-scoring": (TriggerMode.AUTOMATIC, {"cooldown_minutes": 10, "max_runs_per_day": 12}),
    "fraud-detector": (TriggerMode.AUTOMATIC, {"min_severity": Severity.WARNING}),
    "churn-predictor": (TriggerMode.AUTOMATIC, {}),
    "customer-lifetime-value": (TriggerMode.AUTOMATIC, {}),
    "marketing-uplift": (TriggerMode.AUTOMATIC, {}),
    "inventory-anomaly": (TriggerMode.AUTOMATIC, {"cooldown_minutes": 240}),
    "demand-forecast": (TriggerMode.CONFIRM, {"min_severity": Severity.WARNING}),
    # Rescored in the nightly batch window only, then released.
    "transaction-screening-rules": (
        TriggerMode.AUTOMATIC,
        {
            "business_hours_only": True,
            "business_hours_start": time(2, 0),
            "business_hours_end": time(5, 0),
            "business_days": [0, 1, 2, 3, 4, 5, 6],
            "release_after_scoring": True,
        },
    ),
    "credit-limit-rules": (TriggerMode.AUTOMATIC, {"release_after_scoring": True}),
    "claims-triage-rules": (TriggerMode.DRY_RUN, {}),
}
# model: (metric, min_absolute_change). Written only for a model that has no policy yet.
PROMOTION_POLICIES: dict[str, tuple[str, float]] = {
    "fraud-detector": ("auc", 0.002),
    "churn-predictor": ("auc", 0.002),
    "credit-scoring": ("auc", 0.002),
    "marketing-uplift": ("auc", 0.01),
    "inventory-anomaly": ("auc", 0.002),
    "demand-forecast": ("rmse", 0.5),
    "customer-lifetime-value": ("rmse", 1.0),
    "transaction-screening-rules": ("false_positive_rate", 0.0),
    "credit-limit-rules": ("false_positive_rate", 0.0),
    "claims-triage-rules": ("false_positive_rate", 0.0),
}


@dataclass
class Context:
    now: datetime
    models: dict[str, CatalogModel]

    def ago(self, **delta) -> datetime:
        return self.now - timedelta(**delta)


# --- policies ----------------------------------------------------------------------------------


def policies_ensure(models: dict[str, CatalogModel]) -> tuple[int, int]:
    """The demo's trigger and promotion policies, for the models that have none yet."""
    triggers = promotions = 0
    for name, (mode, fields) in TRIGGER_POLICIES.items():
        model = models.get(name)
        if model is not None and not TriggerPolicy.objects.filter(catalog_model=model).exists():
            TriggerPolicy.objects.create(catalog_model=model, mode=mode, **fields)
            triggers += 1
    for name, (metric, change) in PROMOTION_POLICIES.items():
        model = models.get(name)
        if model is not None and not PromotionPolicy.objects.filter(catalog_model=model).exists():
            PromotionPolicy.objects.create(
                catalog_model=model, metric=metric, min_absolute_change=change
            )
            promotions += 1
    return triggers, promotions


# --- the pieces --------------------------------------------------------------------------------


def _signal(
    ctx: Context,
    key: str,
    model: CatalogModel | None,
    *,
    kind: str,
    at: datetime,
    title: str,
    severity: str = Severity.WARNING,
    fmt: str = SignalFormat.GENERIC,
    source: str = "",
    body: dict | None = None,
    attributes: dict | None = None,
    details: dict | None = None,
    disposition: str = Disposition.STARTED,
    note: str = "",
    episode: Episode | None = None,
) -> Signal:
    """One received signal (its raw request too), as the intake would have kept it."""
    received = at + timedelta(seconds=4)
    body = body or {
        "model": model.name if model else "",
        "kind": str(kind),
        "severity": str(severity),
        "observed_at": at.isoformat(),
        "id": key,
        "source": source,
        "title": title,
        "details": details or {},
    }
    raw = RawSignal(
        received_at=received,
        format=fmt,
        sender=f"{source or fmt} (shared secret)",
        content_type="application/json",
        headers={"content-type": "application/json", "user-agent": source or "demo"},
        body=json.dumps(body, indent=1),
        outcome=IntakeOutcome.ACCEPTED,
        signal_count=1,
        remote_addr="10.20.0.14",
    )
    raw.save()
    signal = Signal.objects.create(
        raw=raw,
        format=fmt,
        kind=kind,
        severity=severity,
        observed_at=at,
        received_at=received,
        dedupe_key=KEY_PREFIX + key,
        title=title,
        source_ref=source,
        attributes=attributes or ({"model": model.name} if model else {}),
        details=details or {},
        catalog_model=model,
        matched_by=f"model field {model.name!r}" if model else "",
        disposition=disposition,
        disposition_note=note,
        episode=episode,
    )
    if model is not None:
        heard_from(model, received, monitoring=kind != SignalKind.DATA_ARRIVAL)
    return signal


def _episode(ctx: Context, signal: Signal, *, opened_at: datetime, **policy_changes) -> Episode:
    """The episode the signal opened, with the policy as it applied then and its first step."""
    model = signal.catalog_model
    policy = policy_for(model)
    snapshot = {**policy_snapshot(policy), **policy_changes}
    episode = Episode.objects.create(
        catalog_model=model,
        kind=episode_kind(model),
        trigger_kind=signal.kind,
        mode=snapshot["mode"],
        state=EpisodeState.PROPOSED,
        policy=snapshot,
        first_signal=signal,
        pipeline=pipeline_for(model, policy),
        signal_at=signal.observed_at,
        opened_at=opened_at,
    )
    episode.parameters = {
        "trigger": RUN_TRIGGER.get(signal.kind, str(signal.kind)),
        "signalId": str(signal.pk),
        "signalKind": str(signal.kind),
        "episodeId": str(episode.pk),
    }
    episode.save(update_fields=["parameters"])
    signal.episode = episode
    signal.save(update_fields=["episode"])
    event_add(
        episode,
        EpisodeStep.SIGNAL,
        f"{signal.get_kind_display()} signal ({signal.get_format_display()}): {signal.title}",
        at=signal.observed_at,
        actor_name=signal.raw.sender,
        detail={"signal": signal.pk, "severity": signal.severity},
    )
    return episode


def _set(episode: Episode, **fields) -> None:
    for name, value in fields.items():
        setattr(episode, name, value)
    episode.save(update_fields=list(fields))


def _pipeline_name(episode: Episode) -> str:
    if episode.pipeline_id:
        return episode.pipeline.name
    return f"the {'scoring' if episode.kind == 'rescore' else 'training'} pipeline"


def _requested(episode: Episode, at: datetime, *, actor: str = AUTOMATION) -> None:
    _set(episode, state=EpisodeState.REQUESTED, run_requested_at=at)
    event_add(
        episode,
        EpisodeStep.RUN_REQUESTED,
        f"Requested a run of {_pipeline_name(episode)} ({episode.parameters.get('trigger')}).",
        at=at,
        actor_name=actor,
        detail={"parameters": episode.parameters},
    )
    ModelOperations.objects.get_or_create(catalog_model=episode.catalog_model)
    ModelOperations.objects.filter(pk=episode.catalog_model_id).exclude(
        last_run_requested_at__gt=at
    ).update(last_run_requested_at=at)


def _ran(
    episode: Episode, queued: datetime, started: datetime, finished: datetime | None, **kw
) -> None:
    run = kw.get("run")
    name = (run.name or run.ado_id) if run else f"{queued:%Y%m%d}.1"
    _set(episode, state=EpisodeState.RUNNING, run=run, run_started_at=started)
    event_add(
        episode,
        EpisodeStep.RUN_QUEUED,
        f"ADO queued run {name} of {_pipeline_name(episode)}.",
        at=queued,
        detail={"run": run.pk, "ado_id": run.ado_id} if run else {},
    )
    event_add(episode, EpisodeStep.RUN_STARTED, "The run started.", at=started)
    if finished is None:
        return
    result = kw.get("result", "Succeeded")
    _set(episode, run_finished_at=finished)
    event_add(
        episode,
        EpisodeStep.RUN_FINISHED,
        f"Run {name} finished: {result}.",
        at=finished,
        detail={"result": result.lower()},
    )
    if result == "Succeeded" and episode.kind == "retrain":
        _set(episode, state=EpisodeState.EVALUATING)


def _version(model: CatalogModel, number: int) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(
            registered_model__catalog_model=model, version=number, deleted_upstream_at__isnull=True
        )
        .order_by("-registered_model__source__is_central")
        .first()
    )


def _plan_metrics(model: CatalogModel, number: int) -> dict:
    """The demo registry's metrics of a version (registry/demo_data.py), mirrored or not."""
    spec = next((s for s in registry_demo.DEMO_MODELS if s.name == model.name), None)
    if spec is None:
        return {}
    plans = registry_demo.version_plans(spec, 0)
    return next((p.metrics for p in plans if p.version == number), {})


def _standing_in(model: CatalogModel, number: int) -> SimpleNamespace:
    """A version the mirror does not hold, with the demo registry's numbers."""
    return SimpleNamespace(version=number, metrics=_plan_metrics(model, number))


def _evaluated(episode: Episode, at: datetime, challenger: int, champion: int | None) -> dict:
    """The challenger (version ``challenger``) against the champion, by the promotion policy."""
    model = episode.catalog_model
    ours = _version(model, challenger)
    theirs = _version(model, champion) if champion else None
    result = evaluate(
        ours or _standing_in(model, challenger),
        theirs or (_standing_in(model, champion) if champion else None),
        PromotionPolicy.objects.filter(catalog_model=model).first(),
    )
    registered = at - timedelta(minutes=3)
    _set(
        episode,
        challenger=ours,
        champion=theirs,
        version_registered_at=registered,
        evaluation=result,
        evaluated_at=at,
    )
    event_add(
        episode,
        EpisodeStep.VERSION,
        f"Version {challenger} registered in "
        f"{ours.registered_model.source.name if ours else 'central'}.",
        at=registered,
        detail={"version": ours.pk} if ours else {},
    )
    event_add(episode, EpisodeStep.EVALUATED, evaluation_sentence(result), at=at, detail=result)
    return result


def _released(episode: Episode, at: datetime, version: int | str, run: PipelineRun | None) -> None:
    release = f"{episode.catalog_model.name}'s release pipeline"
    if run is not None:
        release = run.pipeline.name
    _set(episode, state=EpisodeState.RELEASING, release_requested_at=at, release_run=run)
    event_add(
        episode,
        EpisodeStep.RELEASE_REQUESTED,
        f"Requested {release} for version {version}.",
        at=at,
        actor_name=AUTOMATION,
        detail={"parameters": {"modelVersion": str(version), "episodeId": str(episode.pk)}},
    )


def _qa(episode: Episode, at: datetime, version, approval: ApprovalRequest | None) -> None:
    at = approval.created_on if approval else at
    _set(episode, state=EpisodeState.IN_QA, qa_approval=approval, qa_requested_at=at)
    event_add(
        episode,
        EpisodeStep.QA_REQUESTED,
        f"QA approval requested for version {version}.",
        at=at,
        detail={"approval": approval.pk} if approval else {},
    )


def _qa_approved(episode, at, version, approval, prod: ApprovalRequest | None) -> None:
    decided = (approval.decided_at or approval.last_modified_on) if approval else at
    by = (approval.decided_by if approval else "") or "Alice Approver"
    _set(episode, qa_decided_at=decided)
    event_add(episode, EpisodeStep.QA_DECIDED, f"QA approved by {by}.", at=decided)
    at = prod.created_on if prod else decided + timedelta(minutes=4)
    _set(episode, state=EpisodeState.IN_PROD, prod_approval=prod, prod_requested_at=at)
    event_add(
        episode,
        EpisodeStep.PROD_REQUESTED,
        f"PROD approval requested for version {version}.",
        at=at,
        detail={"approval": prod.pk} if prod else {},
    )


def _release_run(model: CatalogModel, environment: str) -> PipelineRun | None:
    """The model's release run waiting at an approval of ``environment`` (the simulator's)."""
    approval = (
        ApprovalRequest.objects.filter(
            run__pipeline__catalog_model=model,
            run__pipeline__kind=PipelineKind.RELEASE,
            environment=environment,
            status=ApprovalStatus.PENDING,
        )
        .select_related("run")
        .order_by("-created_on")
        .first()
    )
    return approval.run if approval else None


def _approval(run: PipelineRun | None, environment: str) -> ApprovalRequest | None:
    if run is None:
        return None
    return ApprovalRequest.objects.filter(run=run, environment=environment).first()


# --- the episodes, one function each -----------------------------------------------------------


def _proposed(ctx: Context) -> None:
    """demand-forecast: a performance drop waits for a data scientist's confirmation."""
    model = ctx.models["demand-forecast"]
    at = ctx.ago(minutes=42)
    signal = _signal(
        ctx,
        "proposed",
        model,
        kind=SignalKind.PERFORMANCE_DROP,
        severity=Severity.ERROR,
        at=at,
        fmt=SignalFormat.AZURE_MONITOR,
        source="demand-forecast-rmse-weekly",
        title="Weekly RMSE of demand-forecast above 38 (threshold 36)",
        details={"metric": "rmse", "value": 38.6, "threshold": 36},
        disposition=Disposition.PROPOSED,
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    signal.disposition_note = f"Episode #{episode.pk} waits for a confirmation."
    signal.save(update_fields=["disposition_note"])
    event_add(
        episode,
        EpisodeStep.PROPOSED,
        f"Proposed {_pipeline_name(episode)}: a data scientist or approver confirms it within "
        f"{episode.policy.get('proposal_expiry_hours', 24)} h.",
        at=at + timedelta(seconds=5),
    )


def _deferred(ctx: Context) -> None:
    """transaction-screening-rules: new data outside its nightly batch window."""
    model = ctx.models["transaction-screening-rules"]
    at = ctx.ago(minutes=25)
    signal = _signal(
        ctx,
        "deferred",
        model,
        kind=SignalKind.DATA_ARRIVAL,
        severity=Severity.INFO,
        at=at,
        fmt=SignalFormat.EVENT_GRID,
        source="/subscriptions/demo/storageAccounts/landing",
        title="Blob created: landing/screening/transactions/latest.parquet",
        attributes={"blob_path": "landing/screening/transactions/latest.parquet"},
        disposition=Disposition.DEFERRED,
    )
    opened = at + timedelta(seconds=5)
    episode = _episode(ctx, signal, opened_at=opened)
    policy = policy_for(model)
    not_before = next_business_start(policy, ctx.now)
    if not_before <= ctx.now + timedelta(minutes=5):  # the window is open now: tomorrow's
        not_before = next_business_start(policy, ctx.now + timedelta(hours=4))
    _set(episode, state=EpisodeState.DEFERRED, not_before=not_before)
    signal.disposition_note = f"Episode #{episode.pk} starts in business hours."
    signal.save(update_fields=["disposition_note"])
    event_add(
        episode,
        EpisodeStep.DEFERRED,
        f"Outside business hours: {_pipeline_name(episode)} is queued at "
        f"{not_before:%Y-%m-%d %H:%M %Z}.",
        at=opened,
    )


def _requested_open(ctx: Context) -> None:
    """inventory-anomaly: drift; its run request is retrying (ADO answered 503 twice)."""
    model = ctx.models["inventory-anomaly"]
    at = ctx.ago(minutes=7)
    signal = _signal(
        ctx,
        "requested",
        model,
        kind=SignalKind.DRIFT,
        at=at,
        fmt=SignalFormat.EVIDENTLY,
        source="evidently-inventory-daily",
        title="Data drift: 4 of 12 columns drifted (share 0.33 > 0.3)",
        details={"drifted_columns": 4, "columns": 12, "share": 0.33},
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    signal.disposition_note = f"Episode #{episode.pk} requested {_pipeline_name(episode)}."
    signal.save(update_fields=["disposition_note"])
    _requested(episode, at + timedelta(seconds=6))
    if episode.pipeline_id is None or not episode.pipeline.project.enabled:
        return
    request = trigger_run(
        pipeline=episode.pipeline,
        parameters=episode.parameters,
        reason=episode.parameters["trigger"],
        note=f"Operations episode #{episode.pk}: {episode.get_trigger_kind_display()} signal.",
    )
    # ADO answered 503 twice; the outbox tries again in a few minutes (the demo then runs it).
    RunRequest.objects.filter(pk=request.pk).update(
        attempts=2,
        error="ADO answered 503 Service Unavailable (TF400898); retrying.",
        next_attempt_at=ctx.now + timedelta(minutes=6),
    )
    _set(episode, run_request=request)


def _running(ctx: Context) -> None:
    """customer-lifetime-value: new data; its training runs now in ADO."""
    model = ctx.models["customer-lifetime-value"]
    run = (
        PipelineRun.objects.filter(
            pipeline__catalog_model=model, pipeline__kind=PipelineKind.TRAINING
        )
        .exclude(state=RunState.COMPLETED)
        .order_by("-queued_at")
        .first()
    )
    queued = run.queued_at if run and run.queued_at else ctx.ago(minutes=5)
    at = queued - timedelta(seconds=40)
    signal = _signal(
        ctx,
        "running",
        model,
        kind=SignalKind.DATA_ARRIVAL,
        severity=Severity.INFO,
        at=at,
        fmt=SignalFormat.EVENT_GRID,
        source="/subscriptions/demo/storageAccounts/landing",
        title="Blob created: landing/growth/clv/orders.parquet",
        attributes={"blob_path": "landing/growth/clv/orders.parquet"},
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    signal.disposition_note = f"Episode #{episode.pk} requested {_pipeline_name(episode)}."
    signal.save(update_fields=["disposition_note"])
    _requested(episode, at + timedelta(seconds=6))
    if run is not None:
        request = RunRequest(
            pipeline=run.pipeline,
            parameters=episode.parameters,
            reason=episode.parameters["trigger"],
            note=f"Operations episode #{episode.pk}: data arrival signal.",
            status=RunRequest.Status.SENT,
            sent_at=queued,
            run=run,
            attempts=1,
        )
        request.save()
        _set(episode, run_request=request)
    _ran(episode, queued, (run.started_at if run else None) or queued, None, run=run)


def _evaluating(ctx: Context) -> None:
    """marketing-uplift: the retraining succeeded; its version is not in the registry yet."""
    model = ctx.models["marketing-uplift"]
    at = ctx.ago(minutes=38)
    signal = _signal(
        ctx,
        "evaluating",
        model,
        kind=SignalKind.DRIFT,
        at=at,
        fmt=SignalFormat.DATABRICKS,
        source="job 1098402913431208 (uplift-monitoring)",
        title="uplift-monitoring failed: drift on campaign_channel",
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), ctx.ago(minutes=4))


def _releasing(ctx: Context) -> None:
    """credit-limit-rules: rescored; the release of the new rule set is requested."""
    model = ctx.models["credit-limit-rules"]
    at = ctx.ago(minutes=24)
    signal = _signal(
        ctx,
        "releasing",
        model,
        kind=SignalKind.THRESHOLD_BREACH,
        at=at,
        fmt=SignalFormat.AZURE_MONITOR,
        source="credit-limit-override-rate",
        title="Manual limit overrides above 6% of decisions",
        details={"metric": "override_rate", "value": 0.064, "threshold": 0.06},
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), ctx.ago(minutes=3))
    _released(episode, ctx.ago(minutes=3), "scored", None)


def _in_qa(ctx: Context) -> None:
    """fraud-detector: AUC dropped; the retrained v7 beat the champion and waits at QA."""
    model = ctx.models["fraud-detector"]
    run = _release_run(model, Environment.QA)
    qa = _approval(run, Environment.QA)
    at = (qa.created_on if qa else ctx.ago(hours=3)) - timedelta(minutes=48)
    signal = _signal(
        ctx,
        "in-qa",
        model,
        kind=SignalKind.PERFORMANCE_DROP,
        severity=Severity.ERROR,
        at=at,
        fmt=SignalFormat.AZURE_MONITOR,
        source="fraud-auc-drop",
        title="fraud-detector AUC below 0.93 on yesterday's labelled transactions",
        details={"metric": "auc", "value": 0.921, "threshold": 0.93},
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=33))
    _evaluated(episode, at + timedelta(minutes=38), 7, 5)
    _released(episode, at + timedelta(minutes=38), 7, run)
    _qa(episode, at + timedelta(minutes=42), 7, qa)
    # A second alert of the same rule joined the open episode.
    _signal(
        ctx,
        "in-qa-joined",
        model,
        kind=SignalKind.PERFORMANCE_DROP,
        severity=Severity.ERROR,
        at=at + timedelta(minutes=20),
        fmt=SignalFormat.AZURE_MONITOR,
        source="fraud-auc-drop",
        title="fraud-detector AUC below 0.93 (re-evaluated)",
        disposition=Disposition.JOINED,
        note=f"Episode #{episode.pk} is open (run in progress).",
        episode=episode,
    )


def _in_prod(ctx: Context) -> None:
    """churn-predictor: new data; the retrained v6 passed QA and waits at PROD."""
    model = ctx.models["churn-predictor"]
    run = _release_run(model, Environment.PROD)
    qa, prod = _approval(run, Environment.QA), _approval(run, Environment.PROD)
    at = (qa.created_on if qa else ctx.ago(hours=26)) - timedelta(minutes=55)
    signal = _signal(
        ctx,
        "in-prod",
        model,
        kind=SignalKind.DATA_ARRIVAL,
        severity=Severity.INFO,
        at=at,
        fmt=SignalFormat.EVENT_GRID,
        source="/subscriptions/demo/storageAccounts/landing",
        title="Blob created: landing/growth/churn/subscriptions.parquet",
        attributes={"blob_path": "landing/growth/churn/subscriptions.parquet"},
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5))
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=41))
    _evaluated(episode, at + timedelta(minutes=46), 6, 5)
    _released(episode, at + timedelta(minutes=46), 6, run)
    _qa(episode, at + timedelta(minutes=50), 6, qa)
    _qa_approved(episode, at + timedelta(hours=2), 6, qa, prod)


# --- closed episodes, one per outcome ----------------------------------------------------------


def _closed(ctx, key, name, *, kind, days, title, fmt=SignalFormat.GENERIC, severity=None, **kw):
    model = ctx.models[name]
    at = ctx.ago(days=days)
    signal = _signal(
        ctx,
        key,
        model,
        kind=kind,
        severity=severity or Severity.WARNING,
        at=at,
        fmt=fmt,
        source=kw.pop("source", "monitoring"),
        title=title,
        disposition=kw.pop("disposition", Disposition.STARTED),
    )
    episode = _episode(ctx, signal, opened_at=at + timedelta(seconds=5), **kw)
    signal.disposition_note = f"Episode #{episode.pk}."
    signal.save(update_fields=["disposition_note"])
    return episode, at


def _reached_prod(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-reached-prod",
        LOOP_MODEL,
        kind=SignalKind.DRIFT,
        days=12,
        title="Drift on bureau_score_band (PSI 0.27)",
        source="evidently-credit-weekly",
        fmt=SignalFormat.EVIDENTLY,
    )
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=50))
    _evaluated(episode, at + timedelta(minutes=55), 4, 3)
    _released(episode, at + timedelta(minutes=55), 4, None)
    _qa(episode, at + timedelta(hours=1), 4, None)
    _qa_approved(episode, at + timedelta(hours=3), 4, None, None)
    done = at + timedelta(hours=22)
    _set(episode, prod_decided_at=done)
    event_add(episode, EpisodeStep.PROD_DECIDED, "PROD approved by Paul Prodowner.", at=done)
    episode_close(episode, EpisodeOutcome.REACHED_PROD, "Version 4 was approved for PROD.", at=done)


def _held(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-held",
        "marketing-uplift",
        kind=SignalKind.PERFORMANCE_DROP,
        days=9,
        title="Uplift Qini below 0.05 on the spring campaign",
        source="uplift-qini-weekly",
        fmt=SignalFormat.AZURE_MONITOR,
    )
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=36))
    evaluated = at + timedelta(minutes=40)
    result = _evaluated(episode, evaluated, 3, 2)
    episode_close(episode, EpisodeOutcome.HELD, evaluation_sentence(result), at=evaluated)


def _scored(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-scored",
        "transaction-screening-rules",
        kind=SignalKind.DATA_ARRIVAL,
        days=5,
        title="Blob created: landing/screening/transactions/2024-w1.parquet",
        severity=Severity.INFO,
        fmt=SignalFormat.EVENT_GRID,
        release_after_scoring=False,
    )
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=14))
    episode_close(
        episode, EpisodeOutcome.SCORED, "The scoring run succeeded.", at=at + timedelta(minutes=14)
    )


def _run_failed(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-run-failed",
        "demand-forecast",
        kind=SignalKind.THRESHOLD_BREACH,
        days=15,
        title="Forecast bias above 8% for the north region",
        source="demand-bias-daily",
    )
    _set(episode, decided_at=at + timedelta(minutes=20))
    event_add(
        episode, EpisodeStep.CONFIRMED, f"Confirmed by {SCIENTIST}.", at=at + timedelta(minutes=20)
    )
    _requested(episode, at + timedelta(minutes=20), actor=SCIENTIST)
    end = at + timedelta(minutes=44)
    _ran(episode, at + timedelta(minutes=21), at + timedelta(minutes=22), end, result="Failed")
    episode_close(episode, EpisodeOutcome.RUN_FAILED, "The run ended failed.", at=end)


def _no_version(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-no-version",
        "inventory-anomaly",
        kind=SignalKind.DRIFT,
        days=8,
        title="Data drift: 5 of 12 columns drifted",
        source="evidently-inventory-daily",
        fmt=SignalFormat.EVIDENTLY,
    )
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=30))
    episode_close(
        episode,
        EpisodeOutcome.NO_VERSION,
        "No version was registered within 24 h of the successful run.",
        at=at + timedelta(hours=24, minutes=30),
    )
    # Its monitoring kept alerting while the run was on; one alert fell in the cooldown.
    _signal(
        ctx,
        "suppressed",
        ctx.models["inventory-anomaly"],
        kind=SignalKind.DRIFT,
        at=at + timedelta(hours=25),
        fmt=SignalFormat.EVIDENTLY,
        source="evidently-inventory-daily",
        title="Data drift: 5 of 12 columns drifted (next day)",
        disposition=Disposition.SUPPRESSED,
        note="Cooldown: a run was requested 25 h ago; the policy allows the next one after "
        "240 min.",
    )


def _rejected(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-rejected",
        "marketing-uplift",
        kind=SignalKind.DATA_ARRIVAL,
        days=19,
        title="Blob created: landing/growth/campaigns/export.parquet",
        severity=Severity.INFO,
        fmt=SignalFormat.EVENT_GRID,
    )
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=35))
    _evaluated(episode, at + timedelta(minutes=40), 2, 1)
    _released(episode, at + timedelta(minutes=40), 2, None)
    _qa(episode, at + timedelta(minutes=45), 2, None)
    _qa_approved(episode, at + timedelta(hours=2), 2, None, None)
    done = at + timedelta(hours=7)
    _set(episode, prod_decided_at=done)
    event_add(episode, EpisodeStep.PROD_DECIDED, "PROD rejected by Paul Prodowner.", at=done)
    episode_close(
        episode,
        EpisodeOutcome.REJECTED,
        "Rejected at PROD by Paul Prodowner: uplift not significant in QA.",
        at=done,
    )


def _declined(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-declined",
        "demand-forecast",
        kind=SignalKind.PERFORMANCE_DROP,
        days=3,
        title="Weekly RMSE of demand-forecast above 36",
        source="demand-forecast-rmse-weekly",
        fmt=SignalFormat.AZURE_MONITOR,
        disposition=Disposition.PROPOSED,
    )
    event_add(episode, EpisodeStep.PROPOSED, "Proposed the training.", at=at + timedelta(seconds=5))
    done = at + timedelta(hours=2)
    reason = "Holiday week: the drop is expected and the data is not representative."
    _set(episode, decided_at=done)
    event_add(
        episode, EpisodeStep.DECLINED, f"Declined by {SCIENTIST}: {reason}", at=done,
        actor_name=SCIENTIST,
    )  # fmt: skip
    episode_close(episode, EpisodeOutcome.DECLINED, f"Declined by {SCIENTIST}: {reason}", at=done)


def _expired(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-expired",
        "demand-forecast",
        kind=SignalKind.DRIFT,
        days=6,
        title="Drift on promo_flag",
        source="demand-drift-daily",
        disposition=Disposition.PROPOSED,
    )
    event_add(episode, EpisodeStep.PROPOSED, "Proposed the training.", at=at + timedelta(seconds=5))
    episode_close(
        episode, EpisodeOutcome.EXPIRED, "Nobody confirmed it within 24 h.",
        at=at + timedelta(hours=24),
    )  # fmt: skip


def _dry_run(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-dry-run",
        "claims-triage-rules",
        kind=SignalKind.THRESHOLD_BREACH,
        days=2,
        title="Claims routed to manual review above 30%",
        source="claims-manual-share",
        disposition=Disposition.DRY_RUN,
    )
    episode_close(
        episode,
        EpisodeOutcome.DRY_RUN,
        f"Dry run: would have queued {_pipeline_name(episode)} with {episode.parameters}.",
        at=at + timedelta(seconds=5),
    )


def _request_failed(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-request-failed",
        "customer-lifetime-value",
        kind=SignalKind.DRIFT,
        days=4,
        title="Drift on order_frequency",
        source="clv-drift-weekly",
    )
    _requested(episode, at + timedelta(seconds=6))
    episode_close(
        episode,
        EpisodeOutcome.REQUEST_FAILED,
        "ADO did not queue the run: 403 the service connection may not queue this pipeline.",
        at=at + timedelta(minutes=30),
    )


def _canceled(ctx: Context) -> None:
    episode, at = _closed(
        ctx,
        "closed-canceled",
        "churn-predictor",
        kind=SignalKind.DRIFT,
        days=10,
        title="Drift on tenure_months",
        source="evidently-churn-weekly",
        fmt=SignalFormat.EVIDENTLY,
    )
    _requested(episode, at + timedelta(seconds=6))
    _ran(episode, at + timedelta(minutes=1), at + timedelta(minutes=2), at + timedelta(minutes=40))
    _evaluated(episode, at + timedelta(minutes=45), 5, 4)
    _released(episode, at + timedelta(minutes=45), 5, None)
    episode_close(
        episode,
        EpisodeOutcome.CANCELED,
        "The release run ended without reaching a PROD approval.",
        at=at + timedelta(minutes=70),
    )


# --- signals that opened nothing ---------------------------------------------------------------


def _unmatched(ctx: Context) -> None:
    _signal(
        ctx,
        "unmatched",
        None,
        kind=SignalKind.THRESHOLD_BREACH,
        at=ctx.ago(minutes=18),
        fmt=SignalFormat.AZURE_MONITOR,
        source="ltv-input-freshness",
        title="Orders feed older than 26 h (alert rule ltv-input-freshness)",
        attributes={
            "alert_rule": "ltv-input-freshness",
            "resource_ids": ["/subscriptions/demo/resourceGroups/growth/workspaces/growth-ws"],
            "tags": {"team": "growth"},
        },
        disposition=Disposition.UNMATCHED,
        note="No catalog model matches this signal.",
    )


def _ignored_and_resolved(ctx: Context) -> None:
    _signal(
        ctx,
        "ignored",
        ctx.models["demand-forecast"],
        kind=SignalKind.DRIFT,
        severity=Severity.INFO,
        at=ctx.ago(hours=5),
        source="demand-drift-daily",
        title="Slight drift on weather_index",
        disposition=Disposition.IGNORED,
        note="Severity Informational is below the policy's minimum Warning.",
    )
    fired = Signal.objects.filter(dedupe_key=KEY_PREFIX + "in-qa").first()
    if fired is None:
        return
    resolved = _signal(
        ctx,
        "resolved",
        fired.catalog_model,
        kind=SignalKind.RESOLVED,
        severity=fired.severity,
        at=ctx.ago(minutes=50),
        fmt=SignalFormat.AZURE_MONITOR,
        source=fired.source_ref,
        title=f"Resolved: {fired.title}",
        disposition=Disposition.RESOLVES,
        note=f"Resolves signal #{fired.pk}.",
        episode=fired.episode,
    )
    Signal.objects.filter(pk=resolved.pk).update(resolves=fired)
    Signal.objects.filter(pk=fired.pk).update(resolved_at=resolved.observed_at)


# (key of the first seeded signal, model it needs or None, the function writing it)
SEEDS = (
    ("proposed", "demand-forecast", _proposed),
    ("deferred", "transaction-screening-rules", _deferred),
    ("requested", "inventory-anomaly", _requested_open),
    ("running", "customer-lifetime-value", _running),
    ("evaluating", "marketing-uplift", _evaluating),
    ("releasing", "credit-limit-rules", _releasing),
    ("in-qa", "fraud-detector", _in_qa),
    ("in-prod", "churn-predictor", _in_prod),
    ("closed-reached-prod", LOOP_MODEL, _reached_prod),
    ("closed-held", "marketing-uplift", _held),
    ("closed-scored", "transaction-screening-rules", _scored),
    ("closed-run-failed", "demand-forecast", _run_failed),
    ("closed-no-version", "inventory-anomaly", _no_version),
    ("closed-rejected", "marketing-uplift", _rejected),
    ("closed-declined", "demand-forecast", _declined),
    ("closed-expired", "demand-forecast", _expired),
    ("closed-dry-run", "claims-triage-rules", _dry_run),
    ("closed-request-failed", "customer-lifetime-value", _request_failed),
    ("closed-canceled", "churn-predictor", _canceled),
    ("unmatched", None, _unmatched),
    ("ignored", "demand-forecast", _ignored_and_resolved),
)


def seed_history(*, now: datetime | None = None) -> dict:
    """Write what of the demo's operations history is missing; return what was written."""
    now = now or timezone.now()
    names = {name for _, name, _ in SEEDS if name} | set(TRIGGER_POLICIES)
    models = {m.name: m for m in CatalogModel.objects.filter(name__in=names)}
    triggers, promotions = policies_ensure(models)
    ctx = Context(now=now, models=models)
    written = 0
    for key, name, write in SEEDS:
        if name is not None and name not in models:
            continue
        if Signal.objects.filter(dedupe_key=KEY_PREFIX + key).exists():
            continue
        with transaction.atomic():
            write(ctx)
        written += 1
    return {
        "trigger_policies": triggers,
        "promotion_policies": promotions,
        "written": written,
        "episodes": Episode.objects.filter(first_signal__dedupe_key__startswith=KEY_PREFIX).count(),
    }
