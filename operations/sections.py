"""What operations adds to other apps' pages, through their hook settings:

- the model page's "Operations" section (``REGISTRY_MODEL_PAGE_SECTIONS``, registry/sections.py);
- the approval page's "Why this version exists" line (``APPROVALS_DETAIL_SECTIONS``,
  approvals/sections.py);
- the home page card of data scientists and admins (``PORTAL_HOME_CARD_PROVIDERS``,
  core/home.py).

Those apps call these without importing this one.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from core.home import HomeCard
from core.roles import Role
from registry.models import CatalogModel
from registry.sections import Section

from . import selectors
from .models import SignalFormat

SECTION_ORDER = 25  # after approvals' "Waiting for approval" (15), before maturity (30)
# How the "Why this version exists" line names a sender.
SOURCE_NAMES = {
    SignalFormat.AZURE_MONITOR: "Azure Monitor",
    SignalFormat.EVENT_GRID: "Event Grid",
    SignalFormat.CLOUDEVENTS: "Event Grid",
    SignalFormat.DATABRICKS: "Databricks",
    SignalFormat.EVIDENTLY: "Evidently",
    SignalFormat.GENERIC: "a monitoring job",
}


def inbox_url(**params) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return reverse("operations:inbox") + (f"?{query}" if query else "")


def model_page(request, catalog_model: CatalogModel) -> list[Section]:
    """ "Operations": signals and episodes per week (90 days), recent episodes, the trigger
    policy in effect and when monitoring was last heard from."""
    summary = selectors.model_summary(catalog_model)
    return [
        Section(
            "Operations",
            "operations/_model_section.html",
            {
                "catalog_model": catalog_model,
                "summary": summary,
                "inbox_url": inbox_url(model=catalog_model.name, state="all"),
                "signals_url": inbox_url(tab="signals", model=catalog_model.name),
            },
            order=SECTION_ORDER,
        )
    ]


def approval_why(request, approval) -> Section | None:
    """ "Why this version exists": the episode behind this approval, in one sentence with the
    signal and the comparison that led to it; None when no episode led to it."""
    episode = selectors.episode_for_approval(approval)
    if episode is None:
        return None
    signal = episode.first_signal
    evaluation = selectors.episode_evaluation(episode)
    return Section(
        "Why this version exists",
        "operations/_approval_why.html",
        {
            "episode": episode,
            "signal": signal,
            "source": SOURCE_NAMES.get(signal.format, signal.get_format_display())
            if signal
            else "",
            "evaluation": evaluation,
        },
        order=5,
    )


def _source_name(signal) -> str:
    if signal is None:
        return ""
    return SOURCE_NAMES.get(signal.format, signal.get_format_display())


def home_cards(user, held_roles: frozenset[str]) -> list[HomeCard]:
    """ "Operations: N episodes open, M stalled, K proposals waiting", for data scientists
    and admins."""
    role = next((r for r in (Role.DATA_SCIENTIST, Role.ADMIN) if r in held_roles), None)
    if role is None:
        return []
    counts = selectors.inbox_counts()
    summary = {"counts": counts} if counts.episodes or counts.unmatched or counts.proposals else {}
    return [
        HomeCard(
            "operations-open",
            role,
            "Operations",
            "No episode is open and no signal waits for a rule. When a monitoring or "
            "data-arrival signal starts or proposes a run, it is followed here to PROD.",
            (),
            summary=summary,
            link=inbox_url(),
            link_label="Open the operations inbox",
            order=40,
        )
    ]
