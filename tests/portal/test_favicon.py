"""The portal has an icon: linked from every page, and at /favicon.ico for browsers that ask."""

import pytest
from bs4 import BeautifulSoup
from django.contrib.staticfiles import finders
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def test_every_page_links_the_svg_icon(client):
    soup = BeautifulSoup(client.get("/accounts/login/").content, "html.parser")
    icon = soup.select_one('link[rel="icon"]')
    assert icon is not None
    assert (icon["href"], icon["type"]) == (static("favicon.svg"), "image/svg+xml")
    assert finders.find("favicon.svg").endswith("static/favicon.svg")


def test_favicon_ico_points_at_the_icon_for_anyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == static("favicon.ico")
    assert "max-age" in response.get("Cache-Control", "")
    with open(finders.find("favicon.ico"), "rb") as icon:
        assert icon.read(4) == b"\x00\x00\x01\x00"  # an ICO file's header
