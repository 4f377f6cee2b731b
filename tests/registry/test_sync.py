"""The registry sync against a real `mlflow server`."""

import random
import uuid
import warnings

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry import services
from registry.devserver import free_port
from registry.models import (
    CatalogModel,
    ModelKind,
    ModelVersion,
    RegisteredModel,
    RegistrySource,
    Serving,
)
from tests.registry.upstream import add_version, mirror_snapshot, upstream_snapshot

pytestmark = pytest.mark.django_db


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def source(mlflow_server):
    return RegistrySource.objects.create(
        name=unique("src"), tracking_uri=mlflow_server.url, is_central=True
    )


def sync(source, full=False):
    source.refresh_from_db()
    result = services.registry_sync(source=source, full=full)
    assert result.ok, result.as_dict()
    return result


def test_full_sync_mirrors_models_versions_aliases_tags_and_run_metrics(source, mlflow_client):
    name = unique("fraud-detector")
    mlflow_client.create_registered_model(
        name,
        tags={"team": "risk", "model_kind": "ML", "serving": "real-time"},
        description="Flags fraud",
    )
    add_version(mlflow_client, name, metrics={"auc": 0.91, "log_loss": 0.2}, params={"depth": "6"})
    add_version(mlflow_client, name, metrics={"auc": 0.93}, tags={"validated": "yes"})
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    mlflow_client.set_registered_model_alias(name, "challenger", "2")

    result = sync(source)

    model = RegisteredModel.objects.get(source=source, name=name)
    assert model.tags["team"] == "risk" and model.description == "Flags fraud"
    assert model.aliases == {"champion": 1, "challenger": 2}
    v1, v2 = model.versions.order_by("version")
    assert v1.aliases == ["champion"] and v2.aliases == ["challenger"]
    assert v1.metrics == {"auc": 0.91, "log_loss": 0.2} and v1.params == {"depth": "6"}
    assert v2.tags == {"validated": "yes"} and v1.status == "READY"
    assert v1.created_upstream_at is not None and v1.run_fetched_at is not None
    entry = model.catalog_model
    assert entry.name == name and entry.description == "Flags fraud"
    assert (entry.effective_kind, entry.effective_serving, entry.effective_team) == (
        ModelKind.ML,
        Serving.REAL_TIME,
        "risk",
    )
    assert result.mode == "full" and result.models.created >= 1 and result.versions.created >= 2
    source.refresh_from_db()
    assert source.last_sync_succeeded_at and source.last_full_sync_at and source.cursor_ms
    assert source.last_sync_stats["models"]["created"] == result.models.created


def test_a_second_sync_changes_nothing(source, mlflow_client):
    name = unique("churn")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    sync(source)
    again = sync(source, full=True)
    assert again.models.changed == 0 and again.versions.changed == 0 and again.runs_read == 0
    incremental = sync(source)
    assert incremental.mode == "incremental"
    assert incremental.models.changed == 0 and incremental.versions.changed == 0
    assert incremental.models.unchanged == 0  # nothing newer than the cursor was even read


def test_incremental_sync_reads_only_what_changed(source, mlflow_client):
    first = unique("demand")
    mlflow_client.create_registered_model(first)
    sync(source)
    second = unique("demand")
    mlflow_client.create_registered_model(second)
    add_version(mlflow_client, first)
    result = sync(source)
    assert result.mode == "incremental"
    assert result.models.created == 1 and result.models.updated == 1  # second new; first bumped
    assert result.versions.created == 1
    assert RegisteredModel.objects.get(source=source, name=first).versions.count() == 1


def test_what_incremental_cannot_see_the_full_sweep_catches(source, mlflow_client):
    name = unique("limits")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    sync(source)
    # Alias moves and model tags do not bump MLflow's last-updated time.
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    mlflow_client.set_registered_model_tag(name, "team", "growth")
    sync(source)
    model = RegisteredModel.objects.get(source=source, name=name)
    assert model.aliases == {"champion": 1}
    sync(source, full=True)
    model.refresh_from_db()
    assert model.aliases == {"champion": 2} and model.tags == {"team": "growth"}
    assert list(model.versions.order_by("version").values_list("aliases", flat=True)) == [
        [],
        ["champion"],
    ]


