"""The registry's read queries: catalog filters and sorting, comparison rules, freshness."""

import datetime as dt

import pytest
from django.utils import timezone

from registry import selectors
from registry.selectors import CatalogFilters, CompareError, VersionRef
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db


def _names(**filters):
    return [m.name for m in selectors.catalog_model_list(filters=CatalogFilters(**filters))]


# --- catalog list ----------------------------------------------------------------------------


@pytest.mark.sqlite
def test_effective_categories_prefer_the_portal_override_then_the_registry_then_unknown():
    CatalogModelFactory(name="a", kind="rule_based", registry_kind="ml", registry_team="risk")
    CatalogModelFactory(name="b", registry_kind="ml", registry_serving="real_time")
    CatalogModelFactory(name="c")
    rows = {m.name: m for m in selectors.catalog_model_list(filters=CatalogFilters())}
    assert (rows["a"].eff_kind, rows["a"].eff_serving, rows["a"].eff_team) == (
        "rule_based",
        "unknown",
        "risk",
    )
    assert (rows["b"].eff_kind, rows["b"].eff_serving) == ("ml", "real_time")
    assert (rows["c"].eff_kind, rows["c"].eff_serving, rows["c"].eff_team) == ("unknown",) * 3
    assert _names(kind="ml") == ["b"]
    assert _names(kind="unknown") == ["c"]
    assert _names(serving="unknown") == ["a", "c"]
    assert _names(team="RISK") == ["a"]  # any case
    assert _names(team="unknown") == ["b", "c"]


@pytest.mark.sqlite
def test_latest_version_and_last_updated_are_annotated():
    now = timezone.now()
    rm = RegisteredModelFactory(name="m", updated_upstream_at=now - dt.timedelta(hours=2))
    ModelVersionFactory(registered_model=rm, version=1, created_upstream_at=now - dt.timedelta(3))
    ModelVersionFactory(registered_model=rm, version=2, created_upstream_at=now - dt.timedelta(2))
    ModelVersionFactory(  # deleted upstream: not the latest
        registered_model=rm, version=3, created_upstream_at=now, deleted_upstream_at=now
    )
    (row,) = selectors.catalog_model_list(filters=CatalogFilters())
    assert row.latest_version == 2
    assert row.latest_version_model_id == rm.pk
    assert row.last_updated == rm.updated_upstream_at
    (row,) = selectors.catalog_model_list(filters=CatalogFilters(include_deleted=True))
    assert row.latest_version == 3


@pytest.mark.sqlite
def test_a_model_registered_in_two_sources_takes_the_most_recent_version():
    now = timezone.now()
    catalog = CatalogModelFactory(name="fraud")
    central = RegisteredModelFactory(name="fraud", catalog_model=catalog)
    other = RegisteredModelFactory(
        name="dd.fraud", catalog_model=catalog, source=RegistrySourceFactory(name="dd")
    )
    ModelVersionFactory(
        registered_model=central, version=7, created_upstream_at=now - dt.timedelta(5)
    )
    ModelVersionFactory(registered_model=other, version=2, created_upstream_at=now)
    (row,) = selectors.catalog_model_list(filters=CatalogFilters())
    assert (row.latest_version, row.latest_version_model_id) == (2, other.pk)
    assert {r.source.name for r in row.listed_registrations} == {"central", "dd"}


@pytest.mark.sqlite
def test_never_registered_entries_use_their_own_update_time():
    model = CatalogModelFactory(name="rules")
    (row,) = selectors.catalog_model_list(filters=CatalogFilters())
    assert row.last_updated == model.updated_at
    assert row.latest_version is None and row.is_registered is False


@pytest.mark.sqlite
def test_entries_whose_registered_models_all_vanished_are_hidden_unless_asked():
    RegisteredModelFactory(name="gone", deleted_upstream_at=timezone.now())
    RegisteredModelFactory(name="live")
    CatalogModelFactory(name="rules")
    assert _names() == ["live", "rules"]
    assert _names(include_deleted=True) == ["gone", "live", "rules"]


@pytest.mark.sqlite
def test_registered_filter():
    RegisteredModelFactory(name="reg")
    CatalogModelFactory(name="rules")
    assert _names(registered=True) == ["reg"]
    assert _names(registered=False) == ["rules"]


@pytest.mark.sqlite
def test_search_matches_catalog_and_registered_names_in_any_case():
    RegisteredModelFactory(name="main.risk.Fraud_Detector")
    catalog = CatalogModelFactory(name="churn")
    RegisteredModelFactory(name="growth.churn_predictor_v2", catalog_model=catalog)
    CatalogModelFactory(name="credit-limit-rules")
    assert _names(q="fraud") == ["main.risk.Fraud_Detector"]
    assert _names(q="PREDICTOR") == ["churn"]
    assert _names(q="risk.") == ["main.risk.Fraud_Detector"]


