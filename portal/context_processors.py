from django.urls import NoReverseMatch, reverse

from .roles import Role, user_roles

# (label, URL name, roles that see it; None = any role). Later features add their pages here.
NAVIGATION: list[tuple[str, str, frozenset[str] | None]] = [
    ("Home", "home", None),
    ("Models", "registry:model-list", None),
    ("Pipelines", "pipelines:run-list", None),
    ("API", "api-docs", None),
    ("Admin", "admin:index", frozenset({Role.ADMIN})),
]


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
        items.append({"label": label, "url": url, "active": active})
    labels = dict(Role.choices)
    return {"nav_items": items, "user_role_names": [labels[r] for r in sorted(held)]}
