"""Repeated wrong passwords lock sign-in for a while, per account and per address."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import AuditAction, AuditEvent
from core.client_address import client_ip
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture(autouse=True)
def throttle_settings(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


@pytest.fixture
def dana(db):
    return UserFactory(username="dana", roles=("data_scientist",))


def _from(address: str) -> Client:
    """A browser at this address, behind the portal's trusted proxy (127.0.0.1)."""
    return Client(HTTP_X_FORWARDED_FOR=address)


def _sign_in(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _fail(client: Client, username: str, times: int = LIMIT) -> None:
    for attempt in range(times):
        _sign_in(client, username, f"wrong-{attempt}")


def test_after_five_wrong_passwords_the_right_one_is_refused_with_a_message(dana):
    browser = _from("198.51.100.7")
    _fail(browser, "dana")
    response = _sign_in(browser, "dana", TEST_PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(browser)
    html = response.content.decode()
    assert 'data-testid="locked-out"' in html
    assert "Too many failed sign-ins" in html and "15 minutes" in html
    assert 'name="username"' in html  # the sign-in page itself, not a bare error page


def test_the_lockout_is_in_the_audit_trail(dana):
    _fail(_from("198.51.100.7"), "dana")
    rows = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_DENIED, detail__reason="locked_out")
    [row] = rows
    assert row.actor_id == dana.pk
    assert row.detail["method"] == "local"
    assert row.detail["ip"] == "198.51.100.7"
    assert "locked" in row.message.lower()


def test_attempts_while_locked_are_audited_as_locked_not_as_wrong_passwords(dana):
    browser = _from("198.51.100.7")
    _fail(browser, "dana")
    before = AuditEvent.objects.filter(detail__reason="bad_credentials").count()
    _sign_in(browser, "dana", TEST_PASSWORD)
    assert AuditEvent.objects.filter(detail__reason="bad_credentials").count() == before
    assert AuditEvent.objects.filter(detail__reason="locked_out").count() == 2


def test_a_successful_sign_in_resets_the_count(dana):
    browser = _from("198.51.100.7")
    _fail(browser, "dana", LIMIT - 1)
    _sign_in(browser, "dana", TEST_PASSWORD)
    assert _signed_in(browser)
    browser.logout()
    _fail(browser, "dana", LIMIT - 1)
    _sign_in(browser, "dana", TEST_PASSWORD)
    assert _signed_in(browser)


def test_one_address_guessing_many_accounts_is_locked_out(dana):
    attacker = _from("203.0.113.9")
    for n in range(LIMIT):
        _sign_in(attacker, f"someone{n}", "guess")
    _sign_in(attacker, "dana", TEST_PASSWORD)
    assert not _signed_in(attacker)
    # the same account from another address still signs in
    colleague = _from("198.51.100.20")
    _sign_in(colleague, "dana", TEST_PASSWORD)
    assert _signed_in(colleague)


def test_after_the_cool_off_the_account_signs_in_again(dana):
    from axes.models import AccessAttempt

    browser = _from("198.51.100.7")
    _fail(browser, "dana")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    _sign_in(browser, "dana", TEST_PASSWORD)
    assert _signed_in(browser)


def test_confirming_a_password_is_throttled_too(dana):
    browser = _from("198.51.100.7")
    browser.force_login(dana)
    for attempt in range(LIMIT):
        browser.post("/accounts/reauthenticate/?next=/", {"password": f"wrong-{attempt}"})
    response = browser.post("/accounts/reauthenticate/?next=/", {"password": TEST_PASSWORD})
    assert response.status_code == 429
    assert 'data-testid="locked-out"' in response.content.decode()


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # behind the trusted proxy
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a spoofed left part
        ("192.0.2.44", "198.51.100.7", "192.0.2.44"),  # not a trusted proxy: header ignored
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ],
)
def test_the_client_address_trusts_forwarded_for_only_from_the_proxy(
    rf, remote, forwarded, expected
):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = rf.get("/", REMOTE_ADDR=remote, **headers)
    assert client_ip(request) == expected
