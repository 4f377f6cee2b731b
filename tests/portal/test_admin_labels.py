"""The admin's index names every table in plain English (no "Hook deliverys")."""

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from core.roles import Role

pytestmark = pytest.mark.django_db


def test_the_admin_index_uses_proper_plural_labels(role_client, django_user_model):
    client = role_client(Role.ADMIN)
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "x"))
    soup = BeautifulSoup(client.get(reverse("admin:index")).content, "html.parser")
    labels = {a.get_text(strip=True) for a in soup.select("#content-main th[scope=row] a")}
    assert {"Model maturity", "Hook deliveries", "Webhook deliveries", "ADO projects"} <= labels
    assert not {"Model maturitys", "Hook deliverys", "Webhook deliverys", "Ado projects"} & labels
