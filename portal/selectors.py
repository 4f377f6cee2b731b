"""Reads for the home page, health checks and metrics."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections
from django.utils import timezone

from core.sync import sync_status_list


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    detail: str = ""

    def as_dict(self) -> dict:
        data = {"ok": self.ok, "latency_ms": round(self.latency_ms, 1)}
        if self.detail:
            data["detail"] = self.detail
        return data


def database_check() -> CheckResult:
    started = time.perf_counter()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return CheckResult(False, _ms_since(started), f"{type(exc).__name__}: {exc}")
    return CheckResult(True, _ms_since(started), connections["default"].vendor)


def broker_check(timeout: float = 3.0) -> CheckResult:
    """Publish a message to a throw-away queue and read it back: a real round-trip."""
    from kombu import Connection

    started = time.perf_counter()
    queue_name = f"portal.readyz.{uuid.uuid4().hex}"
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        with Connection(
            settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            queue = conn.SimpleQueue(queue_name)
            try:
                queue.put({"readyz": queue_name})
                message = queue.get(block=True, timeout=timeout)
                message.ack()
                if message.payload != {"readyz": queue_name}:
                    return CheckResult(False, _ms_since(started), "read back a different message")
            finally:
                queue.queue.delete()
                queue.close()
            transport = conn.transport_cls if isinstance(conn.transport_cls, str) else "custom"
    except Exception as exc:
        return CheckResult(False, _ms_since(started), f"{type(exc).__name__}: {exc}")
    return CheckResult(True, _ms_since(started), transport)


def readiness() -> tuple[bool, dict]:
    """Return (ready, report). Stale syncs are reported but do not make the process unready."""
    checks = {"database": database_check(), "broker": broker_check()}
    ready = all(c.ok for c in checks.values())
    try:
        syncs = [s.as_dict() for s in sync_status_list()]
    except Exception as exc:
        syncs = [{"name": "<unavailable>", "error": f"{type(exc).__name__}: {exc}"}]
    return ready, {
        "status": "ready" if ready else "not ready",
        "checks": {name: c.as_dict() for name, c in checks.items()},
        "syncs": syncs,
        "time": timezone.now().isoformat(),
    }


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class HomeCard:
    """One card of a role's home page: what waits for that role, or why nothing does yet."""

    key: str
    role: str
    title: str
    empty_text: str
    items: tuple = ()
    # Figures a card shows beside its items (e.g. the outbox backlog); empty for most cards.
    summary: dict = field(default_factory=dict)
    link: str = ""  # "see all" page
    link_label: str = "Open the approvals inbox"


def home_cards(held_roles: frozenset[str], user=None) -> list[HomeCard]:
    """Return the cards for every role the user holds, in the order of the roles; ``user``
    fills the personal ones (what waits for this approver, what they decided)."""
    from django.urls import reverse

    from approvals import selectors as approvals
    from core.roles import Role

    inbox = reverse("approvals:inbox")
    cards: list[HomeCard] = []
    if Role.APPROVER in held_roles:
        cards += [
            HomeCard(
                "approvals-waiting",
                Role.APPROVER,
                "Waiting for you",
                "QA and PROD approval requests from Azure DevOps release pipelines will appear "
                "here, oldest first, once approvals are synced. Nothing is waiting for you.",
                _overdue_marked(approvals, approvals.waiting_for(user) if user else []),
                link=inbox,
            ),
            HomeCard(
                "approvals-decided",
                Role.APPROVER,
                "Recently decided by you",
                "Your approve and reject decisions will be listed here with their delivery "
                "state to Azure DevOps.",
                tuple(approvals.decided_by(user, limit=5)) if user is not None else (),
            ),
            HomeCard(
                "approvals-delivery-problems",
                Role.APPROVER,
                "Delivery problems",
                "If one of your decisions cannot be delivered to Azure DevOps, it shows here. "
                "None so far.",
                tuple(approvals.delivery_problems(user)) if user is not None else (),
            ),
        ]
    if Role.DATA_SCIENTIST in held_roles:
        cards += [
            *_team_cards(user),
            HomeCard(
                "versions-awaiting-approval",
                Role.DATA_SCIENTIST,
                "Versions waiting for approval",
                "Model versions held at a QA or PROD approval will be listed here.",
                _overdue_marked(approvals, approvals.versions_waiting()),
                link=inbox,
            ),
        ]
    if Role.MANAGER in held_roles:
        from maturity import sections as maturity

        dashboard = maturity.dashboard_url()
        cards += [
            HomeCard(
                "maturity-portfolio",
                Role.MANAGER,
                "Portfolio maturity",
                "The distribution of models over MLOps maturity levels 1 to 5, and its change "
                "since last month, will appear here once models are assessed.",
                summary=maturity.home_portfolio(),
                link=dashboard,
                link_label="Open the maturity dashboard",
            ),
            HomeCard(
                "maturity-dropped",
                Role.MANAGER,
                "Models whose level dropped",
                "Models whose assessed maturity level went down in the last 30 days will be "
                "flagged here. None has dropped.",
                maturity.home_dropped(),
                link=dashboard,
                link_label="Open the maturity dashboard",
            ),
            HomeCard(
                "approvals-overdue",
                Role.MANAGER,
                "Approvals waiting over a day",
                "Pending QA and PROD approvals older than one day will be listed here.",
                _overdue_marked(approvals, approvals.overdue_pending()),
                link=f"{inbox}?overdue=1",
            ),
        ]
    if Role.ADMIN in held_roles:
        syncs = tuple(sync_status_list())
        cards += [
            HomeCard(
                "sync-health",
                Role.ADMIN,
                "Sync health",
                "Each MLflow registry source and Azure DevOps project will show its last "
                "successful sync and last error here. No source is configured yet.",
                syncs,
            ),
            _outbox_card(approvals),
        ]
    return cards