@pytest.mark.sqlite
def test_source_filter():
    RegisteredModelFactory(name="a")
    RegisteredModelFactory(name="b", source=RegistrySourceFactory(name="dd"))
    assert _names(source="dd") == ["b"]
    assert _names(source="central") == ["a"]
    assert _names(source="nowhere") == []


@pytest.mark.sqlite
def test_alias_filter_any_or_named():
    RegisteredModelFactory(name="a", aliases={"champion": 3})
    RegisteredModelFactory(name="b", aliases={"challenger": 4})
    RegisteredModelFactory(name="c")
    assert _names(alias=selectors.ALIAS_ANY) == ["a", "b"]
    assert _names(alias="challenger") == ["b"]
    assert _names(alias="nope") == []


@pytest.mark.sqlite
def test_tag_filter_takes_keys_with_dots_and_lookup_words():
    RegisteredModelFactory(name="a", tags={"data.domain": "cards", "contains": "x"})
    RegisteredModelFactory(name="b", tags={"data": {"domain": "cards"}, "team": "risk"})
    RegisteredModelFactory(name="c", tags={"team": "growth"})
    assert _names(tags=(("data.domain", "cards"),)) == ["a"]
    assert _names(tags=(("contains", "x"),)) == ["a"]
    assert _names(tags=(("team", None),)) == ["b", "c"]
    assert _names(tags=(("team", "risk"),)) == ["b"]
    assert _names(tags=(("team", "risk"), ("data.domain", "cards"))) == []


@pytest.mark.sqlite
def test_tag_filter_compares_values_as_text_whatever_json_type_holds_them():
    RegisteredModelFactory(name="a", tags={"tier": "2", "serving": "real_time"})
    RegisteredModelFactory(name="b", tags={"tier": 2, "score": 0.5})  # written by hand, not MLflow
    RegisteredModelFactory(name="c", tags={"tier": "10", "serving": "batch"})
    assert _names(tags=(("tier", "2"),)) == ["a", "b"]
    assert _names(tags=(("score", "0.5"),)) == ["b"]
    assert _names(tags=(("serving", "real_time"),)) == ["a"]
    assert _names(tags=(("serving", "real"),)) == []  # whole values, not prefixes
    assert _names(tags=(("tier", ""),)) == []


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["alpha", "bravo", "charlie"]),
        ("-name", ["charlie", "bravo", "alpha"]),
        ("team", ["bravo", "charlie", "alpha"]),  # growth, risk, unknown
        ("-team", ["alpha", "charlie", "bravo"]),
        ("version", ["charlie", "alpha", "bravo"]),  # 1, 5, none last
        ("-version", ["alpha", "charlie", "bravo"]),
        ("updated", ["charlie", "alpha", "bravo"]),
        ("-updated", ["bravo", "alpha", "charlie"]),
        ("bogus", ["alpha", "bravo", "charlie"]),
    ],
)
def test_sorting(sort, expected):
    now = timezone.now()
    alpha = RegisteredModelFactory(
        name="alpha",
        updated_upstream_at=now - dt.timedelta(days=2),
        catalog_model__registry_team="",
    )
    ModelVersionFactory(registered_model=alpha, version=5)
    CatalogModelFactory(name="bravo", team="growth")  # updated now (never registered)
    charlie = RegisteredModelFactory(name="charlie", updated_upstream_at=now - dt.timedelta(days=9))
    ModelVersionFactory(registered_model=charlie, version=1)
    assert _names(sort=sort) == expected


@pytest.mark.sqlite
def test_team_choices_are_effective_and_distinct():
    CatalogModelFactory(name="a", team="risk")
    CatalogModelFactory(name="b", registry_team="risk")
    CatalogModelFactory(name="c", registry_team="Growth")
    CatalogModelFactory(name="d")
    assert selectors.catalog_team_choices() == ["Growth", "risk", "unknown"]


@pytest.mark.sqlite
def test_alias_choices_come_from_live_registered_models():
    RegisteredModelFactory(name="a", aliases={"champion": 1, "challenger": 2})
    RegisteredModelFactory(name="b", aliases={"shadow": 1}, deleted_upstream_at=timezone.now())
    assert selectors.alias_choices() == ["challenger", "champion"]


# --- key metric, links -----------------------------------------------------------------------


