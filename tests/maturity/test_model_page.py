"""The "Maturity" section of the registry's model page, the level badge in its header and the
model list's "Maturity" column, and the page actions: a manager's declaration and "Re-assess
now"."""

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from maturity import services
from maturity.criteria import CRITERIA
from maturity.models import MaturityRecord, ModelMaturity, Result, Source
from tests.maturity.factories import AssessedRecordFactory, results_for, set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

REASON = "Retraining on new data runs in Databricks workflows the portal cannot see."
L3 = [c for c in CRITERIA if c.level == 3]
L4 = [c for c in CRITERIA if c.level == 4]


def _soup(response):
    return BeautifulSoup(response.content, "html.parser")


def page_url(name="fraud-detector"):
    return reverse("registry:model-detail", kwargs={"name": name})


def declare_url(name="fraud-detector"):
    return reverse("maturity:declare", kwargs={"name": name})


def assess_url(name="fraud-detector"):
    return reverse("maturity:assess", kwargs={"name": name})


def section(client, name="fraud-detector"):
    response = client.get(page_url(name))
    assert response.status_code == 200
    found = _soup(response).select_one("[data-testid=maturity-section]")
    assert found is not None
    return found


@pytest.fixture
def model(db):
    return CatalogModelFactory(name="fraud-detector")


@pytest.fixture
def manager_client(client, make_user):
    client.force_login(make_user(Role.MANAGER, first_name="Maria", last_name="Manager"))
    return client


def results_with_evidence(level):
    """An assessment at ``level`` whose next level has one failure with evidence, one pass
    with evidence and (when there are more) one not measured."""
    results = results_for(level)
    next_level = [r for r in results if r["level"] == level + 1]
    next_level[0].update(
        result=Result.FAILED,
        summary="The release reached QA but never PROD.",
        evidence=[{"label": "release run #41", "url": "/pipelines/runs/41/"}],
    )
    if len(next_level) > 1:
        next_level[1].update(
            result=Result.PASSED,
            summary="Approved in QA by Alice.",
            evidence=[{"label": "approval 7", "url": "/approvals/7/"}],
        )
    if len(next_level) > 2:
        next_level[2].update(result=Result.NOT_MEASURED, summary="ADO never synced.")
    return results


# --- Section --------------------------------------------------------------------------------


def test_the_section_shows_the_assessed_level_and_the_next_levels_checklist(role_client, model):
    AssessedRecordFactory(catalog_model=model, level=2, results=results_with_evidence(2))
    services.model_maturity_rebuild(catalog_model_ids=[model.pk])
    found = section(role_client(Role.DATA_SCIENTIST))
    assessed = found.select_one("[data-testid=assessed-level]").get_text(" ", strip=True)
    assert assessed.startswith("Level 2") and "Automated training" in assessed
    card = found.select_one("[data-testid=maturity-assessed]").get_text(" ", strip=True)
    assert services.NIGHTLY in card and "Since just now" in card
    assert "What level 3 needs" in found.get_text(" ", strip=True)
    items = found.select("[data-testid=maturity-next-checklist] [data-criterion]")
    assert [i["data-criterion"] for i in items] == [c.code for c in L3]
    failed = items[0]
    assert failed["data-result"] == "failed"
    assert "The release reached QA but never PROD." in failed.get_text()
    assert failed.select_one("[data-testid=criterion-evidence] a")["href"] == "/pipelines/runs/41/"
    assert L3[0].fix in failed.select_one("[data-testid=criterion-fix]").get_text()
    passed = items[1]
    assert passed["data-result"] == "passed"
    assert passed.select_one("[data-testid=criterion-evidence] a").get_text() == "approval 7"
    assert passed.select_one("[data-testid=criterion-fix]") is None  # a fix only for failures


