"""The registry history in the admin: operators read it, nobody adds, changes or deletes."""

import pytest
from django.urls import reverse

from core.roles import Role
from tests.registry.factories import RegistryEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    return client


def test_the_history_admin_lists_and_shows_but_never_writes(admin_client):
    event = RegistryEventFactory(name="champion", version=3, old_value=2, new_value=3)
    changelist = admin_client.get(reverse("admin:registry_registryevent_changelist"))
    assert changelist.status_code == 200
    assert "champion" in changelist.content.decode()
    change_url = reverse("admin:registry_registryevent_change", args=[event.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(change_url, {"name": "hacked"}).status_code == 403
    assert admin_client.get(reverse("admin:registry_registryevent_add")).status_code == 403
    delete_url = reverse("admin:registry_registryevent_delete", args=[event.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.name == "champion"
