"""DRF API views under /api/v1/registry/; each sets portal_access.

Read-only views of the catalog and the registry mirror, with the same filters, sorting and
comparison rules as the pages (both read through registry.selectors).
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import ANY_ROLE
from core.api_support import BadRequest, PortalPagination, validated_filters

from . import selectors
from .chart_context import metric_series_for, series_markers
from .forms import SORT_CHOICES, CatalogFilterForm, VersionFilterForm
from .models import CatalogModel, ModelVersion, RegistryEvent
from .selectors.headline import headlines_attach
from .serializers import (
    AliasAnswerSerializer,
    AliasAtQuerySerializer,
    ArtifactSerializer,
    CatalogModelDetailSerializer,
    CatalogModelListSerializer,
    ComparisonSerializer,
    ErrorSerializer,
    MetricSeriesSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    RegistryEventFilterSerializer,
    RegistryEventSerializer,
    RegistrySourceSerializer,
    _alias_links,
    headline_version_data,
)


class VersionPagination(PortalPagination):
    page_size = 25


def _catalog_model_or_404(name: str) -> CatalogModel:
    try:
        return selectors.catalog_model_get(name=name)
    except CatalogModel.DoesNotExist:
        raise Http404 from None


NAME_PARAMETER = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Catalog model name (may contain dots and spaces; URL-encode it).",
)
INCLUDE_DELETED = OpenApiParameter(
    "include_deleted",
    OpenApiTypes.BOOL,
    description="Include rows that vanished from their registry (hidden by default).",
)
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input (the message says what)."),
    404: OpenApiResponse(ErrorSerializer, description="No such model or version."),
}


class RegistrySourceListApi(APIView):
    """The MLflow registries the portal mirrors, with how fresh each mirror is."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_sources_list", responses=RegistrySourceSerializer(many=True)
    )
    def get(self, request):
        sources = selectors.source_list()
        return Response(RegistrySourceSerializer(sources, many=True).data)


