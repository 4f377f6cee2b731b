"""A manager's declared level (``services.maturity_declare``): who may, with what, and how it
sits beside the assessment."""

import pytest

from maturity import services
from maturity.models import MaturityRecord, ModelMaturity, Source
from maturity.services import DeclarationRefused, maturity_declare
from tests.maturity.factories import set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

REASON = "Retraining on new data runs in Databricks workflows the portal cannot see."


@pytest.fixture
def manager(make_user):
    return make_user("manager", first_name="Maria", last_name="Manager")


@pytest.fixture
def model(db):
    return CatalogModelFactory(name="fraud-detector")


def refused(**kwargs) -> DeclarationRefused:
    with pytest.raises(DeclarationRefused) as caught:
        maturity_declare(**kwargs)
    return caught.value


@pytest.mark.parametrize("roles", [("approver",), ("data_scientist",), ("admin",), ()])
def test_only_managers_declare(roles, make_user, model):
    error = refused(catalog_model=model, level=3, reason=REASON, user=make_user(*roles))
    assert (error.code, error.http_status) == ("not_manager", 403)
    assert not MaturityRecord.objects.exists()


def test_a_superuser_without_the_manager_role_is_refused(make_user, model):
    admin = make_user(is_superuser=True, is_staff=True)
    error = refused(catalog_model=model, level=3, reason=REASON, user=admin)
    assert error.code == "not_manager"


@pytest.mark.parametrize("reason", ["", "   ", "too short", "  short   \n"])
def test_a_reason_of_ten_characters_is_required(reason, manager, model):
    error = refused(catalog_model=model, level=3, reason=reason, user=manager)
    assert (error.code, error.http_status, error.field) == ("reason_required", 400, "reason")
    assert not MaturityRecord.objects.exists()


@pytest.mark.parametrize("level", [0, 6, -1, 99, "3"])
def test_levels_are_one_to_five(level, manager, model):
    error = refused(catalog_model=model, level=level, reason=REASON, user=manager)
    assert (error.code, error.field) == ("bad_level", "level")


def test_a_declaration_is_a_record_with_who_and_why(manager, model):
    record = maturity_declare(catalog_model=model, level=4, reason=f"  {REASON}  ", user=manager)
    assert record.source == Source.DECLARED
    assert (record.level, record.reason, record.created_by) == (4, REASON, manager)
    assert record.made_by == "Maria Manager"
    assert record.results == []
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.declared_level, status.declared_record, status.level) == (4, record, 4)
    assert status.assessed_level is None and not status.disagreement


def test_every_declaration_stays_in_the_history(manager, model, make_user):
    other = make_user("manager", username="mgr2", first_name="Ola", last_name="Other")
    maturity_declare(catalog_model=model, level=4, reason=REASON, user=manager)
    maturity_declare(catalog_model=model, level=2, reason="Back to 2 after the audit.", user=other)
    maturity_declare(
        catalog_model=model, level=None, reason="The assessment is right now.", user=manager
    )
    history = MaturityRecord.objects.filter(catalog_model=model).order_by("created_at", "pk")
    assert [(r.level, r.made_by) for r in history] == [
        (4, "Maria Manager"),
        (2, "Ola Other"),
        (None, "Maria Manager"),
    ]


def test_the_same_level_again_is_refused_as_unchanged(manager, model):
    maturity_declare(catalog_model=model, level=3, reason=REASON, user=manager)
    error = refused(catalog_model=model, level=3, reason=REASON, user=manager)
    assert (error.code, error.http_status) == ("unchanged", 409)
    assert MaturityRecord.objects.count() == 1


def test_withdrawing_goes_back_to_the_assessed_level(manager, model):
    set_maturity(model, assessed=2)
    maturity_declare(catalog_model=model, level=4, reason=REASON, user=manager)
    record = maturity_declare(
        catalog_model=model, level=None, reason="The pipelines show it now.", user=manager
    )
    assert record.level is None and record.level_name == "withdrawn"
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.declared_level, status.level, status.disagreement) == (None, 2, False)


def test_nothing_to_withdraw(manager, model):
    error = refused(catalog_model=model, level=None, reason=REASON, user=manager)
    assert (error.code, error.http_status) == ("nothing_to_withdraw", 409)
    maturity_declare(catalog_model=model, level=2, reason=REASON, user=manager)
    maturity_declare(catalog_model=model, level=None, reason=REASON, user=manager)
    assert refused(catalog_model=model, level=None, reason=REASON, user=manager).code == (
        "nothing_to_withdraw"
    )


def test_a_disagreement_is_flagged_and_cleared_when_they_agree(manager, model):
    set_maturity(model, assessed=2)
    maturity_declare(catalog_model=model, level=4, reason=REASON, user=manager)
    assert ModelMaturity.objects.get(pk=model.pk).disagreement
    maturity_declare(
        catalog_model=model, level=2, reason="Agreed with the pipelines.", user=manager
    )
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.level, status.disagreement) == (2, False)


def test_an_assessment_never_changes_the_declared_level(manager, build):
    model = build.ml_model()
    version = build.version(model)
    build.ci(model)
    build.training(model, model_version=version)
    maturity_declare(catalog_model=model, level=4, reason=REASON, user=manager)

    services.models_assess(catalog_model_ids=[model.pk])
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.assessed_level, status.declared_level, status.level) == (2, 4, 4)
    assert status.disagreement

    build.release(model, version=version, approvers={"QA": "Alice", "PROD": "Bob"})
    build.training(model, model_version=version, reason="resourceTrigger")
    services.models_assess(catalog_model_ids=[model.pk])
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.assessed_level, status.declared_level, status.level) == (3, 4, 4)
    assert MaturityRecord.objects.filter(source=Source.DECLARED).count() == 1


def test_an_assessment_that_reaches_the_declared_level_clears_the_flag(manager, build):
    model = build.ml_model()
    version = build.version(model)
    build.ci(model)
    build.training(model, model_version=version)
    maturity_declare(catalog_model=model, level=3, reason=REASON, user=manager)
    services.models_assess(catalog_model_ids=[model.pk])
    assert ModelMaturity.objects.get(pk=model.pk).disagreement
    build.release(model, version=version, approvers={"QA": "Alice", "PROD": "Bob"})
    services.models_assess(catalog_model_ids=[model.pk])
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.assessed_level, status.level, status.disagreement) == (3, 3, False)
