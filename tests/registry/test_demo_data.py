"""The demo models, written into a real `mlflow server` and mirrored by the sync."""

import itertools

import pytest
from mlflow import MlflowClient

from registry import demo_data, services
from registry.devserver import MlflowServer
from registry.models import CatalogModel, ModelKind, ModelVersion, RegisteredModel, RegistrySource

pytestmark = pytest.mark.django_db

NAMES = {spec.name for spec in demo_data.DEMO_MODELS}
SPECS = {spec.name: spec for spec in demo_data.DEMO_MODELS}
FAMILY_METRICS = {
    "classifier": {"auc", "f1", "precision", "recall", "log_loss"},
    "forecast": {"rmse", "mape", "mae"},
    "ruleset": {"hit_rate", "false_positive_rate"},
}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """A server of its own: the shared one holds other tests' models."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-demo")).start()
    yield server
    server.stop()  # by its pid (its own session)
    assert server.process.poll() is not None


@pytest.fixture
def client(demo_server):
    return MlflowClient(tracking_uri=demo_server.url)


@pytest.fixture
def seeded(client):
    """Seed (the first test writes to MLflow; later ones find it there: seeding is idempotent)."""
    return demo_data.seed_registry(client)


@pytest.fixture
def central(demo_server, seeded):
    source = RegistrySource.objects.create(
        name="central", tracking_uri=demo_server.url, ui_url=demo_server.url, is_central=True
    )
    result = services.registry_sync(source=source, full=True)
    assert result.ok, result.as_dict()
    return source


def test_the_demo_data_is_what_the_pages_need():
    teams = {spec.team for spec in demo_data.DEMO_MODELS}
    assert teams == {"risk", "growth", "operations"}
    assert {"fraud-detector", "churn-predictor", "demand-forecast"} <= NAMES
    assert "transaction-screening-rules" in NAMES and "credit-limit-rules" not in NAMES
    assert 8 <= len(NAMES) <= 10
    for spec in demo_data.DEMO_MODELS:
        assert 3 <= spec.versions <= 8, spec.name
        assert 1 <= spec.champion <= spec.versions
        assert spec.champion not in spec.archived and spec.champion != spec.failed
        assert spec.challenger is None or spec.champion < spec.challenger <= spec.versions
        assert len(spec.notes) >= spec.versions - 1 or not spec.notes
    assert sum(1 for spec in demo_data.DEMO_MODELS if spec.failed) == 1
    assert sum(len(spec.archived) for spec in demo_data.DEMO_MODELS) >= 3


def test_version_plans_are_deterministic_and_metrics_fit_the_model_type():
    now_ms = 1_760_000_000_000
    for spec in demo_data.DEMO_MODELS:
        plans = demo_data.version_plans(spec, now_ms)
        assert plans == demo_data.version_plans(spec, now_ms)
        assert [p.version for p in plans] == list(range(1, spec.versions + 1))
        assert all(p.started_ms < p.finished_ms < now_ms for p in plans)
        assert all(a.started_ms < b.started_ms for a, b in itertools.pairwise(plans))
        for plan in plans:
            assert set(plan.metrics) == FAMILY_METRICS[spec.family], spec.name
            assert len(plan.git_commit) == 40 and "@" in plan.data_snapshot
        first, last = plans[0].metrics, plans[-1].metrics
        if spec.family == "classifier":
            assert all(0 < v < 1 for p in plans for v in p.metrics.values())
            assert last["auc"] > first["auc"]
            assert last["log_loss"] < first["log_loss"]
        elif spec.family == "forecast":
            assert all(p.metrics["mae"] < p.metrics["rmse"] for p in plans)
            assert last["rmse"] < first["rmse"]
        else:
            assert last["false_positive_rate"] < first["false_positive_rate"]
    fraud = demo_data.version_plans(SPECS["fraud-detector"], now_ms)
    failed = fraud[SPECS["fraud-detector"].failed - 1]
    champion = fraud[SPECS["fraud-detector"].champion - 1]
    assert failed.validation_status == "failed validation"
    assert failed.metrics["recall"] < champion.metrics["recall"]
    assert "Validation failed" in failed.description


def test_seeding_then_a_sync_mirrors_every_demo_model(central, client):
    models = {m.name: m for m in RegisteredModel.objects.filter(source=central)}
    assert set(models) == NAMES
    assert ModelVersion.objects.filter(registered_model__source=central).count() == sum(
        spec.versions for spec in demo_data.DEMO_MODELS
    )
    failed = []
    for name, spec in SPECS.items():
        model = models[name]
        assert model.tags == demo_data.model_tags(spec)
        assert model.description == spec.description
        expected_aliases = {"champion": spec.champion}
        if spec.challenger:
            expected_aliases["challenger"] = spec.challenger
        assert model.aliases == expected_aliases
        entry = model.catalog_model
        assert (entry.effective_kind, entry.effective_serving, entry.effective_team) == (
            spec.kind,
            spec.serving,
            spec.team,
        )
        for version in model.versions.all():
            assert set(version.metrics) == FAMILY_METRICS[spec.family]
            assert version.params and version.run_fetch_error == ""
            assert set(version.tags) == {"validation_status", "git_commit", "data_snapshot"}
            assert version.stage == ("Archived" if version.version in spec.archived else "")
            assert version.description and version.status == "READY"
            assert version.run_tags["mlflow.source.name"] == spec.training_pipeline
            if version.tags["validation_status"] == "failed validation":
                failed.append((name, version.version))
        by_number = {v.version: v for v in model.versions.all()}
        assert by_number[spec.champion].aliases == ["champion"]
        if spec.challenger:
            assert by_number[spec.challenger].aliases == ["challenger"]
    assert failed == [("fraud-detector", SPECS["fraud-detector"].failed)]
    fraud = models["fraud-detector"].versions.get(version=1)
    assert {"learning_rate", "max_depth", "n_estimators", "features", "training_window"} <= set(
        fraud.params
    )
    rules = models["transaction-screening-rules"].catalog_model
    assert rules.effective_kind == ModelKind.RULE_BASED


def test_the_unregistered_rule_based_model_is_a_catalog_entry(central):
    entry = CatalogModel.objects.get(name="credit-limit-rules")
    assert (entry.effective_kind, entry.effective_serving, entry.effective_team) == (
        "rule_based",
        "batch",
        "risk",
    )
    assert entry.owners and entry.description
    assert not entry.registered_models.exists()
    assert demo_data.seed_catalog() == []  # idempotent
    assert CatalogModel.objects.filter(name="credit-limit-rules").count() == 1


def test_a_second_seed_is_a_no_op(central, client):
    before = demo_data.seed_registry(client)
    again = demo_data.seed_registry(client)
    for result in (before, again):
        assert result["models_created"] == [] and result["versions_created"] == 0
        assert set(result["models_skipped"]) == NAMES and result["catalog_created"] == []
    central.refresh_from_db()
    incremental = services.registry_sync(source=central)
    assert incremental.ok and incremental.mode == "incremental"
    assert incremental.models.changed == 0 and incremental.versions.changed == 0
    full = services.registry_sync(source=central, full=True)
    assert full.models.changed == 0 and full.versions.changed == 0
    assert full.models.unchanged == len(NAMES)


def test_owners_come_from_the_owner_tag_only_where_nobody_named_any(central):
    fraud = CatalogModel.objects.get(name="fraud-detector")
    fraud.owners = ["someone@example.com"]
    fraud.save()
    changed = demo_data.catalog_owners_from_tags()
    assert changed == len(NAMES) - 1
    assert CatalogModel.objects.get(name="fraud-detector").owners == ["someone@example.com"]
    churn = CatalogModel.objects.get(name="churn-predictor")
    assert churn.owners == [SPECS["churn-predictor"].owner]
    assert demo_data.catalog_owners_from_tags() == 0