def test_vanished_models_and_versions_are_marked_deleted_never_dropped(source, mlflow_client):
    name, doomed = unique("screening"), unique("old")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    add_version(mlflow_client, name)
    mlflow_client.create_registered_model(doomed)
    add_version(mlflow_client, doomed)
    sync(source)
    mlflow_client.delete_model_version(name, "1")
    mlflow_client.delete_registered_model(doomed)
    result = sync(source, full=True)
    assert result.models.deleted == 1 and result.versions.deleted == 2
    gone = RegisteredModel.objects.get(source=source, name=doomed)
    assert gone.deleted_upstream_at is not None
    assert gone.versions.get().deleted_upstream_at is not None
    assert ModelVersion.objects.get(registered_model__name=name, version=1).deleted_upstream_at
    assert (
        ModelVersion.objects.get(registered_model__name=name, version=2).deleted_upstream_at is None
    )
    # A model re-created under the same name comes back to life in the mirror.
    mlflow_client.create_registered_model(doomed, description="again")
    sync(source)
    gone.refresh_from_db()
    assert gone.deleted_upstream_at is None and gone.description == "again"


def test_a_rename_retires_the_old_name_and_mirrors_the_new(source, mlflow_client):
    old = unique("renamed")
    mlflow_client.create_registered_model(old)
    add_version(mlflow_client, old)
    sync(source)
    new = unique("renamed")
    mlflow_client.rename_registered_model(old, new)
    sync(source)  # a rename bumps the timestamp of the new name, and the old one is gone
    sync(source, full=True)
    assert RegisteredModel.objects.get(source=source, name=old).deleted_upstream_at is not None
    assert RegisteredModel.objects.get(source=source, name=new).versions.get().version == 1


def test_a_source_that_is_down_leaves_the_mirror_as_it_was(source, mlflow_client):
    name = unique("kept")
    mlflow_client.create_registered_model(name)
    sync(source)
    before = mirror_snapshot(source)
    RegistrySource.objects.filter(pk=source.pk).update(
        tracking_uri=f"http://127.0.0.1:{free_port()}"
    )
    source.refresh_from_db()
    result = services.registry_sync(source=source, full=True)
    assert not result.ok
    assert "connect" in result.error.lower(), result.error
    source.refresh_from_db()
    assert source.last_sync_error and source.last_sync_error_at > source.last_sync_succeeded_at
    assert mirror_snapshot(source) == before
    assert RegisteredModel.objects.get(source=source, name=name).deleted_upstream_at is None


def test_two_syncs_of_one_source_never_overlap(source):
    from core.leases import lease_acquire, lease_release

    token = lease_acquire(RegistrySource, source.pk, ttl_seconds=60)
    try:
        result = services.registry_sync(source=source)
        assert result.skipped == "another sync of this source is running"
    finally:
        lease_release(RegistrySource, source.pk, token)
    assert services.registry_sync(source=source).ok


def test_an_expired_lease_does_not_block_forever(source):
    from core.leases import lease_acquire

    assert lease_acquire(RegistrySource, source.pk, ttl_seconds=-1)  # a crashed holder
    assert services.registry_sync(source=source).ok


def test_a_targeted_sync_refreshes_one_model(source, mlflow_client):
    name = unique("targeted")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    sync(source)
    mlflow_client.set_model_version_tag(name, "1", "approved", "qa")
    result = services.registered_model_sync(source=source, name=name)
    assert result.ok and result.versions.updated == 1
    assert ModelVersion.objects.get(registered_model__name=name).tags == {"approved": "qa"}
    mlflow_client.delete_registered_model(name)
    services.registered_model_sync(source=source, name=name)
    assert RegisteredModel.objects.get(source=source, name=name).deleted_upstream_at is not None


def test_a_nan_metric_is_kept_as_missing(source, mlflow_client):
    name = unique("nan")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name, metrics={"auc": float("nan"), "f1": 0.5})
    sync(source)
    assert ModelVersion.objects.get(registered_model__name=name).metrics == {"auc": None, "f1": 0.5}


def test_one_catalog_entry_links_the_same_model_in_two_registries(
    source, mlflow_server, mlflow_client
):
    other = RegistrySource.objects.create(name=unique("dd"), tracking_uri=mlflow_server.url)
    name = unique("shared")
    mlflow_client.create_registered_model(name, tags={"team": "ops", "serving": "batch"})
    sync(source)
    sync(other)
    entry = CatalogModel.objects.get(name=name)
    assert set(entry.registered_models.values_list("source__name", flat=True)) == {
        source.name,
        other.name,
    }
    assert entry.effective_serving == Serving.BATCH


