"""Keyboard focus is visible on the dark navigation bar, and the first load asks for nothing
that is missing (the favicon)."""

import re

import pytest

from core.roles import Role
from tests.e2e.test_sign_in import _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(n) for n in re.findall(r"[\d.]+", css)[:3])


def _luminance(rgb) -> float:
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    high, low = sorted([_luminance(a), _luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_navbar_shows_where_the_keyboard_is(page, live_server, make_user, screenshot):
    """WCAG 2.2 focus appearance: a solid indicator at least 2 px thick, at least 3:1 against
    the bar around it, on every control of the bar reached with Tab."""
    make_user(Role.ADMIN, username="e2e-keys")
    _sign_in(page, live_server.url, "e2e-keys")
    bar = _rgb(
        page.locator("nav.portal-navbar").evaluate("e => getComputedStyle(e).backgroundColor")
    )
    page.locator("body").focus()
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const e = document.activeElement, s = getComputedStyle(e);
                 return {inBar: !!e.closest('nav.portal-navbar'), text: e.innerText.trim(),
                         style: s.outlineStyle, width: parseFloat(s.outlineWidth),
                         colour: s.outlineColor, visible: e.matches(':focus-visible')}; }"""
        )
        if not focused["inBar"]:
            continue
        seen.append(focused["text"])
        assert focused["visible"], focused
        assert focused["style"] == "solid" and focused["width"] >= 2, focused
        assert contrast(_rgb(focused["colour"]), bar) >= 3, focused
        if focused["text"] == "Models":
            screenshot(page, "navbar-focus")
    assert {"Home", "Models", "Sign out"} <= set(seen), seen


def test_the_first_load_asks_for_nothing_missing(page, live_server, make_user):
    make_user(Role.DATA_SCIENTIST, username="e2e-icon")
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    _sign_in(page, live_server.url, "e2e-icon")
    page.wait_for_load_state("networkidle")
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    response = page.request.get(icon)
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
    assert page.request.get(f"{live_server.url}/favicon.ico").ok  # followed to the ICO
    assert failed == []