def test_not_measured_is_shown_as_such_not_as_a_failure(role_client, model):
    results = results_for(2, next_result=Result.NOT_MEASURED)
    AssessedRecordFactory(catalog_model=model, level=2, unmeasured_level=3, results=results)
    services.model_maturity_rebuild(catalog_model_ids=[model.pk])
    found = section(role_client(Role.DATA_SCIENTIST))
    items = found.select("[data-testid=maturity-next-checklist] [data-criterion]")
    assert {i["data-result"] for i in items} == {"not_measured"}
    assert all("Not measured" in i.get_text() for i in items)
    assert not any(i.select_one("[data-testid=criterion-fix]") for i in items)
    note = found.select_one("[data-testid=maturity-unmeasured]").get_text(" ", strip=True)
    assert "Level 3 could not be confirmed" in note and "not counted as a failure" in note
    assert L3[0].title in note


def test_all_criteria_by_level_are_in_a_collapsible_view(role_client, model):
    set_maturity(model, assessed=3)
    found = section(role_client(Role.APPROVER))
    details = found.select_one("details[data-testid=maturity-all-criteria]")
    assert details is not None and details.get("open") is None
    groups = details.select("[data-level]")
    assert [g["data-level"] for g in groups] == ["1", "2", "3", "4", "5"]
    assert [bool(g.select_one(".text-bg-success")) for g in groups] == [1, 1, 1, 0, 0]
    assert len(details.select("[data-criterion]")) == len(CRITERIA)


def test_the_history_is_a_timeline_newest_first(role_client, model):
    now = timezone.now()
    set_maturity(model, history=[1, 3], assessed=2, at=now - dt.timedelta(days=1))
    MaturityRecord(
        catalog_model=model,
        source=Source.DECLARED,
        level=3,
        created_at=now,
        made_by="Maria Manager",
        reason=REASON,
    ).save()
    services.model_maturity_rebuild(catalog_model_ids=[model.pk])
    found = section(role_client(Role.DATA_SCIENTIST))
    entries = found.select("[data-testid=maturity-history] li")
    assert [(e["data-source"], e["data-level"], e["data-direction"]) for e in entries] == [
        ("declared", "3", "first"),
        ("assessed", "2", "down"),
        ("assessed", "3", "up"),
        ("assessed", "1", "first"),
    ]
    assert REASON in entries[0].get_text()
    assert "from L3" in entries[1].get_text()


def test_a_disagreement_is_flagged_beside_both_levels(role_client, model):
    set_maturity(model, assessed=2, declared=4)
    found = section(role_client(Role.DATA_SCIENTIST))
    declared = found.select_one("[data-testid=declared-level]").get_text(" ", strip=True)
    assert declared.startswith("Level 4")
    assert "Maria Manager" in found.select_one("[data-testid=maturity-declared]").get_text()
    assert "Databricks workflows" in found.select_one("[data-testid=declared-reason]").get_text()
    flag = found.select_one("[data-testid=maturity-disagreement]").get_text(" ", strip=True)
    assert "disagree" in flag and "level 2" in flag and "level 4" in flag


def test_agreeing_levels_raise_no_flag(role_client, model):
    set_maturity(model, assessed=3, declared=3)
    found = section(role_client(Role.DATA_SCIENTIST))
    assert found.select_one("[data-testid=maturity-disagreement]") is None


def test_a_model_never_assessed_says_so_and_what_assesses_it(role_client, model):
    found = section(role_client(Role.DATA_SCIENTIST))
    text = found.select_one("[data-testid=maturity-never-assessed]").get_text(" ", strip=True)
    assert "Not assessed yet" in text and "nightly" in text
    assert found.select_one("[data-testid=maturity-history]") is None
    assert found.select_one("[data-testid=assess-form]") is None  # not for data scientists


def test_at_level_5_there_is_no_next_level(role_client, model):
    set_maturity(model, assessed=5)
    found = section(role_client(Role.DATA_SCIENTIST))
    assert found.select_one("[data-testid=maturity-top-level]") is not None
    assert found.select_one("[data-testid=maturity-next-checklist]") is None


