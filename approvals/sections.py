"""What approvals add to the registry's pages, through the registry's hook settings
(``REGISTRY_MODEL_PAGE_SECTIONS``, ``REGISTRY_VERSION_PAGE_SECTIONS``; see registry/sections.py):
the registry calls these without importing this app. And the hook of the approval page itself
(``APPROVALS_DETAIL_SECTIONS``), through which the apps above approvals add to its evidence."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from core.home import HomeCard
from core.roles import Role
from registry.models import CatalogModel, ModelVersion
from registry.sections import RenderedSection, Section, sections_render

from . import selectors
from .models import OutboxState


def model_page(request, catalog_model: CatalogModel) -> list[Section]:
    """ "Waiting for approval": the model's open QA / PROD approval requests, oldest first."""
    waiting = list(
        selectors.approval_list(filters=selectors.ApprovalFilters(model=catalog_model.name))
    )
    for approval in waiting:
        approval.overdue = selectors.is_overdue(approval)
    return [
        Section(
            "Waiting for approval",
            "approvals/_model_waiting.html",
            {"catalog_model": catalog_model, "approvals": waiting},
            order=15,
        )
    ]


def version_page(request, version: ModelVersion) -> list[Section]:
    """ "Approvals": every QA / PROD approval request that concerns this version."""
    approvals = selectors.approvals_for_version(version)
    for approval in approvals:
        approval.overdue = selectors.is_overdue(approval)
    return [
        Section(
            "Approvals",
            "approvals/_version_approvals.html",
            {"version": version, "approvals": approvals},
            order=20,
        )
    ]


# --- Home cards (PORTAL_HOME_CARD_PROVIDERS, core/home.py) ------------------------------------


def home_cards(user, held_roles: frozenset[str]) -> list[HomeCard]:
    """What waits for each role: an approver's requests and decisions, the versions a data
    scientist waits for, the requests overdue for managers, the outbox for admins."""
    inbox = reverse("approvals:inbox")
    cards: list[HomeCard] = []
    if Role.APPROVER in held_roles:
        cards += _approver_cards(user, inbox)
    if Role.DATA_SCIENTIST in held_roles:
        cards.append(
            HomeCard(
                "versions-awaiting-approval",
                Role.DATA_SCIENTIST,
                "Versions waiting for approval",
                "Model versions held at a QA or PROD approval will be listed here.",
                _overdue_marked(selectors.versions_waiting()),
                link=inbox,
                link_label="Open the approvals inbox",
                order=30,
            )
        )
    if Role.MANAGER in held_roles:
        cards.append(
            HomeCard(
                "approvals-overdue",
                Role.MANAGER,
                "Approvals waiting over a day",
                "Pending QA and PROD approvals older than one day will be listed here.",
                _overdue_marked(selectors.overdue_pending()),
                link=f"{inbox}?overdue=1",
                link_label="Open the approvals inbox",
                order=30,
            )
        )
    if Role.ADMIN in held_roles:
        cards.append(_outbox_card())
    return cards


def _approver_cards(user, inbox: str) -> list[HomeCard]:
    """What waits for this approver, what they decided, and what could not be delivered."""
    return [
        HomeCard(
            "approvals-waiting",
            Role.APPROVER,
            "Waiting for you",
            "QA and PROD approval requests from Azure DevOps release pipelines will appear "
            "here, oldest first, once approvals are synced. Nothing is waiting for you.",
            _overdue_marked(selectors.waiting_for(user) if user else []),
            link=inbox,
            link_label="Open the approvals inbox",
            order=10,
        ),
        HomeCard(
            "approvals-decided",
            Role.APPROVER,
            "Recently decided by you",
            "Your approve and reject decisions will be listed here with their delivery "
            "state to Azure DevOps.",
            tuple(selectors.decided_by(user, limit=5)) if user is not None else (),
            order=20,
        ),
        HomeCard(
            "approvals-delivery-problems",
            Role.APPROVER,
            "Delivery problems",
            "If one of your decisions cannot be delivered to Azure DevOps, it shows here. "
            "None so far.",
            tuple(selectors.delivery_problems(user)) if user is not None else (),
            order=30,
        ),
    ]


def _overdue_marked(requests) -> tuple:
    """The approval requests, each with ``overdue`` set for the card to mark."""
    for request in requests:
        request.overdue = selectors.is_overdue(request)
    return tuple(requests)


def _outbox_card() -> HomeCard:
    """The admin's view of the decision outbox: the backlog, and failed deliveries to retry."""
    backlog = selectors.outbox_backlog()
    failed = tuple(m for m in selectors.delivery_problems() if m.state == OutboxState.FAILED)
    return HomeCard(
        "outbox-backlog",
        Role.ADMIN,
        "Decision outbox",
        "Decisions waiting to be delivered to Azure DevOps, and failed deliveries with "
        "a retry button, will appear here. The outbox is empty.",
        failed,
        summary={"backlog": backlog} if backlog.queued or backlog.failed else {},
        order=20,
    )


# --- The approval page's hook (APPROVALS_DETAIL_SECTIONS) ------------------------------------


def approval_detail_sections(request, approval) -> list[RenderedSection]:
    """What the apps above approvals add to an approval's evidence column (e.g. operations'
    "Why this version exists"), rendered: each dotted function in ``APPROVALS_DETAIL_SECTIONS``
    is called with ``(request, approval)`` and returns a Section, a list of them, or None."""
    sections: list[Section] = []
    for dotted in getattr(settings, "APPROVALS_DETAIL_SECTIONS", None) or []:
        found = import_string(dotted)(request, approval)
        if found is None:
            continue
        sections.extend([found] if isinstance(found, Section) else found)
    return sections_render(request, sorted(sections, key=lambda s: s.order))


def approval_checks(request, approval) -> Section | None:
    """ "Automated check": what the portal's ADO check answered for this run and environment,
    each rule with its reason and numbers, and whether ADO was told; None when no check ran."""
    evaluations = selectors.check_evaluations_for(approval)
    if not evaluations:
        return None
    return Section(
        "Automated check",
        "approvals/_checks.html",
        {"evaluations": evaluations},
        order=8,
    )


def deployment_approvers(records) -> dict[int, dict]:
    """PIPELINES_DEPLOYMENT_ANNOTATORS: who approved each deployment record, and where."""
    return selectors.deployment_approvers(records)
