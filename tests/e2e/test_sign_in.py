import pytest

from core.roles import Role
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST_CARD = {
    Role.APPROVER: "Waiting for you",
    Role.DATA_SCIENTIST: "Your team's models",
    Role.MANAGER: "Portfolio maturity",
    Role.ADMIN: "Sync health",
}


def _sign_in(page, base_url, username):
    page.goto(f"{base_url}/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


@pytest.mark.parametrize("role", list(Role))
def test_each_role_signs_in_and_sees_its_home(role, page, live_server, make_user, screenshot):
    make_user(role, username=f"e2e-{role}", first_name=role.label.split()[0])
    _sign_in(page, live_server.url, f"e2e-{role}")

    assert page.locator(".card-header").first.inner_text() == FIRST_CARD[role]
    assert page.locator(".empty-state").count() >= 2
    nav = page.locator("#portal-nav .nav-link").all_inner_texts()
    assert ("Admin" in nav) == (role == Role.ADMIN)
    # vendored CSS really loaded: Bootstrap styles the navbar dark
    background = page.locator("nav.navbar").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background != "rgba(0, 0, 0, 0)"
    screenshot(page, f"home-{role}-desktop")

    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, f"home-{role}-narrow")
    assert page.locator(".navbar-toggler").is_visible()
    page.locator(".navbar-toggler").click()
    page.get_by_role("button", name="Sign out").wait_for(state="visible")
    page.wait_for_timeout(400)  # let the collapse animation finish before the picture
    page.screenshot(path=str(screenshot.folder / f"home-{role}-narrow-menu.png"))

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def test_a_wrong_password_shows_an_error(page, live_server, make_user):
    make_user(Role.APPROVER, username="e2e-wrong")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("e2e-wrong")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Your username and password did not")