def test_the_section_is_the_pages_maturity_anchor(role_client, model):
    soup = _soup(role_client(Role.DATA_SCIENTIST).get(page_url()))
    anchor = soup.select_one("#maturity")
    assert anchor is not None and anchor.select_one("[data-testid=maturity-section]")


@pytest.mark.parametrize(
    ("role", "declare", "assess"),
    [
        (Role.MANAGER, True, True),
        (Role.ADMIN, False, True),
        (Role.APPROVER, False, False),
        (Role.DATA_SCIENTIST, False, False),
    ],
)
def test_who_sees_the_declaration_form_and_the_assess_button(
    role, declare, assess, role_client, model
):
    set_maturity(model, assessed=2)
    found = section(role_client(role))
    assert (found.select_one("[data-testid=declare-form]") is not None) == declare
    assert (found.select_one("[data-testid=assess-form]") is not None) == assess


def test_the_form_offers_levels_1_to_5_and_withdraw(manager_client, model):
    set_maturity(model, assessed=2, declared=4)
    form = section(manager_client).select_one("[data-testid=declare-form]")
    assert form["action"] == declare_url()
    assert form.select_one("input[name=csrfmiddlewaretoken]") is not None
    options = [o["value"] for o in form.select("select[name=level] option")]
    assert options == ["", "1", "2", "3", "4", "5", "withdraw"]
    assert form.select_one("select[name=level] option[selected]")["value"] == "4"
    assert form.select_one("textarea[name=reason]") is not None


def test_withdraw_is_offered_only_when_a_level_is_declared(manager_client, model):
    set_maturity(model, assessed=2)
    form = section(manager_client).select_one("[data-testid=declare-form]")
    options = [o["value"] for o in form.select("select[name=level] option")]
    assert options == ["", "1", "2", "3", "4", "5"]
    page = _soup(manager_client.get(declare_url()))
    options = [o["value"] for o in page.select("select[name=level] option")]
    assert options == ["", "1", "2", "3", "4", "5"]
    assert "Withdraw it" not in page.get_text()
    set_maturity(model, declared=3)
    page = _soup(manager_client.get(declare_url()))
    assert "withdraw" in [o["value"] for o in page.select("select[name=level] option")]
    assert "Withdraw it" in page.get_text()


# --- Declaring from the page ----------------------------------------------------------------


def test_a_manager_declares_a_level_and_returns_to_the_section(manager_client, model):
    set_maturity(model, assessed=2)
    response = manager_client.post(declare_url(), {"level": "4", "reason": REASON})
    assert response.status_code == 302
    assert response["Location"] == page_url() + "#maturity"
    record = MaturityRecord.objects.get(source=Source.DECLARED)
    assert (record.level, record.reason, record.made_by) == (4, REASON, "Maria Manager")
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.declared_level, status.level, status.disagreement) == (4, 4, True)
    page = manager_client.get(response["Location"])
    assert "Level 4 declared for fraud-detector." in page.content.decode()


def test_a_manager_withdraws_a_declaration(manager_client, model):
    set_maturity(model, assessed=2, declared=4)
    response = manager_client.post(declare_url(), {"level": "withdraw", "reason": REASON})
    assert response.status_code == 302
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.declared_level, status.level, status.disagreement) == (None, 2, False)
    assert MaturityRecord.objects.filter(source=Source.DECLARED, level=None).count() == 1


@pytest.mark.parametrize("reason", ["", "too short"])
def test_a_reason_is_required(reason, manager_client, model):
    response = manager_client.post(declare_url(), {"level": "3", "reason": reason})
    assert response.status_code == 400
    form = _soup(response).select_one("[data-testid=declare-form]")
    error = form.select_one("textarea[name=reason]").find_next(class_="invalid-feedback")
    assert "reason" in error.get_text().lower()
    assert "is-invalid" in form.select_one("textarea[name=reason]")["class"]
    assert not MaturityRecord.objects.exists()