def test_key_metric_is_the_tagged_one_else_the_most_common():
    rm = RegisteredModelFactory(name="m")
    v1 = ModelVersionFactory(registered_model=rm, metrics={"auc": 1, "f1": 1})
    v2 = ModelVersionFactory(registered_model=rm, metrics={"f1": 1})
    assert selectors.key_metric_name(registrations=[rm], versions=[v1, v2]) == "f1"
    rm.tags = {"key_metric": "auc"}
    assert selectors.key_metric_name(registrations=[rm], versions=[v1, v2]) == "auc"
    assert selectors.key_metric_name(registrations=[], versions=[]) is None


def test_mlflow_run_url_needs_the_ui_the_experiment_and_the_run():
    source = RegistrySourceFactory(name="ui", ui_url="https://mlflow.example/")
    version = ModelVersionFactory(
        registered_model__source=source, registered_model__name="m", experiment_id="7", run_id="r1"
    )
    assert selectors.mlflow_run_url(version) == "https://mlflow.example/#/experiments/7/runs/r1"
    version.experiment_id = ""
    assert selectors.mlflow_run_url(version) == ""
    databricks = RegistrySourceFactory(name="dbx", tracking_uri="databricks")
    version = ModelVersionFactory(registered_model__source=databricks, registered_model__name="n")
    assert selectors.mlflow_run_url(version) == ""  # no UI URL known


# --- comparison ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lower"),
    [
        ("rmse", True),
        ("val_loss", True),  # contains "loss"
        ("loss_train", True),  # starts with "loss"
        ("p95_latency_ms", True),
        ("auc", False),
        ("accuracy", False),
        ("F1", False),
        ("RMSE", True),  # any case
    ],
)
def test_metric_direction(name, lower):
    assert selectors.lower_is_better(name) is lower


def test_metric_direction_follows_the_setting(settings):
    settings.REGISTRY_LOWER_IS_BETTER = ["cost"]
    assert selectors.lower_is_better("total_cost") is True
    assert selectors.lower_is_better("rmse") is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "at least 2"),
        (["central:1"], "at least 2"),
        (["a:1", "a:2", "a:3", "a:4", "a:5"], "at most 4"),
        (["central:1", "central"], "not a version reference"),
        (["central:1", "central:x"], "not a version reference"),
        (["central:1", ":2"], "not a version reference"),
        (["central:1", "a:b:c:4"], "not a version reference"),
        (["central:1", "central:1"], "listed twice"),
    ],
)
def test_bad_version_references(values, message):
    with pytest.raises(CompareError, match=message):
        selectors.version_refs_parse(values)


def test_version_references():
    refs = selectors.version_refs_parse(["central:1", " dd:main.risk.m:12 ", ""])
    assert refs == [VersionRef("central", 1), VersionRef("dd", 12, "main.risk.m")]
    assert [str(r) for r in refs] == ["central:1", "dd:main.risk.m:12"]


def test_resolving_references_stays_within_the_catalog_model():
    rm = RegisteredModelFactory(name="a")
    ModelVersionFactory(registered_model=rm, version=1)
    ModelVersionFactory(registered_model=rm, version=2)
    other = RegisteredModelFactory(name="b")
    ModelVersionFactory(registered_model=other, version=3)
    refs = selectors.version_refs_parse(["central:2", "central:1"])
    found = selectors.compare_versions_resolve(catalog_model=rm.catalog_model, refs=refs)
    assert [v.version for v in found] == [2, 1]
    refs = selectors.version_refs_parse(["central:1", "central:3"])
    with pytest.raises(CompareError, match="has no version central:3"):
        selectors.compare_versions_resolve(catalog_model=rm.catalog_model, refs=refs)


def test_ambiguous_references_ask_for_the_model_name():
    catalog = CatalogModelFactory(name="fraud")
    for name in ("fraud", "fraud_v2"):
        rm = RegisteredModelFactory(name=name, catalog_model=catalog)
        ModelVersionFactory(registered_model=rm, version=1)
        ModelVersionFactory(registered_model=rm, version=2)
    refs = selectors.version_refs_parse(["central:1", "central:2"])
    with pytest.raises(CompareError, match="ambiguous"):
        selectors.compare_versions_resolve(catalog_model=catalog, refs=refs)
    refs = selectors.version_refs_parse(["central:fraud:1", "central:fraud_v2:1"])
    found = selectors.compare_versions_resolve(catalog_model=catalog, refs=refs)
    assert [v.registered_model.name for v in found] == ["fraud", "fraud_v2"]


