import pytest
from bs4 import BeautifulSoup

from core.roles import Role

pytestmark = pytest.mark.django_db

CARDS_BY_ROLE = {
    Role.APPROVER: {"approvals-waiting", "approvals-decided", "approvals-delivery-problems"},
    Role.DATA_SCIENTIST: {
        "team-models",
        "pipelines-running",
        "versions-awaiting-approval",
        "operations-open",
    },
    Role.MANAGER: {"maturity-portfolio", "maturity-dropped", "approvals-overdue"},
    Role.ADMIN: {"sync-health", "outbox-backlog", "operations-open"},
}


def _soup(response):
    return BeautifulSoup(response.content, "html.parser")


def _nav_labels(soup):
    return [a.get_text(strip=True) for a in soup.select("#portal-nav .nav-link")]


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_its_own_cards_with_empty_states(role, role_client):
    response = role_client(role).get("/")
    assert response.status_code == 200
    soup = _soup(response)
    cards = {c["data-card"] for c in soup.select("[data-card]")}
    assert cards == CARDS_BY_ROLE[role]
    for card in soup.select("[data-card]"):
        empty = card.select_one(".empty-state")
        assert empty is not None and len(empty.get_text(strip=True)) > 30, card["data-card"]


def test_a_user_with_several_roles_sees_each_roles_cards(make_user, client):
    client.force_login(make_user(Role.APPROVER, Role.MANAGER))
    cards = {c["data-card"] for c in _soup(client.get("/")).select("[data-card]")}
    assert cards == CARDS_BY_ROLE[Role.APPROVER] | CARDS_BY_ROLE[Role.MANAGER]


def test_navigation_follows_the_role(role_client, client):
    assert "Admin" in _nav_labels(_soup(role_client(Role.ADMIN).get("/")))
    client.logout()
    assert "Admin" not in _nav_labels(_soup(role_client(Role.APPROVER).get("/")))


def test_the_header_names_the_user_and_their_roles(make_user, client):
    user = make_user(Role.MANAGER, first_name="Maya", last_name="Manager")
    client.force_login(user)
    soup = _soup(client.get("/"))
    assert soup.select_one("[data-testid=user-name]").get_text(strip=True) == "Maya Manager"
    assert "Manager" in soup.select_one(".portal-user").get_text()


def test_a_user_without_a_role_is_told_whom_to_ask(make_user, client):
    client.force_login(make_user())
    response = client.get("/")
    assert response.status_code == 403
    text = _soup(response).get_text(" ", strip=True)
    assert "have no role yet" in text
    assert "administrator" in text


def test_the_operator_sees_each_sync_with_its_state(role_client, settings):
    settings.PORTAL_SYNC_STATUS_PROVIDERS = ["tests.portal.test_health.fake_sync_statuses"]
    soup = _soup(role_client(Role.ADMIN).get("/"))
    card = soup.select_one("[data-card=sync-health]")
    rows = {li.select_one("span").get_text(strip=True): li for li in card.select("li")}
    assert set(rows) == {"ado:risk-project", "registry:central", "registry:data-discovery"}
    assert rows["ado:risk-project"].select_one(".badge").get_text() == "failed"
    assert rows["registry:central"].select_one(".badge").get_text() == "ok"
    assert rows["registry:central"].select_one("time")["title"].endswith("UTC")
    assert "never" in rows["registry:data-discovery"].get_text()


def test_sign_in_with_a_local_account_lands_on_home(client, make_user):
    from tests.factories import TEST_PASSWORD

    make_user(Role.APPROVER, username="alice")
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": TEST_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert "Waiting for you" in response.content.decode()


def test_a_wrong_password_is_a_form_error_not_a_crash(client, make_user):
    make_user(Role.APPROVER, username="alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_sign_out_needs_a_post_with_csrf(make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(Role.APPROVER))
    assert client.post("/accounts/logout/").status_code == 403  # no CSRF token
    assert client.get("/").status_code == 200  # still signed in


def test_pages_load_no_third_party_assets(role_client):
    soup = _soup(role_client(Role.APPROVER).get("/"))
    sources = [t.get("src") for t in soup.find_all("script")] + [
        t.get("href") for t in soup.find_all("link")
    ]
    assert sources and all(s.startswith("/static/") for s in sources), sources


def test_the_content_security_policy_forbids_inline_scripts(role_client):
    response = role_client(Role.APPROVER).get("/")
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    soup = _soup(response)
    assert all(s.get("src") for s in soup.find_all("script")), "inline <script> found"


def test_a_failing_source_on_the_operators_home_says_why_and_links_to_it(role_client):
    from django.urls import reverse
    from django.utils import timezone

    from tests.registry.factories import RegistrySourceFactory

    source = RegistrySourceFactory(
        name="central",
        last_sync_succeeded_at=None,
        last_sync_error_at=timezone.now(),
        last_sync_error="HTTPConnectionPool(host='127.0.0.1', port=5999): Max retries exceeded "
        "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] "
        "Connection refused'))",
    )
    card = _soup(role_client(Role.ADMIN).get("/")).select_one("[data-card=sync-health]")
    row = card.select_one('li[data-sync="registry:central"]')
    text = " ".join(row.get_text().split())
    assert "failed" in text and "the MLflow registry could not be reached" in text
    assert "never synced" in text  # not a bare "never"
    assert "HTTPConnectionPool" not in text
    link = row.select_one("a")
    assert link["href"] == reverse("admin:registry_registrysource_change", args=[source.pk])


def _directive(policy: str, name: str) -> list[str]:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


@pytest.mark.parametrize("path", ["/", "/registry/models/", "/api/schema/"])
def test_pages_forbid_inline_styles(role_client, path):
    response = role_client(Role.DATA_SCIENTIST).get(path)
    assert _directive(response["Content-Security-Policy"], "style-src") == ["'self'"]


def test_only_the_api_docs_allow_the_inline_styles_swagger_ui_needs(role_client):
    response = role_client(Role.DATA_SCIENTIST).get("/api/docs/")
    policy = response["Content-Security-Policy"]
    assert _directive(policy, "style-src") == ["'self'", "'unsafe-inline'"]
    assert _directive(policy, "script-src") == ["'self'"]


def test_the_server_error_page_needs_no_inline_style(rf):
    from portal.errors import server_error

    request = rf.get("/registry/models/")
    html = server_error(request).content.decode()
    assert "style=" not in html and "<style" not in html
