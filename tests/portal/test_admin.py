import pytest
from django.urls import reverse

from core.roles import Role

pytestmark = pytest.mark.django_db


def test_an_operator_reaching_admin_login_goes_on_to_the_admin(role_client):
    client = role_client(Role.ADMIN)
    response = client.get(reverse("admin:login") + "?next=/admin/auth/user/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/auth/user/"


def test_admin_login_ignores_a_next_url_on_another_host(role_client):
    client = role_client(Role.ADMIN)
    response = client.get(reverse("admin:login") + "?next=https://evil.example/")
    assert response["Location"] == reverse("admin:index")


def test_the_admin_role_can_manage_users_through_group_permissions(role_client):
    client = role_client(Role.ADMIN)
    response = client.get(reverse("admin:auth_user_add"))
    assert response.status_code == 200


def test_a_non_operator_is_told_why_not(role_client):
    client = role_client(Role.MANAGER)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 403
    assert b"admin role" in response.content
