"""factory_boy factories of the registry tables (catalog, sources, mirror rows)."""

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from registry.models import (
    CatalogModel,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistryEventKind,
    RegistrySource,
)


class RegistrySourceFactory(DjangoModelFactory):
    class Meta:
        model = RegistrySource
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"source-{n}")
    tracking_uri = factory.LazyAttribute(lambda s: f"http://mlflow-{s.name}.example:5000")
    is_central = False
    enabled = True
    last_sync_succeeded_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=3))


class CatalogModelFactory(DjangoModelFactory):
    class Meta:
        model = CatalogModel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n:04d}")
    description = ""


class RegisteredModelFactory(DjangoModelFactory):
    class Meta:
        model = RegisteredModel

    source = factory.SubFactory(RegistrySourceFactory, name="central", is_central=True)
    catalog_model = factory.SubFactory(
        CatalogModelFactory,
        name=factory.SelfAttribute("..name"),
        registry_kind="ml",
        registry_serving="batch",
        registry_team="risk",
    )
    name = factory.Sequence(lambda n: f"registered-{n:04d}")
    tags = factory.Dict({})
    aliases = factory.Dict({})
    created_upstream_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=30))
    updated_upstream_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    last_synced_at = factory.LazyFunction(timezone.now)


class ModelVersionFactory(DjangoModelFactory):
    class Meta:
        model = ModelVersion

    registered_model = factory.SubFactory(RegisteredModelFactory)
    version = factory.Sequence(lambda n: n + 1)
    status = "READY"
    user_id = "dana@example.com"
    source_uri = factory.LazyAttribute(
        lambda v: f"models:/m-{v.run_id[:8]}" if v.run_id else "s3://bucket/model"
    )
    run_id = factory.Faker("hexify", text="^" * 32)
    experiment_id = "1"
    tags = factory.Dict({})
    aliases = factory.List([])
    metrics = factory.Dict({"auc": 0.9, "rmse": 0.3})
    params = factory.Dict({"max_depth": "6"})
    run_tags = factory.Dict({})
    created_upstream_at = factory.LazyAttribute(
        lambda v: timezone.now() - dt.timedelta(days=30) + dt.timedelta(hours=v.version)
    )
    updated_upstream_at = factory.SelfAttribute("created_upstream_at")
    last_synced_at = factory.LazyFunction(timezone.now)


class RegistryEventFactory(DjangoModelFactory):
    """One history event; by default an alias set on a model the portal had seen before."""

    class Meta:
        model = RegistryEvent

    registered_model = factory.SubFactory(RegisteredModelFactory)
    source = factory.SelfAttribute("registered_model.source")
    kind = RegistryEventKind.ALIAS_SET
    name = "champion"
    version = 1
    new_value = factory.SelfAttribute("version")
    observed_at = factory.LazyFunction(timezone.now)
    previously_seen_at = factory.LazyAttribute(lambda e: e.observed_at - dt.timedelta(minutes=5))
    seen_by = "full sweep"


class ModelCardFactory(DjangoModelFactory):
    class Meta:
        model = ModelCard

    catalog_model = factory.SubFactory(CatalogModelFactory)
    intended_use = "Score card payments for fraud before authorisation."
    limitations = "Not for cross-border payments."
    training_data = "12 months of EU card payments."
    risk_rating = "medium"
