import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from portal.roles import Role, user_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    return settings


def test_demo_seed_creates_one_user_per_role_and_prints_passwords(demo_settings, capsys):
    call_command("demo", "--seed-only")
    out = capsys.readouterr().out
    credentials = json.loads((demo_settings.VAR_DIR / "demo-credentials.json").read_text())
    users = get_user_model().objects.filter(username__in=credentials)
    assert {next(iter(user_roles(u))) for u in users} == set(Role.values)
    for username, password in credentials.items():
        assert f"{username:<8} password: {password}" in out
        assert get_user_model().objects.get(username=username).check_password(password)
    assert oct((demo_settings.VAR_DIR / "demo-credentials.json").stat().st_mode)[-3:] == "600"


def test_demo_keeps_the_same_passwords_on_a_second_run(demo_settings, capsys):
    call_command("demo", "--seed-only")
    first = (demo_settings.VAR_DIR / "demo-credentials.json").read_text()
    call_command("demo", "--seed-only")
    assert (demo_settings.VAR_DIR / "demo-credentials.json").read_text() == first


def test_demo_refuses_to_run_outside_the_local_settings(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with the local settings"):
        call_command("demo", "--seed-only")