def test_the_catalog_name_tag_and_unity_catalog_names(source):
    uc = RegistrySource(name="uc", tracking_uri="databricks", registry_uri="databricks-uc")
    assert services.catalog_name_for(uc, "main.risk.fraud-detector", {}) == "fraud-detector"
    assert (
        services.catalog_name_for(source, "fraud_v2", {"catalog_name": "fraud-detector"})
        == "fraud-detector"
    )
    assert services.catalog_name_for(source, "main.risk.x", {}) == "main.risk.x"


def test_category_tags_are_normalised_and_unknown_is_not_guessed():
    assert services.category_from_tags({"model_kind": "Rule-Based", "serving": "Online"}) == {
        "registry_kind": ModelKind.RULE_BASED,
        "registry_serving": Serving.REAL_TIME,
        "registry_team": "",
    }
    assert services.category_from_tags({"model_kind": "magic"})["registry_kind"] == ""


def test_each_source_gets_an_editable_beat_schedule(mlflow_server):
    from django_celery_beat.models import PeriodicTask

    src = RegistrySource.objects.create(
        name=unique("sched"), tracking_uri=mlflow_server.url, sync_interval_seconds=120
    )
    incremental = PeriodicTask.objects.get(name=f"registry sync: {src.name}")
    full = PeriodicTask.objects.get(name=f"registry full sweep: {src.name}")
    assert incremental.task == full.task == "registry.sync_source"
    assert incremental.interval.every == 120 and full.interval.every == 3600
    assert '"full": true' in full.kwargs and incremental.enabled
    src.enabled = False
    src.sync_interval_seconds = 600
    src.save()
    incremental.refresh_from_db()
    assert incremental.interval.every == 600 and not incremental.enabled
    src.delete()
    assert not PeriodicTask.objects.filter(name__contains=src.name).exists()


def test_sync_status_reaches_readyz(source, client, mlflow_client):
    sync(source)
    syncs = {s["name"]: s for s in client.get("/readyz").json()["syncs"]}
    assert syncs[f"registry:{source.name}"]["failing"] is False
    assert syncs[f"registry:{source.name}"]["age_seconds"] < 60


def test_the_command_prints_a_summary(source, mlflow_client, capsys):
    mlflow_client.create_registered_model(unique("cmd"))
    call_command("sync_registry", "--source", source.name, "--full")
    out = capsys.readouterr()
    assert "models    created" in out.out and "full sync done in" in out.out
    assert "models" in out.err  # progress goes to stderr


def test_the_command_names_an_unknown_source(source):
    with pytest.raises(CommandError, match=f"No registry source named 'nope' .*{source.name}"):
        call_command("sync_registry", "--source", "nope")


