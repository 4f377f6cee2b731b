"""The model card API: GET/PUT /api/v1/registry/models/{name}/card, POST .../card/review,
GET .../card/revisions. Refusals answer with the API's error body (403 a role, 409 a state,
400 bad input), through core.errors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import ANY_ROLE
from core.api_support import BadRequest

from . import selectors, services
from .api import ERRORS, NAME_PARAMETER, _catalog_model_or_404
from .models import CardStatus, RiskRating
from .serializers import ErrorSerializer

REFUSED = {
    403: OpenApiResponse(ErrorSerializer, description="Your role may not do this."),
    409: OpenApiResponse(ErrorSerializer, description="The card's state does not allow it."),
}


class ModelCardSerializer(serializers.Serializer):
    model = serializers.CharField(source="catalog_model.name")
    intended_use = serializers.CharField()
    limitations = serializers.CharField()
    training_data = serializers.CharField()
    risk_rating = serializers.ChoiceField(choices=["", *RiskRating.values])
    review_status = serializers.ChoiceField(choices=CardStatus.values)
    reviewed_by = serializers.CharField(
        source="reviewed_by.get_username", allow_null=True, default=None
    )
    reviewed_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(
        source="updated_by.get_username", allow_null=True, default=None
    )
    updated_at = serializers.DateTimeField()


class ModelCardInputSerializer(serializers.Serializer):
    intended_use = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    limitations = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    training_data = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    risk_rating = serializers.ChoiceField(
        choices=["", *RiskRating.values], required=False, allow_blank=True
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    submit = serializers.BooleanField(
        required=False, default=False, help_text="Submit the card for review after saving."
    )


class ModelCardReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=list(services.cards.REVIEW_OUTCOMES),
        help_text="approve, or return it to draft (with a comment).",
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Required to return."
    )


class ModelCardRevisionSerializer(serializers.Serializer):
    action = serializers.CharField()
    user = serializers.CharField(source="user_name")
    at = serializers.DateTimeField()
    changes = serializers.DictField(child=serializers.ListField(child=serializers.JSONField()))
    comment = serializers.CharField()


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise BadRequest({"detail": "Bad input.", "errors": serializer.errors})
    return serializer.validated_data


class ModelCardApi(APIView):
    """A model's card; PUT edits it (data scientists of the owning team, owners, admins)."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_card_retrieve",
        parameters=[NAME_PARAMETER],
        responses={200: ModelCardSerializer, 404: ERRORS[404]},
    )
    def get(self, request, name):
        card = selectors.card_for(_catalog_model_or_404(name))
        if card is None:
            raise BadRequest({"detail": "This model has no card yet."}) from None
        return Response(ModelCardSerializer(card).data)

    @extend_schema(
        operation_id="registry_model_card_update",
        parameters=[NAME_PARAMETER],
        request=ModelCardInputSerializer,
        responses={200: ModelCardSerializer, 400: ERRORS[400], 404: ERRORS[404], **REFUSED},
    )
    def put(self, request, name):
        model = _catalog_model_or_404(name)
        data = _valid(ModelCardInputSerializer, request.data)
        comment, submit = data.pop("comment", ""), data.pop("submit", False)
        card = services.card_update(
            catalog_model=model, user=request.user, data=data, comment=comment
        )
        if submit:
            card = services.card_submit(catalog_model=model, user=request.user)
        return Response(ModelCardSerializer(card).data)


class ModelCardReviewApi(APIView):
    """A manager approves the card in review, or returns it to draft with a comment."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_card_review",
        parameters=[NAME_PARAMETER],
        request=ModelCardReviewSerializer,
        responses={200: ModelCardSerializer, 400: ERRORS[400], 404: ERRORS[404], **REFUSED},
    )
    def post(self, request, name):
        model = _catalog_model_or_404(name)
        data = _valid(ModelCardReviewSerializer, request.data)
        card = services.card_review(
            catalog_model=model,
            user=request.user,
            outcome=data["decision"],
            comment=data.get("comment", ""),
        )
        return Response(ModelCardSerializer(card).data)


class ModelCardRevisionListApi(APIView):
    """Every change of the card, newest first (the audit of card changes)."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_card_revisions",
        parameters=[NAME_PARAMETER],
        responses={200: ModelCardRevisionSerializer(many=True), 404: ERRORS[404]},
    )
    def get(self, request, name):
        card = selectors.card_for(_catalog_model_or_404(name))
        revisions = selectors.card_revisions(card, limit=1000)
        return Response(ModelCardRevisionSerializer(revisions, many=True).data)
