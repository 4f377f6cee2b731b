from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from core.roles import Role, user_roles

# (label, URL name, roles that see it; None = any role). Later features add their pages here.
NAVIGATION: list[tuple[str, str, frozenset[str] | None]] = [
    ("Home", "home", None),
    ("Models", "registry:model-list", None),
    ("Pipelines", "pipelines:run-list", None),
    ("Approvals", "approvals:inbox", frozenset({Role.APPROVER, Role.MANAGER, Role.ADMIN})),
    ("Operations", "operations:inbox", None),
    (
        "Maturity",
        "maturity:dashboard",
        frozenset({Role.MANAGER, Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN}),
    ),
    ("API", "api-docs", None),
    ("Admin", "admin:index", frozenset({Role.ADMIN})),
]

# URL name -> (count function, roles that see the count, what the count means). A badge with a
# count shows next to the item when the count is above zero.
NAVIGATION_BADGES: dict[str, tuple[str, frozenset[str], str]] = {
    "approvals:inbox": (
        "approvals.selectors.pending_count",
        frozenset({Role.APPROVER}),
        "pending approvals",
    ),
}


def _badge(url_name: str, held: frozenset[str]) -> dict | None:
    spec = NAVIGATION_BADGES.get(url_name)
    if spec is None or not held & spec[1]:
        return None
    count = import_string(spec[0])()
    return {"count": count, "label": spec[2]} if count else None


def navigation(request):
    held = user_roles(getattr(request, "user", None))
    if not held:
        return {"nav_items": [], "user_role_names": []}
    items = []
    current = getattr(getattr(request, "resolver_match", None), "view_name", None)
    for label, url_name, allowed in NAVIGATION:
        if allowed is not None and not held & allowed:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        # A section stays highlighted on its inner pages (registry:model-detail under Models).
        section = url_name.rsplit(":", 1)[0] + ":" if ":" in url_name else None
        active = current == url_name or bool(
            section and current and section != "admin:" and current.startswith(section)
        )
        items.append(
            {"label": label, "url": url, "active": active, "badge": _badge(url_name, held)}
        )
    labels = dict(Role.choices)
    return {"nav_items": items, "user_role_names": [labels[r] for r in sorted(held)]}