def test_the_command_fails_clearly_when_the_source_is_down(capsys):
    down = RegistrySource.objects.create(
        name=unique("down"), tracking_uri=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(CommandError, match=f"did not complete for: {down.name}"):
        call_command("sync_registry", "--source", down.name)
    assert "the mirror is unchanged" in capsys.readouterr().out


# Randomized convergence ------------------------------------------------------------------


class RandomRegistry:
    """Random creates, updates, deletes, renames, alias moves, tag changes and stages."""

    def __init__(self, client, rng: random.Random, prefix: str):
        self.client, self.rng, self.prefix = client, rng, prefix
        self.names: list[str] = []

    def _name(self) -> str:
        return self.rng.choice(self.names)

    def _versions(self, name) -> list[int]:
        return [int(v.version) for v in self.client.search_model_versions(f"name = '{name}'")]

    def step(self) -> None:
        ops = ["create_model"] if not self.names else [
            "create_model", "create_version", "create_version", "model_tag", "delete_model_tag",
            "version_tag", "delete_version_tag", "alias", "alias", "delete_alias", "stage",
            "describe_model", "describe_version", "rename", "delete_version", "delete_model",
        ]  # fmt: skip
        getattr(self, self.rng.choice(ops))()

    def create_model(self):
        name = f"{self.prefix}.{'uc.' if self.rng.random() < 0.3 else ''}m{len(self.names)}"
        self.client.create_registered_model(
            name, tags={"team": self.rng.choice(["risk", "growth"])}
        )
        self.names.append(name)

    def create_version(self):
        name = self._name()
        add_version(self.client, name, metrics={"auc": round(self.rng.random(), 3)})

    def model_tag(self):
        self.client.set_registered_model_tag(
            self._name(), self.rng.choice("abc"), str(self.rng.random())
        )

    def delete_model_tag(self):
        name = self._name()
        tags = self.client.get_registered_model(name).tags
        if tags:
            self.client.delete_registered_model_tag(name, self.rng.choice(sorted(tags)))

    def _some_version(self):
        name = self._name()
        versions = self._versions(name)
        return (name, self.rng.choice(versions)) if versions else (None, None)

    def version_tag(self):
        name, version = self._some_version()
        if name:
            self.client.set_model_version_tag(
                name, str(version), self.rng.choice("xy"), str(self.rng.random())
            )

    def delete_version_tag(self):
        name, version = self._some_version()
        if name:
            tags = self.client.get_model_version(name, str(version)).tags
            if tags:
                self.client.delete_model_version_tag(
                    name, str(version), self.rng.choice(sorted(tags))
                )

    def alias(self):
        name, version = self._some_version()
        if name:
            self.client.set_registered_model_alias(
                name, self.rng.choice(["champion", "challenger"]), str(version)
            )

    def delete_alias(self):
        name = self._name()
        aliases = self.client.get_registered_model(name).aliases
        if aliases:
            self.client.delete_registered_model_alias(name, self.rng.choice(sorted(aliases)))

    def stage(self):
        name, version = self._some_version()
        if name:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.client.transition_model_version_stage(
                    name,
                    str(version),
                    self.rng.choice(["Staging", "Production", "Archived", "None"]),
                )

    def describe_model(self):
        self.client.update_registered_model(self._name(), description=f"d{self.rng.random()}")

    def describe_version(self):
        name, version = self._some_version()
        if name:
            self.client.update_model_version(
                name, str(version), description=f"v{self.rng.random()}"
            )

    def rename(self):
        name = self._name()
        new = f"{name}r"
        self.client.rename_registered_model(name, new)
        self.names[self.names.index(name)] = new

    def delete_version(self):
        name, version = self._some_version()
        if name:
            self.client.delete_model_version(name, str(version))

    def delete_model(self):
        name = self._name()
        self.client.delete_registered_model(name)
        self.names.remove(name)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_after_any_mix_of_changes_one_full_sync_converges(seed, source, mlflow_client):
    rng = random.Random(seed)
    upstream = RandomRegistry(mlflow_client, rng, prefix=unique(f"conv{seed}"))
    for _ in range(45):
        upstream.step()
        if rng.random() < 0.2:  # incremental syncs interleaved, as beat would run them
            sync(source, full=rng.random() < 0.3)
    sync(source, full=True)
    assert mirror_snapshot(source) == upstream_snapshot(mlflow_client)
    second = sync(source, full=True)
    assert (second.models.changed, second.versions.changed, second.runs_read) == (0, 0, 0)
    incremental = sync(source)
    assert (incremental.models.changed, incremental.versions.changed) == (0, 0)


def test_a_long_sync_keeps_its_lease(source, mlflow_client):
    """Every progress report extends the lease, so a sync longer than its TTL is not overlapped."""
    seen = []

    def progress(stage, done, total):
        seen.append(RegistrySource.objects.get(pk=source.pk).lock_expires_at)

    RegistrySource.objects.filter(pk=source.pk).update(cursor_ms=None)
    source.refresh_from_db()
    assert services.registry_sync(source=source, progress=progress).ok
    assert seen and all(expires is not None for expires in seen)
    assert seen == sorted(seen)
    source.refresh_from_db()
    assert source.lock_token == "" and source.lock_expires_at is None  # released at the end


def test_a_versions_author_is_its_runs_mlflow_user_when_the_registry_names_none(
    source, mlflow_client, client, make_user
):
    """MLflow OSS leaves a version's user_id empty; the run that made it names its author."""
    from core.roles import Role

    name = unique("author")
    mlflow_client.create_registered_model(name)
    number = add_version(mlflow_client, name)
    run_id = mlflow_client.get_model_version(name, str(number)).run_id
    mlflow_client.set_tag(run_id, "mlflow.user", "dana@example.com")
    sync(source, full=True)
    version = ModelVersion.objects.get(registered_model__name=name, version=number)
    assert version.user_id == "" and version.author == "dana@example.com"
    assert sync(source, full=True).versions.updated == 0  # convergent: nothing left to change

    client.force_login(make_user(Role.DATA_SCIENTIST))
    page = client.get(f"/registry/sources/{source.name}/models/{name}/versions/{number}/")
    assert '<dd class="col-sm-8 text-break" data-testid="author">dana@example.com</dd>' in (
        page.content.decode()
    )
    model_page = client.get(f"/registry/models/{name}/").content.decode()
    assert "dana@example.com" in model_page  # the versions table's "Created by"
