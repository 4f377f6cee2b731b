"""Model cards: who edits and reviews them, the audit of every change, the page, the API and
the card beside an approval."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from core.errors import PortalError
from core.roles import Role
from registry import services
from registry.demo_cards import seed_model_cards
from registry.models import CardAction, CardStatus, ModelCard, ModelCardRevision
from tests.approvals.factories import ApprovalRequestFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

CARD = {
    "intended_use": "Score card payments before authorisation.",
    "limitations": "Not for cross-border payments.",
    "training_data": "12 months of EU card payments.",
    "risk_rating": "high",
}


@pytest.fixture
def fraud():
    """fraud-detector of team risk, owned by dana; a second risk model owned by erin."""
    model = CatalogModelFactory(name="fraud-detector", team="risk", owners=["dana@example.com"])
    CatalogModelFactory(name="aml-screening", team="risk", owners=["erin@example.com"])
    CatalogModelFactory(name="churn", team="growth", owners=["gus@example.com"])
    return model


@pytest.fixture
def people(make_user):
    def user(name, *roles):
        return make_user(*roles, username=name, email=f"{name}@example.com")

    return {
        "dana": user("dana", Role.DATA_SCIENTIST),  # owner
        "erin": user("erin", Role.DATA_SCIENTIST),  # same team, not an owner
        "gus": user("gus", Role.DATA_SCIENTIST),  # another team
        "mia": user("mia", Role.MANAGER),
        "abe": user("abe", Role.APPROVER),
        "ada": user("ada", Role.ADMIN),
    }


def test_who_may_edit_and_the_audit_of_each_change(fraud, people):
    card = services.card_update(catalog_model=fraud, user=people["dana"], data=CARD)
    assert card.review_status == CardStatus.DRAFT and card.risk_rating == "high"
    services.card_update(
        catalog_model=fraud, user=people["erin"], data={"limitations": "No cross-border."}
    )
    services.card_update(catalog_model=fraud, user=people["ada"], data={"risk_rating": "medium"})
    for outsider in ("gus", "mia", "abe"):
        with pytest.raises(services.CardRefused) as refused:
            services.card_update(catalog_model=fraud, user=people[outsider], data=CARD)
        assert refused.value.http_status == 403
    actions = list(ModelCardRevision.objects.order_by("at", "pk").values_list("action", flat=True))
    assert actions == [CardAction.CREATED, CardAction.EDITED, CardAction.EDITED]
    edit = ModelCardRevision.objects.filter(user_name__icontains="").order_by("pk")[1]
    assert edit.changes == {"limitations": ["Not for cross-border payments.", "No cross-border."]}
    with pytest.raises(PortalError):
        services.card_update(catalog_model=fraud, user=people["dana"], data={"risk_rating": "x"})


def test_review_cycle_and_an_edit_of_an_approved_card_goes_back_to_draft(fraud, people):
    services.card_update(catalog_model=fraud, user=people["dana"], data=CARD)
    with pytest.raises(services.CardRefused):
        services.card_review(catalog_model=fraud, user=people["mia"], outcome="approve")
    services.card_submit(catalog_model=fraud, user=people["dana"])
    with pytest.raises(services.CardRefused):
        services.card_review(catalog_model=fraud, user=people["dana"], outcome="approve")
    with pytest.raises(PortalError, match="needs a comment"):
        services.card_review(catalog_model=fraud, user=people["mia"], outcome="return")
    services.card_review(
        catalog_model=fraud, user=people["mia"], outcome="return", comment="Name the segments."
    )
    services.card_submit(catalog_model=fraud, user=people["dana"])
    card = services.card_review(catalog_model=fraud, user=people["mia"], outcome="approve")
    assert card.review_status == CardStatus.APPROVED and card.reviewed_by == people["mia"]
    card = services.card_update(
        catalog_model=fraud, user=people["dana"], data={"limitations": "Changed."}
    )
    assert card.review_status == CardStatus.DRAFT
    last = ModelCardRevision.objects.first()
    assert last.changes["review_status"] == [CardStatus.APPROVED, CardStatus.DRAFT]
    returned = ModelCardRevision.objects.get(action=CardAction.RETURNED)
    assert returned.comment == "Name the segments." and returned.user == people["mia"]
    services.card_archive(catalog_model=fraud, user=people["mia"])
    with pytest.raises(services.CardRefused):
        services.card_update(catalog_model=fraud, user=people["dana"], data=CARD)


def test_revisions_are_append_only_in_the_database(fraud, people):
    services.card_update(catalog_model=fraud, user=people["dana"], data=CARD)
    revision = ModelCardRevision.objects.get()
    with pytest.raises(TypeError):
        revision.save()
    with pytest.raises(TypeError):
        ModelCardRevision.objects.all().delete()
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE registry_modelcardrevision SET comment = 'x'")


def test_the_model_page_section_and_the_card_page(fraud, people, client):
    client.force_login(people["dana"])
    page = client.get(fraud.get_absolute_url()).content.decode()
    assert 'data-testid="model-card"' in page and "No model card yet" in page
    url = reverse("registry:model-card", kwargs={"name": fraud.name})
    assert client.post(url, {"action": "save", **CARD}).status_code == 302
    assert client.post(url, {"action": "submit"}).status_code == 302
    page = client.get(fraud.get_absolute_url()).content.decode()
    assert "High risk" in page and "In review" in page
    # a data scientist cannot review: 403 with the message, on the page
    refused = client.post(url, {"action": "approve"})
    assert refused.status_code == 403 and b"Only a manager reviews" in refused.content
    client.force_login(people["mia"])
    returned = client.post(url, {"action": "return", "comment": ""})
    assert returned.status_code == 400 and b"needs a comment" in returned.content
    assert client.post(url, {"action": "approve"}).status_code == 302
    page = client.get(fraud.get_absolute_url()).content.decode()
    assert "Approved" in page and 'data-testid="card-reviewer"' in page
    history = client.get(url).content.decode()
    assert "Submitted for review" in history and "Approved" in history
    client.force_login(people["gus"])
    other = client.post(url, {"action": "save", **CARD})
    assert other.status_code == 403 and b"risk team" in other.content


def test_the_card_api(fraud, people, client):
    url = reverse("api:registry:model-card", kwargs={"name": fraud.name})
    client.force_login(people["dana"])
    assert client.get(url).status_code == 400  # no card yet
    put = client.put(url, {**CARD, "submit": True}, content_type="application/json")
    assert put.status_code == 200 and put.json()["review_status"] == "in_review"
    bad = client.put(url, {"risk_rating": "extreme"}, content_type="application/json")
    assert bad.status_code == 400
    review = reverse("api:registry:model-card-review", kwargs={"name": fraud.name})
    assert client.post(review, {"decision": "approve"}, "application/json").status_code == 403
    client.force_login(people["mia"])
    approved = client.post(review, {"decision": "approve"}, "application/json")
    assert approved.status_code == 200 and approved.json()["reviewed_by"] == "mia"
    revisions = client.get(
        reverse("api:registry:model-card-revisions", kwargs={"name": fraud.name})
    )
    assert [r["action"] for r in revisions.json()] == ["approved", "submitted", "created"]
    assert client.put(url, CARD, content_type="application/json").status_code == 403


def test_the_card_beside_an_approval(people, client):
    registered = RegisteredModelFactory(name="fraud-detector")
    version = ModelVersionFactory(registered_model=registered, version=3)
    approval = ApprovalRequestFactory(model_version=version)
    client.force_login(people["abe"])
    url = reverse("approvals:detail", kwargs={"pk": approval.pk})
    assert "No model card" in client.get(url).content.decode()
    ModelCard.objects.create(
        catalog_model=registered.catalog_model, risk_rating="low", intended_use="Fraud scores"
    )
    page = client.get(url).content.decode()
    assert 'data-testid="approval-model-card"' in page and "Low risk" in page
    assert "Fraud scores" in page
    api = client.get(reverse("api:approvals:approval-detail", kwargs={"pk": approval.pk})).json()
    assert api["model_card"]["risk_rating"] == "low"
    assert api["model_card"]["review_status"] == "draft"


def test_demo_cards_spread_risk_and_review_states(people, make_user):
    make_user(Role.MANAGER, username="maya")
    for name in ("fraud-detector", "churn-predictor", "demand-forecast"):
        CatalogModelFactory(name=name)
    assert seed_model_cards() == ["fraud-detector", "churn-predictor", "demand-forecast"]
    assert seed_model_cards() == []  # idempotent
    states = dict(ModelCard.objects.values_list("catalog_model__name", "review_status"))
    assert states == {
        "fraud-detector": "approved",
        "churn-predictor": "in_review",
        "demand-forecast": "draft",
    }
    fraud = ModelCard.objects.get(catalog_model__name="fraud-detector")
    assert fraud.is_high_risk and fraud.reviewed_by.username == "maya"
    assert fraud.revisions.count() == 3