def _team_cards(user) -> list[HomeCard]:
    """ "Your team's models" and "Running now": a user's team is that of the models they own."""
    from django.urls import reverse
    from django.utils.http import urlencode

    from core.roles import Role
    from pipelines import selectors as pipelines
    from registry import selectors as registry

    team = registry.team_models_for(user) if user is not None else None
    if team is None or not team.owns_any:
        who = ", ".join(sorted(registry.owner_names(user))) if user is not None else ""
        models_empty = (
            f"No catalog model names you ({who}) among its owners, so the portal does not know "
            "your team. Ask an editor to add you to your models' owners (model page, Edit)."
        )
        runs, runs_total = pipelines.runs_in_progress()
        scope = "every team"  # not knowing the team, show what runs anywhere
    else:
        models_empty = (
            f"No model of {', '.join(team.teams) or 'yours'} is in the catalog now (deleted "
            "upstream, or not synced yet)."
        )
        runs, runs_total = pipelines.runs_in_progress(catalog_ids=list(team.catalog_ids))
        scope = ", ".join(team.teams) or "your models"
    models_link = reverse("registry:model-list")
    if team is not None and len(team.teams) == 1:
        models_link += "?" + urlencode({"team": team.teams[0]})
    return [
        HomeCard(
            "team-models",
            Role.DATA_SCIENTIST,
            "Your team's models",
            models_empty,
            tuple(team.models) if team is not None else (),
            summary={"teams": team.teams, "total": team.total} if team and team.models else {},
            link=models_link,
            link_label=f"All {team.teams[0]} models" if "?" in models_link else "All models",
        ),
        HomeCard(
            "pipelines-running",
            Role.DATA_SCIENTIST,
            "Running now",
            (
                "No pipeline run is running now."
                if scope == "every team"
                else "No pipeline run of your team's models is running now."
            )
            + " Training, scoring and release runs show here while they run.",
            tuple(runs),
            summary={"scope": scope, "total": runs_total} if runs else {},
            link=reverse("pipelines:run-list") + "?state=running",
            link_label="All running pipelines",
        ),
    ]


def _overdue_marked(approvals, requests) -> tuple:
    """The approval requests, each with ``overdue`` set for the card to mark."""
    for request in requests:
        request.overdue = approvals.is_overdue(request)
    return tuple(requests)


def _outbox_card(approvals) -> HomeCard:
    """The admin's view of the decision outbox: the backlog, and failed deliveries to retry."""
    from approvals.models import OutboxState
    from core.roles import Role

    backlog = approvals.outbox_backlog()
    failed = tuple(m for m in approvals.delivery_problems() if m.state == OutboxState.FAILED)
    return HomeCard(
        "outbox-backlog",
        Role.ADMIN,
        "Decision outbox",
        "Decisions waiting to be delivered to Azure DevOps, and failed deliveries with "
        "a retry button, will appear here. The outbox is empty.",
        failed,
        summary={"backlog": backlog} if backlog.queued or backlog.failed else {},
    )
