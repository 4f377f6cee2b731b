"""Levels 4 and 5: new data starts training soon after it lands, and monitoring closes the
loop (monitoring is heard from, a monitoring alert retrains, and the retrained version is
promoted).

The strong evidence is what operations saw (docs/operations.md): an episode a data-arrival
or monitoring signal started, its run, and how it ended; monitoring's heartbeat. A run that
only says of itself that new data or drift started it (its ``trigger`` parameter, or ADO's
build reason for a resource trigger) still counts when no episode stands behind it, but the
result is labelled as weaker evidence (``Strength.DECLARED``). A run an episode started is
judged by its episode, never by its parameter (operations sets that parameter too).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from operations.models import EpisodeOutcome, EpisodeState
from operations.selectors import EpisodeFact

from ..evidence import (
    Link,
    ModelEvidence,
    RunFact,
    episode_url,
    run_url,
    signal_url,
    version_url,
)
from ..models import Applicability
from .base import (
    DATA_REASONS,
    DATA_TRIGGERS,
    DECLARED_BY_PARAMETER,
    DECLARED_BY_REASON,
    CriterionDef,
    Outcome,
    Strength,
    ado_not_measured,
    days_of,
    failed,
    is_data_triggered,
    is_monitoring_triggered,
    not_measured,
    passed,
    plural,
    releases_unread,
    setting,
    train_kind,
)

MAX_LAG_PAIRS = 10  # signal -> run pairs kept in the data lag's measure


# Shared -----------------------------------------------------------------------------------


def _signal_link(episode: EpisodeFact, word: str) -> Link:
    if episode.signal_id is None:  # the signal is gone: the episode keeps its time
        return Link(f"episode #{episode.pk}", episode_url(episode.pk))
    return Link(f"{word} signal #{episode.signal_id}", signal_url(episode.signal_id))


def _run_link(episode: EpisodeFact) -> Link:
    if episode.run_id is None:
        return Link(f"episode #{episode.pk}", episode_url(episode.pk))
    name = episode.run_name or episode.run_id
    return Link(f"{episode.run_pipeline_name or 'run'} #{name}", run_url(episode.run_id))


def _in_window(ev: ModelEvidence, episode: EpisodeFact) -> bool:
    return episode.opened_at >= ev.window_start


def _declared_label(runs: list[RunFact], triggers: set[str], reasons: set[str]) -> str:
    """Why a run's own word is weaker evidence: its parameter, or else ADO's build reason."""
    if any(r.trigger.lower() in triggers for r in runs):
        return DECLARED_BY_PARAMETER
    if any(r.reason.lower() in reasons for r in runs):
        return DECLARED_BY_REASON
    return DECLARED_BY_PARAMETER


def _hours(value: float) -> str:
    return f"{value:.1f} h"


# Level 4 ----------------------------------------------------------------------------------


def _arrival_episodes(ev: ModelEvidence) -> list[EpisodeFact]:
    """Episodes a data-arrival signal started in the window whose run succeeded."""
    return [e for e in ev.episodes if e.from_data_arrival and e.run_succeeded and _in_window(ev, e)]


def _declared_data_runs(ev: ModelEvidence) -> list[RunFact]:
    """Succeeded runs that say new data started them, with no episode behind them."""
    theirs = ev.episode_run_ids
    return [
        r
        for r in ev.runs_of(train_kind(ev))
        if r.succeeded and is_data_triggered(r) and r.pk not in theirs
    ]


def check_data_triggered(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    word = train_kind(ev)
    if episodes := _arrival_episodes(ev):
        links = []
        for episode in episodes:
            links += [_signal_link(episode, "data arrival"), _run_link(episode)]
        return passed(
            f"{plural(len(episodes), f'{word} run')} started by a data-arrival signal in the "
            f"last {days_of(ev)} days (seen by the portal).",
            links,
            strength=Strength.SEEN,
        )
    if runs := _declared_data_runs(ev):
        label = _declared_label(runs, DATA_TRIGGERS, DATA_REASONS)
        return passed(
            f"{plural(len(runs), f'{word} run')} started by new data in the last "
            f"{days_of(ev)} days. Weaker evidence: {label}.",
            [r.link for r in runs],
            strength=Strength.DECLARED,
        )
    unfinished = [e for e in ev.episodes if e.from_data_arrival and _in_window(ev, e)]
    summary = f"No successful {word} run was started by new data in the last {days_of(ev)} days."
    if unfinished:
        summary += (
            f" {plural(len(unfinished), 'episode')} started by a data-arrival signal, none "
            "with a succeeded run."
        )
    return failed(summary, [Link(f"episode #{e.pk}", episode_url(e.pk)) for e in unfinished])


def _lag_from_signals(ev: ModelEvidence, limit: float) -> Outcome | None:
    """The lag from each data-arrival signal's observed time to the start (or, not started
    yet, the request) of the run its episode started, whatever the run's result (the lag is
    how soon training began, not whether it succeeded)."""
    pairs = []
    for episode in ev.episodes:
        began = episode.run_began_at
        if not episode.from_data_arrival or not _in_window(ev, episode) or began is None:
            continue
        if episode.outcome == EpisodeOutcome.REQUEST_FAILED:  # ADO never queued it
            continue
        hours = max((began - episode.arrived_at).total_seconds() / 3600, 0.0)
        pairs.append((hours, episode))
    if not pairs:
        return None
    lags = [hours for hours, _ in pairs]
    p50, worst = statistics.median(lags), max(lags)
    slowest = max(pairs, key=lambda pair: pair[0])[1]
    newest = pairs[0][1]  # episodes come newest first
    evidence = [_signal_link(slowest, "data arrival"), _run_link(slowest)]
    if newest is not slowest:
        evidence += [_signal_link(newest, "data arrival"), _run_link(newest)]
    measure = {
        "from": "data-arrival signal",
        "runs": len(lags),
        "p50_hours": round(p50, 2),
        "max_hours": round(worst, 2),
        "limit_hours": limit,
        "pairs": [
            {
                "episode": e.pk,
                "signal": e.signal_id,
                "run": e.run_id,
                "arrived_at": e.arrived_at.isoformat(),
                "run_began_at": e.run_began_at.isoformat(),
                "hours": round(hours, 2),
            }
            for hours, e in pairs[:MAX_LAG_PAIRS]
        ],
    }
    text = (
        f"median {_hours(p50)}, max {_hours(worst)} from the data-arrival signal to the start "
        f"of the run ({plural(len(lags), 'run')}, seen by the portal)"
    )
    if p50 < limit:
        return passed(
            f"Within {limit:g} h: {text}.", evidence, strength=Strength.SEEN, measure=measure
        )
    return failed(f"Over {limit:g} h: {text}.", evidence, measure=measure)


def _lag_from_cleansing(ev: ModelEvidence, runs: list[RunFact], limit: float) -> Outcome | None:
    """Weaker: the lag from the end of the data-cleansing run before each run that says new
    data started it."""
    arrivals = sorted(
        (
            (r.finished_at, r)
            for r in ev.runs_of("data_cleansing")
            if r.succeeded and r.finished_at is not None
        ),
        key=lambda pair: pair[0],  # two runs may finish at the same time
    )
    lags, evidence = [], []
    for run in runs:
        began = run.started_at or run.queued_at
        if began is None:
            continue
        before = [(at, r) for at, r in arrivals if at <= began and began - at <= timedelta(days=7)]
        if before:
            at, cleansing = before[-1]
            lags.append((began - at).total_seconds() / 3600)
            evidence += [cleansing.link, run.link]
    if not lags:
        return None
    p50, worst = statistics.median(lags), max(lags)
    label = _declared_label(runs, DATA_TRIGGERS, DATA_REASONS)
    text = (
        f"median {_hours(p50)}, max {_hours(worst)} from the end of the data-cleansing run to "
        f"the start of the run ({plural(len(lags), 'run')})"
    )
    measure = {
        "from": "data-cleansing run",
        "runs": len(lags),
        "p50_hours": round(p50, 2),
        "max_hours": round(worst, 2),
        "limit_hours": limit,
    }
    if p50 < limit:
        return passed(
            f"Within {limit:g} h: {text}. Weaker evidence: {label}.",
            evidence,
            strength=Strength.DECLARED,
            measure=measure,
        )
    return failed(f"Over {limit:g} h: {text}.", evidence, measure=measure)


def check_data_lag(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    limit = float(setting("MATURITY_DATA_LAG_HOURS", 24))
    if seen := _lag_from_signals(ev, limit):
        return seen
    runs = _declared_data_runs(ev)
    if not runs:
        return failed("No data-triggered run to time.")
    return _lag_from_cleansing(ev, runs, limit) or not_measured(
        "No data-arrival signal started these runs and no data-cleansing run precedes them, so "
        "when the data arrived is unknown."
    )


# Level 5 ----------------------------------------------------------------------------------


def _local(at: datetime) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M")


def _signals_url(ev: ModelEvidence) -> str:
    return f"{reverse('operations:inbox')}?tab=signals&model={ev.name}"


def check_monitoring_heartbeat(ev: ModelEvidence) -> Outcome:
    heartbeat = ev.heartbeat
    last = heartbeat.last_heard_at if heartbeat else None
    if last is not None and last >= ev.window_start:
        return passed(
            f"Monitoring last heard from at {_local(last)}; "
            f"{plural(heartbeat.signals, 'monitoring signal')} received in the last "
            f"{days_of(ev)} days.",
            [Link(f"signals of {ev.name}", _signals_url(ev))],
            strength=Strength.SEEN,
            measure={"signals": heartbeat.signals, "last_heard_at": last.isoformat()},
        )
    if last is not None:
        return failed(
            f"Monitoring was last heard from at {_local(last)}, more than {days_of(ev)} days ago.",
            [Link(f"signals of {ev.name}", _signals_url(ev))],
            measure={"signals": 0, "last_heard_at": last.isoformat()},
        )
    if not ev.sources.signals:
        return not_measured(
            "No signal sender has reached the portal yet, so whether monitoring runs is unknown."
        )
    return failed(
        "Monitoring has never been heard from for this model: no monitoring signal or clean "
        "report names it."
    )


def _monitoring_episodes(ev: ModelEvidence) -> list[EpisodeFact]:
    return [e for e in ev.episodes if e.from_monitoring and _in_window(ev, e)]


def _declared_monitoring_runs(ev: ModelEvidence) -> list[RunFact]:
    """Runs whose parameter says a drift or threshold alert started them, no episode behind."""
    theirs = ev.episode_run_ids
    return [
        r for r in ev.runs_of(train_kind(ev)) if is_monitoring_triggered(r) and r.pk not in theirs
    ]


def check_closed_loop(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    word = train_kind(ev)
    if episodes := [e for e in _monitoring_episodes(ev) if e.run_succeeded]:
        links = []
        for episode in episodes:
            links += [
                _signal_link(episode, episode.trigger_kind.replace("_", " ")),
                _run_link(episode),
            ]
        return passed(
            f"{plural(len(episodes), f'{word} run')} started by a monitoring signal in the "
            f"last {days_of(ev)} days (seen by the portal).",
            links,
            strength=Strength.SEEN,
        )
    if runs := [r for r in _declared_monitoring_runs(ev) if r.succeeded]:
        return passed(
            f"{plural(len(runs), f'{word} run')} started by a drift or threshold event in "
            f"the last {days_of(ev)} days. Weaker evidence: {DECLARED_BY_PARAMETER}.",
            [r.link for r in runs],
            strength=Strength.DECLARED,
        )
    return failed(
        f"No successful {word} run was started by a drift or threshold event in the last "
        f"{days_of(ev)} days."
    )


def _version_link(episode: EpisodeFact) -> Link | None:
    if episode.challenger_version is None or not episode.challenger_source:
        return None
    return Link(
        f"{episode.challenger_model} v{episode.challenger_version}",
        version_url(
            episode.challenger_source, episode.challenger_model, episode.challenger_version
        ),
    )


def _promoted_by_episode(ev: ModelEvidence) -> Outcome | None:
    reached = [
        e
        for e in ev.episodes
        if e.from_monitoring and e.reached_prod and e.closed_at and e.closed_at >= ev.window_start
    ]
    if not reached:
        return None
    evidence = []
    for episode in reached:
        evidence.append(Link(f"episode #{episode.pk}", episode_url(episode.pk)))
        if version := _version_link(episode):
            evidence.append(version)
    return passed(
        f"{plural(len(reached), 'episode')} started by a monitoring signal closed with the "
        f"retrained version promoted to PROD in the last {days_of(ev)} days (seen by the portal).",
        evidence,
        strength=Strength.SEEN,
    )


def _short_of_prod(ev: ModelEvidence) -> str:
    """What became of the monitoring episodes that did not reach PROD, for a failure."""
    short = [e for e in _monitoring_episodes(ev) if not e.reached_prod]
    if not short:
        return ""
    where = sorted(
        {
            str(EpisodeOutcome(e.outcome).label) if e.outcome else str(EpisodeState(e.state).label)
            for e in short
        }
    )
    return (
        f" {plural(len(short), 'episode')} started by a monitoring signal did not reach PROD "
        f"({'; '.join(where)})."
    )


def check_promoted(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    if seen := _promoted_by_episode(ev):
        return seen
    short = _short_of_prod(ev)
    short_links = [
        Link(f"episode #{e.pk}", episode_url(e.pk))
        for e in _monitoring_episodes(ev)
        if not e.reached_prod
    ]
    runs = [r for r in _declared_monitoring_runs(ev) if r.succeeded]
    if not runs:
        return failed(
            "No drift- or threshold-triggered training to follow to PROD." + short, short_links
        )
    versions = {r.model_version_id for r in runs if r.model_version_id in ev.versions}
    if not versions:
        return not_measured(
            "The drift-triggered training runs are not linked to a registered version, so "
            "whether it was promoted is unknown."
        )
    promoted = [r for r in ev.prod_deployments() if r.model_version_id in versions]
    if promoted:
        evidence = []
        for run in promoted:
            evidence += [ev.versions[run.model_version_id].link, run.link]
        return passed(
            "A version retrained on a monitoring signal went to PROD through the gated release. "
            f"Weaker evidence: {DECLARED_BY_PARAMETER}.",
            evidence,
            strength=Strength.DECLARED,
        )
    return releases_unread(ev) or failed(
        "No version retrained on a monitoring signal has reached PROD." + short,
        [ev.versions[v].link for v in versions] + short_links,
    )


LEVELS_4_5: tuple[CriterionDef, ...] = (
    CriterionDef(
        code="data-triggered",
        level=4,
        title="New data starts training",
        description="Training (scoring) runs when new data arrives, not on a clock.",
        evaluation="An operations episode started by a data-arrival signal in the window whose "
        "training (scoring) run succeeded. Weaker evidence, labelled as such: a succeeded run "
        "with no episode behind it whose trigger parameter is new-data or whose ADO reason is "
        "resourceTrigger or buildCompletion.",
        fix="Send the data-arrival event (Event Grid, Databricks, plain JSON) to the portal's "
        "signal endpoint with a trigger policy that starts the training (or scoring) pipeline.",
        applies_to=Applicability.BOTH,
        check=check_data_triggered,
    ),
    CriterionDef(
        code="data-lag",
        level=4,
        title="Training follows new data within a day",
        description="The time from data arrival to the start of training is short.",
        evaluation="Median time from each data-arrival signal's observed time to the start "
        "(or, not started yet, the request) of the run its episode started, under "
        "MATURITY_DATA_LAG_HOURS (24 h); the maximum is shown beside it. Weaker evidence, "
        "labelled as such: from the end of the preceding data-cleansing run to runs that only "
        "declare new data.",
        fix="Let the data-arrival signal start training through an automatic trigger policy "
        "rather than a later schedule; remove manual hand-offs and confirmations.",
        applies_to=Applicability.BOTH,
        check=check_data_lag,
    ),
    CriterionDef(
        code="monitoring-heartbeat",
        level=5,
        title="Monitoring is heard from",
        description="The model's monitoring sends its signals (or clean reports) to the portal.",
        evaluation="A monitoring signal (drift, threshold breach, performance drop, resolved) "
        "or a clean monitoring report for the model received in the window; shows how many "
        "signals and when monitoring was last heard from.",
        fix="Point the model's monitoring (Azure Monitor alerts, Evidently reports, the "
        "Databricks monitoring job) at the portal's signal endpoints, with a match rule if the "
        "payload does not name the model.",
        applies_to=Applicability.BOTH,
        check=check_monitoring_heartbeat,
    ),
    CriterionDef(
        code="closed-loop",
        level=5,
        title="Monitoring triggers retraining",
        description="Drift or threshold alerts from monitoring start retraining (rescoring) "
        "on their own.",
        evaluation="An operations episode started by a monitoring signal (drift, threshold "
        "breach, performance drop) in the window whose training (scoring) run succeeded. "
        "Weaker evidence, labelled as such: a succeeded run with no episode behind it whose "
        "trigger parameter is drift or threshold.",
        fix="Send the model's monitoring alerts to the portal's signal endpoints with a trigger "
        "policy that queues the training (or scoring) pipeline.",
        applies_to=Applicability.BOTH,
        check=check_closed_loop,
    ),
    CriterionDef(
        code="promoted",
        level=5,
        title="The retrained model is promoted",
        description="A version retrained on a monitoring signal went to PROD through the "
        "gated release.",
        evaluation="An operations episode started by a monitoring signal closed in the window "
        "as promoted to PROD (an episode that stopped at QA or was held does not count). "
        "Weaker evidence, labelled as such: a version of a run with no episode behind it whose "
        "trigger parameter is drift or threshold, deployed by a release run whose PROD stage "
        "succeeded.",
        fix="Let the trigger policy release the retrained version when its evaluation beats "
        "the champion, through the usual QA and PROD approvals.",
        applies_to=Applicability.ML,
        check=check_promoted,
    ),
)
