"""Reads the operations pages and API share: the inbox (open episodes, proposals, unmatched
and all signals), an episode with its timeline and durations, a signal, and a model's
operations summary. No state changes here (services/ does those)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from django.db.models import Case, Count, IntegerField, Max, Q, QuerySet, Value, When
from django.db.models.functions import TruncWeek
from django.utils import timezone

from registry.models import CatalogModel

from .models import (
    OPEN_STATES,
    Episode,
    EpisodeEvent,
    EpisodeOutcome,
    EpisodeState,
    IntakeOutcome,
    ModelOperations,
    RawSignal,
    Signal,
    SignalKind,
    TriggerPolicy,
)
from .services.policies import policy_for

TABS = ("episodes", "proposals", "unmatched", "signals")
EPISODE_SORTS = {
    "opened": ("opened_at", "pk"),
    "model": ("catalog_model__name", "opened_at", "pk"),
    "state": ("state", "opened_at", "pk"),
}
SIGNAL_SORTS = {
    "received": ("received_at", "pk"),
    "kind": ("kind", "-received_at", "-pk"),
    "model": ("catalog_model__name", "-received_at", "-pk"),
}
SUMMARY_DAYS = 90


# --- Episodes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeFilters:
    """``state``: "open" (the default), "closed", "all" or one EpisodeState value;
    ``stalled``: None any, True only stalled, False only not stalled."""

    model: str = ""
    state: str = "open"
    stalled: bool | None = None
    kind: str = ""
    trigger_kind: str = ""
    q: str = ""
    sort: str = ""

    @property
    def filtered(self) -> bool:
        return bool(
            self.model or self.stalled is not None or self.kind or self.trigger_kind or self.q
        )


def _episodes_base() -> QuerySet:
    return Episode.objects.select_related(
        "catalog_model", "first_signal", "pipeline", "run", "challenger", "champion"
    ).annotate(
        stall_rank=Case(
            When(~Q(stalled_reason=""), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )


def episode_list(*, filters: EpisodeFilters) -> QuerySet:
    """Episodes by the filters; by default stalled first, then the oldest first (what waits
    longest needs a look first)."""
    qs = _episodes_base()
    if filters.state == "open":
        qs = qs.filter(state__in=OPEN_STATES)
    elif filters.state == "closed":
        qs = qs.filter(state=EpisodeState.CLOSED)
    elif filters.state and filters.state != "all":
        qs = qs.filter(state=filters.state)
    if filters.model:
        qs = qs.filter(catalog_model__name=filters.model)
    if filters.stalled is True:
        qs = qs.exclude(stalled_reason="")
    elif filters.stalled is False:
        qs = qs.filter(stalled_reason="")
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.trigger_kind:
        qs = qs.filter(trigger_kind=filters.trigger_kind)
    if filters.q:
        qs = qs.filter(
            Q(catalog_model__name__icontains=filters.q)
            | Q(outcome_note__icontains=filters.q)
            | Q(stalled_reason__icontains=filters.q)
            | Q(first_signal__title__icontains=filters.q)
        )
    return qs.order_by(*_order(filters.sort, EPISODE_SORTS, ("stall_rank", "opened_at", "pk")))


def _order(sort: str, sorts: dict, default: tuple) -> tuple:
    key = sort.lstrip("-")
    if key not in sorts:
        return default
    fields = sorts[key]
    if sort.startswith("-"):
        return tuple(f[1:] if f.startswith("-") else f"-{f}" for f in fields)
    return fields


def proposals_waiting(*, model: str = "") -> QuerySet:
    """Proposals nobody confirmed or declined yet, oldest first."""
    return episode_list(
        filters=EpisodeFilters(model=model, state=EpisodeState.PROPOSED, sort="opened")
    )


def episode_get(pk: int) -> Episode:
    return _episodes_base().select_related("decided_by", "qa_approval", "prod_approval").get(pk=pk)


@dataclass(frozen=True)
class Duration:
    key: str
    label: str
    seconds: float | None
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def reached(self) -> bool:
        return self.seconds is not None


def _between(start, end) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def episode_durations(episode: Episode) -> list[Duration]:
    """The four spans the issue names; each None while its end is not reached."""
    e = episode
    spans = [
        ("signal_to_run_start", "Signal to run start", e.signal_at, e.run_started_at),
        ("training", "Training (run start to finish)", e.run_started_at, e.run_finished_at),
        ("version_to_qa", "Version to QA requested", e.version_registered_at, e.qa_requested_at),
        ("qa_to_prod", "QA requested to PROD decided", e.qa_requested_at, e.prod_decided_at),
    ]
    return [Duration(k, label, _between(s, end), s, end) for k, label, s, end in spans]


def episode_events(episode: Episode) -> list[EpisodeEvent]:
    return list(episode.events.order_by("at", "pk"))


@dataclass(frozen=True)
class Evaluation:
    """The comparison as the episode stored it, with what the template and API need."""

    data: dict

    def __getattr__(self, name):
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def has_metric(self) -> bool:
        return self.data.get("metric") is not None

    @property
    def relative_percent(self) -> float | None:
        rel = self.data.get("relative_change")
        return None if rel is None else rel * 100

    @property
    def min_relative_percent(self) -> float | None:
        rel = self.data.get("min_relative_change")
        return None if rel is None else rel * 100

    @property
    def sign(self) -> int:
        return 1 if self.data.get("greater_is_better", True) else -1

    @property
    def absolute_ok(self) -> bool | None:
        """Whether the change is better by at least the policy's minimum (colours the
        numbers; the stored verdict is the authority)."""
        change = self.data.get("absolute_change")
        if change is None:
            return None
        return self.sign * change > 0 and self.sign * change >= (
            self.data.get("min_absolute_change") or 0
        )

    @property
    def relative_ok(self) -> bool | None:
        change = self.data.get("relative_change")
        if change is None:
            return None
        return self.sign * change > 0 and self.sign * change >= (
            self.data.get("min_relative_change") or 0
        )


def episode_evaluation(episode: Episode) -> Evaluation | None:
    return Evaluation(episode.evaluation) if episode.evaluation else None


@dataclass
class EpisodeDetail:
    episode: Episode
    events: list[EpisodeEvent]
    durations: list[Duration]
    evaluation: Evaluation | None
    signals: list[Signal]


def episode_detail(pk: int) -> EpisodeDetail:
    episode = episode_get(pk)
    return EpisodeDetail(
        episode=episode,
        events=episode_events(episode),
        durations=episode_durations(episode),
        evaluation=episode_evaluation(episode),
        signals=list(
            episode.signals.select_related("catalog_model").order_by("received_at", "pk")[:100]
        ),
    )


# --- Signals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalFilters:
    model: str = ""
    kind: str = ""
    disposition: str = ""
    format: str = ""
    unmatched: bool = False
    q: str = ""
    sort: str = ""

    @property
    def filtered(self) -> bool:
        return bool(self.model or self.kind or self.disposition or self.format or self.q)


def signal_list(*, filters: SignalFilters) -> QuerySet:
    """Signals, newest first, by the filters; ``unmatched``: those that named no model."""
    qs = Signal.objects.select_related("catalog_model", "episode", "rule")
    if filters.unmatched:
        qs = qs.filter(catalog_model__isnull=True)
    if filters.model:
        qs = qs.filter(catalog_model__name=filters.model)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.disposition:
        qs = qs.filter(disposition=filters.disposition)
    if filters.format:
        qs = qs.filter(format=filters.format)
    if filters.q:
        qs = qs.filter(
            Q(title__icontains=filters.q)
            | Q(source_ref__icontains=filters.q)
            | Q(dedupe_key__icontains=filters.q)
        )
    sort = filters.sort or "-received"
    return qs.order_by(*_order(sort, SIGNAL_SORTS, ("-received_at", "-pk")))


def signal_get(pk: int) -> Signal:
    return Signal.objects.select_related("raw", "catalog_model", "episode", "rule", "resolves").get(
        pk=pk
    )


def raw_body_pretty(signal: Signal) -> str:
    """The raw payload as indented JSON when it parses, else as it came (the template escapes)."""
    body = signal.raw.body if signal.raw_id else ""
    try:
        return json.dumps(json.loads(body), indent=2, sort_keys=False, ensure_ascii=False)
    except (ValueError, TypeError):
        return body


# --- Counts for tabs, home card and nav -------------------------------------------------


@dataclass(frozen=True)
class InboxCounts:
    episodes: int
    stalled: int
    proposals: int
    unmatched: int
    signals: int


def inbox_counts(*, model: str = "") -> InboxCounts:
    episodes = Episode.objects.filter(state__in=OPEN_STATES)
    signals = Signal.objects.all()
    if model:
        episodes = episodes.filter(catalog_model__name=model)
        signals = signals.filter(catalog_model__name=model)
    ep = episodes.aggregate(
        total=Count("pk"),
        stalled=Count("pk", filter=~Q(stalled_reason="")),
        proposals=Count("pk", filter=Q(state=EpisodeState.PROPOSED)),
    )
    unmatched = 0 if model else Signal.objects.filter(catalog_model__isnull=True).count()
    return InboxCounts(
        episodes=ep["total"],
        stalled=ep["stalled"],
        proposals=ep["proposals"],
        unmatched=unmatched,
        signals=signals.count(),
    )


def model_choices() -> list[str]:
    """Models that have signals or episodes (the filter bar's list)."""
    return list(
        CatalogModel.objects.filter(Q(signals__isnull=False) | Q(episodes__isnull=False))
        .values_list("name", flat=True)
        .distinct()
        .order_by("name")
    )


# --- A model's operations summary -------------------------------------------------------


@dataclass(frozen=True)
class WeekCount:
    week: dt.date
    signals: int
    episodes: int


@dataclass
class ModelSummary:
    catalog_model: CatalogModel
    weeks: list[WeekCount]
    signals_total: int
    episodes_total: int
    open_episodes: int
    recent_episodes: list[Episode]
    policy: TriggerPolicy
    last_signal_at: dt.datetime | None
    last_monitoring_signal_at: dt.datetime | None
    last_run_requested_at: dt.datetime | None
    days: int = SUMMARY_DAYS
    max_count: int = field(default=0)

    @property
    def policy_is_default(self) -> bool:
        return self.policy.pk is None

    @property
    def policy_scope(self) -> str:
        return "Built-in default" if self.policy.pk is None else str(self.policy)


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def model_summary(
    catalog_model: CatalogModel, *, days: int = SUMMARY_DAYS, now=None
) -> ModelSummary:
    """Signals and episodes per week over the last ``days``, the recent episodes, the policy
    in effect and when monitoring was last heard from."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    signal_weeks = dict(
        Signal.objects.filter(catalog_model=catalog_model, received_at__gte=since)
        .annotate(week=TruncWeek("received_at", tzinfo=dt.UTC))
        .values("week")
        .annotate(n=Count("pk"))
        .values_list("week", "n")
    )
    episode_weeks = dict(
        Episode.objects.filter(catalog_model=catalog_model, opened_at__gte=since)
        .annotate(week=TruncWeek("opened_at", tzinfo=dt.UTC))
        .values("week")
        .annotate(n=Count("pk"))
        .values_list("week", "n")
    )
    signal_weeks = {k.date(): v for k, v in signal_weeks.items()}
    episode_weeks = {k.date(): v for k, v in episode_weeks.items()}
    weeks = []
    day = _week_start(since.astimezone(dt.UTC).date())
    last = _week_start(now.astimezone(dt.UTC).date())
    while day <= last:
        weeks.append(WeekCount(day, signal_weeks.get(day, 0), episode_weeks.get(day, 0)))
        day += dt.timedelta(days=7)
    state = ModelOperations.objects.filter(catalog_model=catalog_model).first()
    episodes = Episode.objects.filter(catalog_model=catalog_model)
    return ModelSummary(
        catalog_model=catalog_model,
        weeks=weeks,
        signals_total=sum(w.signals for w in weeks),
        episodes_total=sum(w.episodes for w in weeks),
        open_episodes=episodes.filter(state__in=OPEN_STATES).count(),
        recent_episodes=list(
            episodes.select_related("challenger", "first_signal").order_by("-opened_at", "-pk")[:5]
        ),
        policy=policy_for(catalog_model),
        last_signal_at=state.last_signal_at if state else None,
        last_monitoring_signal_at=state.last_monitoring_signal_at if state else None,
        last_run_requested_at=state.last_run_requested_at if state else None,
        days=days,
        max_count=max([max(w.signals, w.episodes) for w in weeks] or [0]),
    )


def policies_in_effect(models=None) -> list[tuple[CatalogModel, TriggerPolicy]]:
    """Per catalog model (all, or those given), the trigger policy that applies to it."""
    models = models if models is not None else CatalogModel.objects.order_by("name")
    return [(m, policy_for(m)) for m in models]


# --- The approval page's "Why this version exists" --------------------------------------


def episode_for_approval(approval) -> Episode | None:
    """The episode that led to this approval: it names the approval, or its challenger is
    the approval's version (the newest such episode)."""
    qs = Episode.objects.select_related("first_signal", "challenger", "champion", "catalog_model")
    found = qs.filter(Q(qa_approval=approval) | Q(prod_approval=approval)).first()
    if found is None and approval.model_version_id:
        found = qs.filter(challenger_id=approval.model_version_id).order_by("-opened_at").first()
    return found


# --- What maturity reads: episodes and heartbeats of many models at once -----------------

# The kinds of signal monitoring sends that may start a run (data arrival is not monitoring;
# a Resolved signal only closes an alert, but it is monitoring heard from all the same).
MONITORING_TRIGGER_KINDS = (
    SignalKind.DRIFT,
    SignalKind.THRESHOLD_BREACH,
    SignalKind.PERFORMANCE_DROP,
)
# Where an episode is (or how it ended) once its run has succeeded.
_RUN_SUCCEEDED_STATES = (
    EpisodeState.EVALUATING,
    EpisodeState.RELEASING,
    EpisodeState.IN_QA,
    EpisodeState.IN_PROD,
)
_RUN_SUCCEEDED_OUTCOMES = (
    EpisodeOutcome.REACHED_PROD,
    EpisodeOutcome.HELD,
    EpisodeOutcome.SCORED,
    EpisodeOutcome.NO_VERSION,
    EpisodeOutcome.REJECTED,
)


@dataclass(frozen=True)
class EpisodeFact:
    """One episode as maturity weighs it: the signal that started it, its run, how it ended."""

    pk: int
    catalog_model_id: int
    kind: str
    trigger_kind: str
    state: str
    outcome: str
    signal_at: dt.datetime
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    signal_id: int | None
    signal_observed_at: dt.datetime | None
    run_id: int | None
    run_name: str
    run_pipeline_name: str
    run_result: str
    run_started_at: dt.datetime | None
    run_requested_at: dt.datetime | None
    challenger_source: str | None
    challenger_model: str | None
    challenger_version: int | None

    @property
    def arrived_at(self) -> dt.datetime:
        """When the first signal says its event happened (the episode's copy if it is gone)."""
        return self.signal_observed_at or self.signal_at

    @property
    def run_began_at(self) -> dt.datetime | None:
        """The run's start, or when it was requested if it has not started (or is not read)."""
        return self.run_started_at or self.run_requested_at

    @property
    def run_succeeded(self) -> bool:
        if self.run_result:
            return self.run_result == "succeeded"
        return self.state in _RUN_SUCCEEDED_STATES or (
            self.state == EpisodeState.CLOSED
            and self.outcome in _RUN_SUCCEEDED_OUTCOMES
            and self.run_id is not None
        )

    @property
    def from_data_arrival(self) -> bool:
        return self.trigger_kind == SignalKind.DATA_ARRIVAL

    @property
    def from_monitoring(self) -> bool:
        return self.trigger_kind in MONITORING_TRIGGER_KINDS

    @property
    def reached_prod(self) -> bool:
        return self.state == EpisodeState.CLOSED and self.outcome == EpisodeOutcome.REACHED_PROD


_EPISODE_COLUMNS = (
    "pk",
    "catalog_model_id",
    "kind",
    "trigger_kind",
    "state",
    "outcome",
    "signal_at",
    "opened_at",
    "closed_at",
    "first_signal_id",
    "first_signal__observed_at",
    "run_id",
    "run__name",
    "run__pipeline__name",
    "run__result",
    "run_started_at",
    "run__started_at",
    "run_requested_at",
    "run__queued_at",
    "challenger__registered_model__source__name",
    "challenger__registered_model__name",
    "challenger__version",
)


def episodes_of_models(model_ids: list[int], *, since: dt.datetime) -> dict[int, list[EpisodeFact]]:
    """The episodes of the models opened or closed since ``since``, newest first, by model:
    one query for the whole batch."""
    found: dict[int, list[EpisodeFact]] = {}
    if not model_ids:
        return found
    rows = (
        Episode.objects.filter(catalog_model_id__in=model_ids)
        .filter(Q(opened_at__gte=since) | Q(closed_at__gte=since))
        .order_by("-opened_at", "-pk")
        .values_list(*_EPISODE_COLUMNS)
    )
    for row in rows.iterator(chunk_size=2000):
        (
            pk,
            model_id,
            kind,
            trigger_kind,
            state,
            outcome,
            signal_at,
            opened_at,
            closed_at,
            signal_id,
            observed_at,
            run_id,
            run_name,
            pipeline_name,
            run_result,
            started_at,
            run_started,
            requested_at,
            run_queued,
            source,
            model_name,
            version,
        ) = row
        found.setdefault(model_id, []).append(
            EpisodeFact(
                pk=pk,
                catalog_model_id=model_id,
                kind=kind,
                trigger_kind=trigger_kind,
                state=state,
                outcome=outcome,
                signal_at=signal_at,
                opened_at=opened_at,
                closed_at=closed_at,
                signal_id=signal_id,
                signal_observed_at=observed_at,
                run_id=run_id,
                run_name=run_name or "",
                run_pipeline_name=pipeline_name or "",
                run_result=run_result or "",
                run_started_at=started_at or run_started,
                run_requested_at=requested_at or run_queued,
                challenger_source=source,
                challenger_model=model_name,
                challenger_version=version,
            )
        )
    return found


@dataclass(frozen=True)
class Heartbeat:
    """Monitoring heard from: the signals received since the window's start (data arrival
    excluded) and when monitoring was last heard (a clean report too, which keeps no signal)."""

    signals: int
    last_heard_at: dt.datetime | None


def monitoring_heartbeats(model_ids: list[int], *, since: dt.datetime) -> dict[int, Heartbeat]:
    """Per model that monitoring was ever heard from: two queries for the whole batch."""
    if not model_ids:
        return {}
    counted = {
        model_id: (n, last)
        for model_id, n, last in Signal.objects.filter(
            catalog_model_id__in=model_ids, received_at__gte=since
        )
        .exclude(kind=SignalKind.DATA_ARRIVAL)
        .values("catalog_model_id")
        .annotate(n=Count("pk"), last=Max("received_at"))
        .values_list("catalog_model_id", "n", "last")
    }
    heard = dict(
        ModelOperations.objects.filter(
            catalog_model_id__in=model_ids, last_monitoring_signal_at__isnull=False
        ).values_list("catalog_model_id", "last_monitoring_signal_at")
    )
    found = {}
    for model_id in set(counted) | set(heard):
        n, last_signal = counted.get(model_id, (0, None))
        times = [t for t in (last_signal, heard.get(model_id)) if t is not None]
        found[model_id] = Heartbeat(signals=n, last_heard_at=max(times) if times else None)
    return found


def signals_ever_received() -> bool:
    """Whether any sender ever reached a signal endpoint with something the portal took
    (not refused or rejected): until then, what monitoring does is invisible to it."""
    return (
        RawSignal.objects.exclude(outcome__in=[IntakeOutcome.REFUSED, IntakeOutcome.REJECTED])
        .only("pk")
        .exists()
    )