def test_a_missing_or_bad_level_is_a_form_error(manager_client, model):
    for level in ("", "6", "two"):
        response = manager_client.post(declare_url(), {"level": level, "reason": REASON})
        assert response.status_code == 400
        assert "is-invalid" in _soup(response).select_one("select[name=level]")["class"]
    assert not MaturityRecord.objects.exists()


def test_the_services_refusals_are_form_errors_with_their_status(manager_client, model):
    set_maturity(model, assessed=2)
    response = manager_client.post(declare_url(), {"level": "withdraw", "reason": REASON})
    assert response.status_code == 409
    errors = _soup(response).select_one("[data-testid=declare-errors]").get_text()
    assert "no declared level to withdraw" in errors
    offered = [o["value"] for o in _soup(response).select("select[name=level] option")]
    assert "withdraw" not in offered  # the redrawn form no longer offers it
    set_maturity(model, declared=3)
    response = manager_client.post(declare_url(), {"level": "3", "reason": REASON})
    assert response.status_code == 409
    field = _soup(response).select_one("select[name=level]")
    assert "is-invalid" in field["class"]
    assert "already the declared level" in field.find_next(class_="invalid-feedback").get_text()


@pytest.mark.parametrize("role", [Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN])
def test_only_managers_may_declare(role, role_client, model):
    client = role_client(role)
    assert client.get(declare_url()).status_code == 403
    assert client.post(declare_url(), {"level": "3", "reason": REASON}).status_code == 403
    assert not MaturityRecord.objects.exists()


def test_the_declaration_page_stands_alone(manager_client, model):
    set_maturity(model, assessed=2, declared=4)
    response = manager_client.get(declare_url())
    assert response.status_code == 200
    soup = _soup(response)
    assert soup.select_one("[data-testid=declare-form] select option[selected]")["value"] == "4"
    current = soup.select_one("[data-testid=declare-current]").get_text(" ", strip=True)
    assert "Level 2" in current and "Level 4 by Maria Manager" in current


def test_an_unknown_model_is_a_404(manager_client):
    assert manager_client.get(declare_url("nope")).status_code == 404
    assert (
        manager_client.post(declare_url("nope"), {"level": "3", "reason": REASON}).status_code
        == 404
    )
    assert manager_client.post(assess_url("nope")).status_code == 404


# --- Re-assess now --------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
def test_re_assess_now_writes_the_first_assessment(role, role_client, model):
    client = role_client(role)
    response = client.post(assess_url())
    assert response.status_code == 302
    assert response["Location"] == page_url() + "#maturity"
    record = MaturityRecord.objects.get(catalog_model=model)
    assert (record.source, record.made_by) == (Source.ASSESSED, services.ON_REQUEST)
    text = client.get(response["Location"]).content.decode()
    assert f"assessed for the first time: level {record.level}" in text


def test_re_assess_says_when_the_level_changed(manager_client, model):
    set_maturity(model, assessed=4)  # nothing synced: the real assessment finds less
    response = manager_client.post(assess_url(), follow=True)
    level = ModelMaturity.objects.get(pk=model.pk).assessed_level
    assert level != 4
    assert f"its level changed from 4 to {level}" in response.content.decode()


def test_re_assess_says_when_the_level_stayed(manager_client, model):
    manager_client.post(assess_url())
    count = MaturityRecord.objects.count()
    response = manager_client.post(assess_url(), follow=True)
    assert "its level is still" in response.content.decode()
    assert MaturityRecord.objects.count() == count  # unchanged: nothing new written


@pytest.mark.parametrize("role", [Role.APPROVER, Role.DATA_SCIENTIST])
def test_others_may_not_re_assess(role, role_client, model):
    client = role_client(role)
    assert client.post(assess_url()).status_code == 403
    assert client.get(assess_url()).status_code in (403, 405)
    assert not MaturityRecord.objects.exists()


