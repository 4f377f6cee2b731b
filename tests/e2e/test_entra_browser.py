"""A real browser signs in with Microsoft: the portal's live server, the local Entra stand-in
over HTTPS (its throw-away certificate accepted by the browser context), and the real msal."""

import copy

import pytest

from core.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST_CARD = {
    Role.APPROVER: "Waiting for you",
    Role.DATA_SCIENTIST: "Your team's models",
    Role.MANAGER: "Portfolio maturity",
    Role.ADMIN: "Sync health",
}
APP_ROLE = {
    Role.APPROVER: "Portal.Approver",
    Role.DATA_SCIENTIST: "Portal.DataScientist",
    Role.MANAGER: "Portal.Manager",
    Role.ADMIN: "Portal.Admin",
}


@pytest.fixture
def entra_on(entra_on, settings):
    """The shared configuration, plus the CSP form-action base.py adds for the authority."""
    entra = entra_on
    # what base.py adds for the configured authority: sign-out's POST redirects to Entra
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"].append(entra.base_url)
    settings.CONTENT_SECURITY_POLICY = policy
    return entra


@pytest.fixture
def entra_page(browser):
    """A page whose browser context accepts the stand-in's self-signed certificate."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize("role", [Role.APPROVER, Role.MANAGER])
def test_sign_in_with_microsoft_lands_on_the_roles_home(role, entra_page, live_server, entra_on):
    page = entra_page
    entra_on.sign_in_as(
        oid=f"0c3f1a52-5e1c-4f5e-9a38-2b8d1f4c7a1{list(Role).index(role)}",
        name="Ann Example",
        preferred_username="ann@contoso.test",
        email="ann@contoso.test",
        roles=[APP_ROLE[role]],
    )
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.wait_for_url(f"{live_server.url}/")

    assert page.locator(".card-header").first.inner_text() == FIRST_CARD[role]
    assert page.get_by_test_id("user-name").inner_text() == "Ann Example"
    authorize = entra_on.authorizations[-1]
    assert authorize["redirect_uri"] == f"{live_server.url}/auth/callback/"
    assert not authorize["error"]

    # signing out ends the portal session and goes through Entra's end-session endpoint
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{entra_on.end_session_endpoint}**")
    assert entra_on.logouts[-1]["post_logout_redirect_uri"] == f"{live_server.url}/accounts/login/"
    page.get_by_role("link", name="Back to the application").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url


def test_a_person_without_a_role_is_told_whom_to_ask(entra_page, live_server, entra_on, settings):
    settings.PORTAL_ROLE_CONTACT = "the MLOps platform team"
    entra_on.sign_in_as(
        oid="7a7a7a7a-0000-4000-8000-000000000001",
        name="Nora Norole",
        preferred_username="nora@contoso.test",
        roles=[],
    )
    page = entra_page
    page.goto(f"{live_server.url}/approvals/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.wait_for_url(f"{live_server.url}/")
    assert "have no role yet" in page.locator("h1").inner_text()
    assert "the MLOps platform team" in page.get_by_test_id("whom-to-ask").inner_text()


@pytest.mark.parametrize("local", [True, False], ids=["with-passwords", "entra-only"])
def test_login_page_screenshots(local, entra_page, live_server, entra_on, settings, screenshot):
    settings.LOCAL_ACCOUNTS_ENABLED = local
    page = entra_page
    page.goto(f"{live_server.url}/accounts/login/")
    button = page.get_by_role("link", name="Sign in with Microsoft")
    assert button.is_visible()
    assert page.get_by_label("Password").count() == (1 if local else 0)
    name = f"login-entra-{'passwords' if local else 'only'}"
    screenshot(page, f"{name}-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    assert button.is_visible()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # no sideways scrolling
    screenshot(page, f"{name}-narrow")