def test_comparison_deltas_best_values_and_differing_params():
    rm = RegisteredModelFactory(name="m")
    base = ModelVersionFactory(
        registered_model=rm,
        metrics={"auc": 0.80, "rmse": 0.50, "only_base": 1.0},
        params={"depth": "6", "lr": "0.1"},
    )
    better = ModelVersionFactory(
        registered_model=rm, metrics={"auc": 0.90, "rmse": 0.40}, params={"depth": "8", "lr": "0.1"}
    )
    worse = ModelVersionFactory(
        registered_model=rm, metrics={"auc": 0.70, "rmse": 0.60}, params={"depth": "6"}
    )
    comparison = selectors.version_comparison([base, better, worse])
    metrics = {row.name: row for row in comparison.metrics}
    assert list(metrics) == ["auc", "only_base", "rmse"]
    auc = metrics["auc"].cells
    assert [c.delta for c in auc] == [None, pytest.approx(0.10), pytest.approx(-0.10)]
    assert [c.is_best for c in auc] == [False, True, False]
    assert [c.better for c in auc] == [None, True, False]
    rmse = metrics["rmse"]
    assert rmse.lower_is_better
    assert [c.is_best for c in rmse.cells] == [False, True, False]  # 0.40 is the lowest
    assert [c.better for c in rmse.cells] == [None, True, False]
    only = metrics["only_base"].cells
    assert [c.value for c in only] == [1.0, None, None]
    assert not any(c.is_best for c in only)  # nothing to compare with
    params = {row.name: row for row in comparison.params}
    assert params["depth"].values == ("6", "8", "6") and params["depth"].differs
    assert params["lr"].values == ("0.1", "0.1", None) and params["lr"].differs
    same = selectors.version_comparison([base, base])
    assert not any(p.differs for p in same.params)
    assert not any(c.is_best for row in same.metrics for c in row.cells)  # all equal


def test_comparison_ties_and_non_numbers():
    rm = RegisteredModelFactory(name="m")
    a = ModelVersionFactory(registered_model=rm, metrics={"auc": 0.9, "note": "n/a"})
    b = ModelVersionFactory(registered_model=rm, metrics={"auc": 0.9, "note": 1.0})
    c = ModelVersionFactory(registered_model=rm, metrics={"auc": 0.8})
    metrics = {row.name: row for row in selectors.version_comparison([a, b, c]).metrics}
    assert [x.is_best for x in metrics["auc"].cells] == [True, True, False]
    assert [x.better for x in metrics["auc"].cells] == [None, None, False]
    assert [x.delta for x in metrics["note"].cells] == [None, None, None]


# --- freshness -------------------------------------------------------------------------------


def test_freshness_states(settings):
    settings.PORTAL_SYNC_STALE_AFTER_SECONDS = 3600
    now = timezone.now()
    RegistrySourceFactory(name="ok", last_sync_succeeded_at=now - dt.timedelta(minutes=3))
    RegistrySourceFactory(name="stale", last_sync_succeeded_at=now - dt.timedelta(hours=2))
    RegistrySourceFactory(
        name="failing",
        last_sync_succeeded_at=now - dt.timedelta(minutes=10),
        last_sync_error_at=now - dt.timedelta(minutes=1),
        last_sync_error="ConnectionError: boom",
    )
    RegistrySourceFactory(
        name="recovered",
        last_sync_succeeded_at=now - dt.timedelta(minutes=1),
        last_sync_error_at=now - dt.timedelta(minutes=10),
    )
    RegistrySourceFactory(name="never", last_sync_succeeded_at=None)
    RegistrySourceFactory(name="off", enabled=False, last_sync_succeeded_at=None)
    freshness = selectors.registry_freshness()
    states = {s.name: s.state for s in freshness.sources}
    assert states == {
        "failing": "failing",
        "never": "never",
        "ok": "ok",
        "recovered": "ok",
        "stale": "stale",
    }
    assert freshness.worst_state == "failing"
    assert freshness.as_of is None  # one source never synced
    assert freshness.stale_after_text == "1 hour"


def test_freshness_as_of_is_the_least_fresh_source():
    now = timezone.now()
    RegistrySourceFactory(name="a", last_sync_succeeded_at=now - dt.timedelta(minutes=3))
    RegistrySourceFactory(name="b", last_sync_succeeded_at=now - dt.timedelta(minutes=30))
    freshness = selectors.registry_freshness()
    assert freshness.as_of == now - dt.timedelta(minutes=30)
    assert freshness.worst_state == "ok"


def test_sync_status_list_is_unchanged():
    RegistrySourceFactory(name="central")
    (status,) = selectors.sync_status_list()
    assert status.name == "registry:central"