# --- Header badge and list column -----------------------------------------------------------


def test_the_header_badge_shows_the_level_and_links_to_the_section(role_client, model):
    set_maturity(model, assessed=3)
    soup = _soup(role_client(Role.DATA_SCIENTIST).get(page_url()))
    badge = soup.select_one("[data-testid=model-badges] [data-testid=maturity-badge]")
    assert badge.get_text(strip=True) == "maturity L3"
    assert badge["href"] == page_url() + "#maturity"
    assert "maturity —" not in soup.select_one("[data-testid=model-badges]").get_text()
    assert soup.select_one("[data-testid=maturity-disagreement-badge]") is None


def test_the_header_badge_marks_a_disagreement(role_client, model):
    set_maturity(model, assessed=3, declared=5)
    soup = _soup(role_client(Role.DATA_SCIENTIST).get(page_url()))
    badge = soup.select_one("[data-testid=maturity-disagreement-badge]")
    assert badge.get_text(strip=True) == "declared L5"
    assert "declared level 5" in badge["title"] and "level 3" in badge["title"]


def test_an_unassessed_model_has_a_not_assessed_badge(role_client, model):
    soup = _soup(role_client(Role.DATA_SCIENTIST).get(page_url()))
    badge = soup.select_one("[data-testid=maturity-badge]")
    assert badge.get_text(strip=True) == "maturity not assessed"


def test_without_the_badge_setting_the_header_keeps_its_placeholder(role_client, model, settings):
    settings.REGISTRY_MODEL_PAGE_BADGES = []
    set_maturity(model, assessed=3)
    soup = _soup(role_client(Role.DATA_SCIENTIST).get(page_url()))
    assert "maturity —" in soup.select_one("[data-testid=model-badges]").get_text()
    assert soup.select_one("[data-testid=maturity-badge]") is None


def _maturity_cells(client):
    soup = _soup(client.get(reverse("registry:model-list")))
    return {
        tr["data-model"]: tr.select_one("td[data-column=Maturity]")
        for tr in soup.select("tr[data-model]")
    }


def test_the_model_list_fills_the_maturity_column(role_client):
    a = set_maturity(CatalogModelFactory(name="alpha"), assessed=3)
    set_maturity(CatalogModelFactory(name="beta"), assessed=2, declared=4)
    CatalogModelFactory(name="gamma")
    cells = _maturity_cells(role_client(Role.DATA_SCIENTIST))
    alpha = cells["alpha"].select("a")
    assert [x.get_text() for x in alpha] == ["L3"]
    assert alpha[0]["href"] == page_url(a.name) + "#maturity"
    beta = [x.get_text() for x in cells["beta"].select("a")]
    assert beta == ["L2", "≠ declared L4"]
    assert cells["gamma"].get_text(strip=True) == "—"
    assert cells["gamma"].a["title"] == "Not assessed yet"


def test_the_maturity_column_takes_one_query_per_page(role_client, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from maturity.sections import catalog_levels

    models = [set_maturity(CatalogModelFactory(name=f"m-{i}"), assessed=i % 5) for i in range(6)]
    with CaptureQueriesContext(connection) as queries:
        cells = catalog_levels(models)
    assert len(queries) == 1
    assert len(cells) == 6


def test_without_the_annotator_the_column_keeps_its_placeholder(role_client, settings):
    settings.REGISTRY_CATALOG_LIST_ANNOTATORS = ["pipelines.sections.catalog_deployments"]
    set_maturity(CatalogModelFactory(name="alpha"), assessed=3)
    soup = _soup(role_client(Role.DATA_SCIENTIST).get(reverse("registry:model-list")))
    row = soup.select_one('tr[data-model="alpha"]')
    assert row.select_one("td[data-column=Maturity]") is None
    assert row.select("td")[8].span["title"] == "Filled once maturity is assessed"
