"""The admin shows the maturity tables read-only: criteria are owned by the code, records are
append-only, and the current rows and snapshots are derived."""

import pytest
from django.urls import reverse

from core.roles import Role
from maturity.models import Criterion, MaturityRecord, MaturitySnapshot, ModelMaturity
from tests.maturity.factories import SnapshotFactory, set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

MODELS = [Criterion, MaturityRecord, ModelMaturity, MaturitySnapshot]


@pytest.fixture
def operator(role_client):
    model = set_maturity(CatalogModelFactory(name="fraud-detector"), assessed=3, declared=4)
    SnapshotFactory(catalog_model=model)
    return role_client(Role.ADMIN)


def _url(model, action, *args):
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{action}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_table_is_listed_and_readable(model, operator):
    response = operator.get(_url(model, "changelist"))
    assert response.status_code == 200
    obj = model.objects.first()
    detail = operator.get(_url(model, "change", obj.pk))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # no save button: read-only


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_nothing_can_be_added_changed_or_deleted(model, operator):
    obj = model.objects.first()
    count = model.objects.count()
    assert operator.get(_url(model, "add")).status_code == 403
    assert operator.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert operator.post(_url(model, "change", obj.pk), {}).status_code == 403
    assert model.objects.count() == count


def test_records_can_be_searched_by_model(operator):
    response = operator.get(_url(MaturityRecord, "changelist") + "?q=fraud")
    assert response.status_code == 200
    assert b"fraud-detector" in response.content