class CatalogModelListApi(generics.ListAPIView):
    """The model catalog: the same filters and sort as the model list page."""

    portal_access = ANY_ROLE
    serializer_class = CatalogModelListSerializer
    pagination_class = PortalPagination
    queryset = CatalogModel.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        form = CatalogFilterForm(self.request.query_params)
        if not form.is_valid():
            raise exceptions.ValidationError(form.errors)
        return selectors.catalog_model_list(filters=form.filters())

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else headlines_attach(list(page))

    @extend_schema(
        operation_id="registry_models_list",
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Name contains (any case)."),
            OpenApiParameter("source", OpenApiTypes.STR, description="Registered in this source."),
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                enum=["ml", "rule_based", "unknown"],
                description="Effective kind (portal override, else registry tag).",
            ),
            OpenApiParameter(
                "serving",
                OpenApiTypes.STR,
                enum=["batch", "real_time", "unknown"],
                description="Effective serving.",
            ),
            OpenApiParameter("team", OpenApiTypes.STR, description="Effective team (any case)."),
            OpenApiParameter(
                "registered",
                OpenApiTypes.STR,
                enum=["yes", "no"],
                description="Has a registered model, or is a catalog-only entry.",
            ),
            OpenApiParameter(
                "alias",
                OpenApiTypes.STR,
                description=f"Has this alias on a registered model; {selectors.ALIAS_ANY} = any.",
            ),
            OpenApiParameter(
                "tag",
                OpenApiTypes.STR,
                many=True,
                explode=True,
                description="key=value (or key) on a registered model's tags; repeatable.",
            ),
            INCLUDE_DELETED,
            OpenApiParameter(
                "sort",
                OpenApiTypes.STR,
                enum=[v for v, _ in SORT_CHOICES],
                description="Sort key; '-' prefix for descending. Default: name.",
            ),
        ],
        responses={
            200: CatalogModelListSerializer(many=True),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Invalid filters: field name -> messages."
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CatalogModelDetailApi(APIView):
    """One catalog model with its registered models, aliases and tags."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_retrieve",
        parameters=[NAME_PARAMETER, INCLUDE_DELETED],
        responses={200: CatalogModelDetailSerializer, 404: ERRORS[404]},
    )
    def get(self, request, name):
        model = _catalog_model_or_404(name)
        include_deleted = VersionFilterForm(request.query_params)
        include_deleted.is_valid()
        registrations = selectors.catalog_model_registrations(
            catalog_model=model,
            include_deleted=include_deleted.cleaned_data.get("include_deleted", False),
        )
        live = [r for r in registrations if r.deleted_upstream_at is None]
        latest = selectors.catalog_model_versions(catalog_model=model).first()
        headline = selectors.headline_for(
            model,
            live,
            team_aliases=selectors.team_headline_aliases(),
            latest=(latest.registered_model, latest.version) if latest else (None, None),
        )
        data = {
            "name": model.name,
            "url": model.get_absolute_url(),
            "description": model.description,
            "kind": model.eff_kind,
            "serving": model.eff_serving,
            "team": model.eff_team,
            "overrides": {"kind": model.kind, "serving": model.serving, "team": model.team},
            "registry_categories": {
                "kind": model.registry_kind,
                "serving": model.registry_serving,
                "team": model.registry_team,
            },
            "owners": list(model.owners or []),
            "registered": any(r.deleted_upstream_at is None for r in registrations),
            "registered_models": registrations,
            "aliases": _alias_links(live),
            "headline_alias": headline.alias,
            "headline_rule": headline.rule,
            "headline_version": headline_version_data(headline),
            "created_at": model.created_at,
            "updated_at": model.updated_at,
        }
        return Response(CatalogModelDetailSerializer(data).data)


class ModelVersionListApi(generics.ListAPIView):
    """The versions of a catalog model's registered models, newest first."""

    portal_access = ANY_ROLE
    serializer_class = ModelVersionSerializer
    pagination_class = VersionPagination
    queryset = ModelVersion.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        model = _catalog_model_or_404(self.kwargs["name"])
        form = VersionFilterForm(self.request.query_params)
        if not form.is_valid():
            raise exceptions.ValidationError(form.errors)
        return selectors.catalog_model_versions(
            catalog_model=model,
            source=form.cleaned_data["source"],
            include_deleted=form.cleaned_data["include_deleted"],
        )

    @extend_schema(
        operation_id="registry_model_versions_list",
        parameters=[
            NAME_PARAMETER,
            OpenApiParameter("source", OpenApiTypes.STR, description="Only this source."),
            INCLUDE_DELETED,
        ],
        responses={
            200: ModelVersionSerializer(many=True),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Invalid filters: field name -> messages."
            ),
            404: ERRORS[404],
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ModelVersionDetailApi(APIView):
    """One version with its metrics, params, tags and run."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_version_retrieve",
        parameters=[
            OpenApiParameter(
                "source",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Registry source name.",
            ),
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Registered model name in that source.",
            ),
            OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={200: ModelVersionDetailSerializer, 404: ERRORS[404]},
    )
    def get(self, request, source, name, version):
        try:
            mv = selectors.model_version_get(source=source, name=name, version=version)
        except ModelVersion.DoesNotExist:
            raise Http404 from None
        return Response(ModelVersionDetailSerializer(mv).data)


class ModelVersionCompareApi(APIView):
    """2 to 4 versions of one catalog model side by side: metrics with deltas, then params."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_compare",
        parameters=[
            NAME_PARAMETER,
            OpenApiParameter(
                "v",
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": r"^[^:\s][^:]*:([^:]*:)?[0-9]+$"},
                    "minItems": selectors.COMPARE_MIN,
                    "maxItems": selectors.COMPARE_MAX,
                    "uniqueItems": True,
                },
                explode=True,
                required=True,
                description="2 to 4 versions as source:version (or source:model-name:version "
                "when a source holds two models of this entry). The first is the baseline.",
            ),
        ],
        responses={200: ComparisonSerializer, **ERRORS},
    )
    def get(self, request, name):
        model = _catalog_model_or_404(name)
        try:
            refs = selectors.version_refs_parse(request.query_params.getlist("v"))
            versions = selectors.compare_versions_resolve(catalog_model=model, refs=refs)
        except selectors.CompareError as error:
            raise BadRequest(" ".join(filter(None, [str(error), error.api_hint]))) from error
        comparison = selectors.version_comparison(versions)
        data = {
            "catalog_model": model.name,
            "versions": comparison.versions,
            "metrics": comparison.metrics,
            "params": comparison.params,
            "about": comparison.about,
            "tags": comparison.tags,
            "run_tags": comparison.run_tags,
        }
        refs_by_pk = {v.pk: str(r) for v, r in zip(versions, refs, strict=True)}
        return Response(ComparisonSerializer(data, context={"refs": refs_by_pk}).data)


class RegistryEventListApi(generics.ListAPIView):
    """What the syncs saw change in the model's registrations, oldest first: alias moves,
    stages, statuses, tags, descriptions, versions and models created, deleted or back."""

    portal_access = ANY_ROLE
    serializer_class = RegistryEventSerializer
    pagination_class = PortalPagination
    queryset = RegistryEvent.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        model = _catalog_model_or_404(self.kwargs["name"])
        data = validated_filters(
            RegistryEventFilterSerializer, self.request.query_params, code="invalid_filters"
        ).validated_data
        return selectors.registry_events(
            model,
            kinds=data.get("kind") or None,
            version=data.get("version"),
            since=data.get("since"),
            until=data.get("until"),
        )

    @extend_schema(
        operation_id="registry_model_events_list",
        parameters=[NAME_PARAMETER, RegistryEventFilterSerializer],
        responses={200: RegistryEventSerializer(many=True), **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AliasAtApi(APIView):
    """What an alias pointed at at a moment, as far as the syncs saw: a version, none, or
    unknown (the moment lies in a window between two syncs; the answer names it)."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_alias_at",
        parameters=[NAME_PARAMETER, AliasAtQuerySerializer],
        responses={200: AliasAnswerSerializer, **ERRORS},
    )
    def get(self, request, name):
        model = _catalog_model_or_404(name)
        data = validated_filters(
            AliasAtQuerySerializer, request.query_params, code="invalid_query"
        ).validated_data
        answer = selectors.alias_at(
            model, data["alias"], data["at"], source=data.get("source") or ""
        )
        return Response(AliasAnswerSerializer(answer).data)


class ModelVersionArtifactApi(APIView):
    """Where the version's binary is in JFrog Artifactory and what the last check found."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_version_artifact_retrieve",
        parameters=[
            OpenApiParameter(
                "source", OpenApiTypes.STR, OpenApiParameter.PATH, description="Registry source."
            ),
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Registered model name in that source.",
            ),
            OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={200: ArtifactSerializer, 404: ERRORS[404]},
    )
    def get(self, request, source, name, version):
        try:
            mv = selectors.model_version_get(source=source, name=name, version=version)
        except ModelVersion.DoesNotExist:
            raise Http404 from None
        return Response(ArtifactSerializer(selectors.binary_status(mv)).data)


class MetricSeriesApi(APIView):
    """One metric across every live version of a catalog model (the model page's chart), with
    each version's aliases and PROD marks."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="registry_model_metric_series",
        parameters=[
            NAME_PARAMETER,
            OpenApiParameter(
                "metric",
                OpenApiTypes.STR,
                description="The metric (default: the model's key metric, else its most "
                "common). An unknown one is a 400 listing the known metrics.",
            ),
        ],
        responses={200: MetricSeriesSerializer, **ERRORS},
    )
    def get(self, request, name):
        model = _catalog_model_or_404(name)
        try:
            series = metric_series_for(model, request.query_params.get("metric", ""))
        except selectors.MetricSeriesError as error:
            raise BadRequest(str(error)) from error
        markers = series_markers(model, series) or {}
        return Response(MetricSeriesSerializer(series, context={"markers": markers}).data)
