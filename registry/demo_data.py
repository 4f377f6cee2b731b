"""Demo models for the embedded default: written into a real MLflow server, plus the catalog.

``seed_registry(client)`` creates three teams' registered models (ML classifiers, forecasts and
rule sets) with 3 to 8 versions each, every version with a source run carrying realistic metrics,
params and tags, champion / challenger aliases, archived old versions and one version that
failed validation. It also creates the catalog entry of ``credit-limit-rules``, a rule-based
model that is never registered. Values come from a seeded random generator, so every seed gives
the same numbers; run dates are spread over the months before today.

Seeding is idempotent: a registered model that already exists is left alone, and so is the
catalog entry. Needs a server that accepts writes (the demo's local ``mlflow server``).
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError

from .models import CatalogModel, ModelKind, RegisteredModel, Serving
from .services import catalog_model_create

DAY_MS = 24 * 3600 * 1000
TEAMS = ("risk", "growth", "operations")
PASSED, PENDING, FAILED = "passed", "pending", "failed validation"
QUIET_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@dataclass(frozen=True)
class DemoModel:
    name: str
    team: str
    kind: str  # ModelKind value: ml | rule_based
    serving: str  # Serving value: batch | real_time
    family: str  # classifier | forecast | ruleset (which metrics its runs log)
    owner: str
    data_source: str
    description: str
    versions: int
    champion: int
    challenger: int | None = None
    archived: tuple[int, ...] = ()
    failed: int | None = None  # the version whose validation failed
    pending: int | None = None  # the version still being validated
    algorithm: str = "lightgbm"
    base: dict[str, float] = field(default_factory=dict)  # first version's headline metric
    gain: float = 0.0  # how much the headline metric improves over all versions
    cadence_days: int = 21  # days between two trainings
    notes: tuple[str, ...] = ()  # what changed, one per version after the first

    @property
    def training_pipeline(self) -> str:
        verb = "score" if self.kind == ModelKind.RULE_BASED else "train"
        return f"{self.team}-{self.name}-{verb}"

    @property
    def experiment(self) -> str:
        return f"/{self.team}/{self.name}"


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        name="fraud-detector",
        team="risk",
        kind=ModelKind.ML,
        serving=Serving.REAL_TIME,
        family="classifier",
        owner="dana@example.com",
        data_source="delta://risk.card_transactions",
        description=(
            "Scores every card transaction for fraud within 50 ms; transactions above the "
            "threshold go to manual review. Gradient-boosted trees on transaction, device and "
            "merchant features."
        ),
        versions=7,
        champion=5,
        challenger=7,
        archived=(1, 2, 3),
        failed=6,
        base={"auc": 0.902, "precision": 0.71, "recall": 0.63, "log_loss": 0.061},
        gain=0.045,
        notes=(
            "Added merchant-category velocity features (1 h, 24 h).",
            "Tuned class weights for the 0.2 % fraud rate.",
            "Retrained on a 12-month window after the card-not-present spike.",
            "Device fingerprint features from the new SDK.",
            "Dropped the stale BIN-country feature; retrained on the latest month.",
            "Deeper trees and more estimators; recalibrated the threshold.",
        ),
    ),
    DemoModel(
        name="churn-predictor",
        team="growth",
        kind=ModelKind.ML,
        serving=Serving.BATCH,
        family="classifier",
        owner="lena.fischer@example.com",
        data_source="delta://growth.customer_activity_daily",
        description=(
            "Weekly batch score of each subscriber's probability to cancel in the next 30 days; "
            "feeds the retention campaigns in the CRM."
        ),
        versions=6,
        champion=5,
        challenger=6,
        archived=(1, 2),
        pending=6,
        algorithm="xgboost",
        base={"auc": 0.781, "precision": 0.52, "recall": 0.58, "log_loss": 0.412},
        gain=0.052,
        cadence_days=28,
        notes=(
            "Added support-ticket features from the helpdesk export.",
            "Label window moved from 60 to 30 days to match the campaign cycle.",
            "Tenure buckets replaced by a continuous tenure feature.",
            "Retrained after the price change; added discount-history features.",
            "Monotonic constraints on tenure and spend; more estimators.",
        ),
    ),
    DemoModel(
        name="demand-forecast",
        team="operations",
        kind=ModelKind.ML,
        serving=Serving.BATCH,
        family="forecast",
        owner="omar.haddad@example.com",
        data_source="delta://operations.store_sales_daily",
        description=(
            "Daily units forecast per store and product for the next 28 days; drives replenishment "
            "orders every night."
        ),
        versions=5,
        champion=4,
        challenger=5,
        archived=(1,),
        algorithm="lightgbm",
        base={"rmse": 41.8, "mape": 0.162},
        gain=0.21,
        cadence_days=30,
        notes=(
            "Holiday calendar and school-vacation features per region.",
            "Promotion flags from the pricing system.",
            "Weather forecast features (temperature, rain) per store.",
            "Tweedie objective for the many zero-sales days.",
        ),
    ),
    DemoModel(
        name="transaction-screening-rules",
        team="risk",
        kind=ModelKind.RULE_BASED,
        serving=Serving.REAL_TIME,
        family="ruleset",
        owner="samir.patel@example.com",
        data_source="kafka://payments.transactions",
        description=(
            "Sanctions and AML screening rules applied to every outgoing payment in real time; "
            "hits are held for the compliance team."
        ),
        versions=4,
        champion=3,
        challenger=4,
        archived=(1,),
        algorithm="rules",
        base={"hit_rate": 0.0142, "false_positive_rate": 0.0091},
        gain=0.35,
        cadence_days=45,
        notes=(
            "Fuzzy name matching threshold raised from 0.82 to 0.86.",
            "New high-risk corridor list from compliance.",
            "Split the structuring rule by channel (card, transfer).",
        ),
    ),
    DemoModel(
        name="credit-scoring",
        team="risk",
        kind=ModelKind.ML,
        serving=Serving.BATCH,
        family="classifier",
        owner="nora.lindqvist@example.com",
        data_source="delta://risk.loan_applications",
        description=(
            "Probability of default at 12 months for consumer loan applications; scored nightly "
            "for the pre-approved offers."
        ),
        versions=5,
        champion=4,
        challenger=5,
        archived=(1, 2),
        pending=5,
        algorithm="logistic_regression",
        base={"auc": 0.742, "precision": 0.41, "recall": 0.55, "log_loss": 0.318},
        gain=0.038,
        cadence_days=60,
        notes=(
            "Bureau score bands re-binned after the bureau changed its scale.",
            "Added open-banking income verification features.",
            "Reject inference on the declined applications.",
            "Retrained on the last 24 months; recalibrated with isotonic regression.",
        ),
    ),
    DemoModel(
        name="marketing-uplift",
        team="growth",
        kind=ModelKind.ML,
        serving=Serving.BATCH,
        family="classifier",
        owner="dana@example.com",
        data_source="delta://growth.campaign_responses",
        description=(
            "Two-model uplift estimate of who buys because of a campaign, not despite it; picks "
            "the audience of each email campaign."
        ),
        versions=3,
        champion=2,
        challenger=3,
        base={"auc": 0.641, "precision": 0.22, "recall": 0.47, "log_loss": 0.521},
        gain=0.031,
        cadence_days=35,
        notes=(
            "Control group extended to the spring campaigns.",
            "Channel preference features from the consent service.",
        ),
    ),
    DemoModel(
        name="inventory-anomaly",
        team="operations",
        kind=ModelKind.ML,
        serving=Serving.REAL_TIME,
        family="classifier",
        owner="omar.haddad@example.com",
        data_source="kafka://warehouse.stock_movements",
        description=(
            "Flags stock movements that do not match the expected pattern (shrinkage, scanning "
            "errors) as they are booked in the warehouses."
        ),
        versions=4,
        champion=4,
        archived=(1,),
        algorithm="isolation_forest",
        base={"auc": 0.823, "precision": 0.48, "recall": 0.66, "log_loss": 0.274},
        gain=0.034,
        cadence_days=40,
        notes=(
            "Per-warehouse contamination rate instead of one global rate.",
            "Added pallet-level features from the new scanners.",
            "Retrained after the second warehouse went live.",
        ),
    ),
    DemoModel(
        name="claims-triage-rules",
        team="operations",
        kind=ModelKind.RULE_BASED,
        serving=Serving.BATCH,
        family="ruleset",
        owner="ines.moreau@example.com",
        data_source="delta://operations.insurance_claims",
        description=(
            "Nightly rules that route new insurance claims to fast-track, standard or expert "
            "review queues."
        ),
        versions=3,
        champion=3,
        algorithm="rules",
        base={"hit_rate": 0.183, "false_positive_rate": 0.064},
        gain=0.28,
        cadence_days=50,
        notes=(
            "Fast-track limit raised to 1,500 EUR for glass damage.",
            "Expert review for claims filed within 14 days of policy start.",
        ),
    ),
    DemoModel(
        name="customer-lifetime-value",
        team="growth",
        kind=ModelKind.ML,
        serving=Serving.BATCH,
        family="forecast",
        owner="lena.fischer@example.com",
        data_source="delta://growth.orders",
        description=(
            "Expected 24-month gross margin per customer; used to set acquisition bids and the "
            "loyalty tiers."
        ),
        versions=8,
        champion=7,
        challenger=8,
        archived=(1, 2, 3, 4),
        algorithm="lightgbm",
        base={"rmse": 212.0, "mape": 0.284},
        gain=0.18,
        cadence_days=21,
        notes=(
            "BG/NBD features added beside the tree model.",
            "Returns netted out of the margin target.",
            "Marketplace orders included.",
            "Cohort-month feature replaced by tenure in days.",
            "Log-transformed target; clipped the top 0.1 %.",
            "Retrained after the loyalty programme relaunch.",
            "Added web-session features from the new tracking.",
        ),
    ),
)

UNREGISTERED_CATALOG_MODELS = (
    {
        "name": "credit-limit-rules",
        "kind": ModelKind.RULE_BASED,
        "serving": Serving.BATCH,
        "team": "risk",
        "owners": ["nora.lindqvist@example.com", "risk-rules@example.com"],
        "description": (
            "Monthly batch rules that raise or lower each card's credit limit from payment "
            "behaviour and bureau data. Scored by its ADO scoring pipeline; never registered in "
            "MLflow (registration is optional for rule-based models)."
        ),
    },
)


def _rng(name: str) -> random.Random:
    seed = zlib.crc32(f"mlops-portal-demo:{name}".encode())  # stable, unlike hash()
    return random.Random(seed)  # noqa: S311 - demo values, not secrets


def _progress(version: int, versions: int) -> float:
    """0 for the first version, rising towards 1 for the last, fastest at first."""
    if versions <= 1:
        return 1.0
    return (1 - math.exp(-3 * (version - 1) / (versions - 1))) / (1 - math.exp(-3))


def _metrics(spec: DemoModel, version: int, rng: random.Random) -> dict[str, float]:
    p = _progress(version, spec.versions)
    regressed = version == spec.failed
    wobble = rng.uniform(-0.25, 0.25)
    if spec.family == "classifier":
        auc = spec.base["auc"] + spec.gain * (p + wobble * 0.4) - (0.021 if regressed else 0)
        lift = (auc - spec.base["auc"]) / max(spec.gain, 1e-9)  # ~0..1
        precision = spec.base["precision"] + 0.08 * lift + rng.uniform(-0.012, 0.012)
        recall = spec.base["recall"] + 0.06 * lift + rng.uniform(-0.015, 0.015)
        if regressed:
            recall -= 0.04
        f1 = 2 * precision * recall / (precision + recall)
        log_loss = spec.base["log_loss"] * (1 - 0.22 * lift) + rng.uniform(-0.004, 0.004)
        values = {
            "auc": auc,
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "log_loss": log_loss,
        }
    elif spec.family == "forecast":
        shrink = 1 - spec.gain * (p + wobble * 0.3)
        if regressed:
            shrink += 0.08
        rmse = spec.base["rmse"] * shrink
        values = {
            "rmse": rmse,
            "mae": rmse * rng.uniform(0.74, 0.8),
            "mape": spec.base["mape"] * shrink * rng.uniform(0.97, 1.03),
        }
    else:  # ruleset: fewer false positives, hit rate steady or slightly up
        values = {
            "hit_rate": spec.base["hit_rate"] * (1 + 0.08 * p + rng.uniform(-0.04, 0.04)),
            "false_positive_rate": spec.base["false_positive_rate"]
            * (1 - spec.gain * (p + wobble * 0.3)),
        }
    return {k: round(v, 4 if abs(v) < 10 else 2) for k, v in values.items()}


def _params(spec: DemoModel, version: int, rng: random.Random) -> dict[str, str]:
    if spec.family == "ruleset":
        return {
            "rules_count": str(18 + 3 * version + rng.randint(0, 2)),
            "score_threshold": f"{0.8 + 0.02 * version:.2f}",
            "lookback_window": rng.choice(["30d", "60d", "90d"]),
            "engine": "drools-8",
        }
    params = {
        "algorithm": spec.algorithm,
        "features": str(24 + 6 * version + rng.randint(0, 5)),
        "training_window": rng.choice(["180d", "365d", "365d", "540d"]),
        "random_state": "42",
    }
    if spec.algorithm == "logistic_regression":
        params.update({"C": f"{rng.choice([0.1, 0.3, 1.0])}", "penalty": "l2", "max_iter": "500"})
    elif spec.algorithm == "isolation_forest":
        params.update(
            {
                "n_estimators": str(200 + 50 * version),
                "contamination": f"{rng.choice([0.005, 0.01, 0.02])}",
                "max_samples": "256",
            }
        )
    else:
        params.update(
            {
                "learning_rate": f"{rng.choice([0.03, 0.05, 0.05, 0.1])}",
                "max_depth": str(rng.randint(5, 6) + version // 3),
                "n_estimators": str(300 + 100 * version + rng.choice([0, 50])),
            }
        )
    if spec.family == "forecast":
        params.update({"horizon_days": "28", "objective": "tweedie" if version > 3 else "l2"})
    return params


def _validation_status(spec: DemoModel, version: int) -> str:
    if version == spec.failed:
        return FAILED
    if version == spec.pending:
        return PENDING
    return PASSED


def _version_description(spec: DemoModel, version: int) -> str:
    if version == 1:
        text = "First version promoted from the notebook prototype."
    else:
        text = spec.notes[(version - 2) % len(spec.notes)] if spec.notes else "Retrained."
    if version == spec.failed:
        text += " Validation failed: recall dropped below the champion's on the hold-out month."
    elif version == spec.pending:
        text += " Validation still running on the hold-out month."
    return text


@dataclass(frozen=True)
class VersionPlan:
    """What one demo version and its source run hold (a pure function of the spec and today)."""

    version: int
    started_ms: int
    finished_ms: int
    run_name: str
    git_commit: str
    data_snapshot: str
    metrics: dict[str, float]
    params: dict[str, str]
    validation_status: str
    description: str
    stage: str  # "" or "Archived"

    @property
    def version_tags(self) -> dict[str, str]:
        return {
            "validation_status": self.validation_status,
            "git_commit": self.git_commit,
            "data_snapshot": self.data_snapshot,
        }


def model_tags(spec: DemoModel) -> dict[str, str]:
    return {
        "team": spec.team,
        "model_kind": spec.kind,
        "serving": spec.serving,
        "owner": spec.owner,
        "data_source": spec.data_source,
        "training_pipeline": spec.training_pipeline,
    }


def version_plans(spec: DemoModel, now_ms: int) -> list[VersionPlan]:
    """The versions of one demo model, trained every ``cadence_days`` up to a few days ago."""
    rng = _rng(spec.name)
    plans = []
    for version in range(1, spec.versions + 1):
        started = now_ms - (spec.versions - version) * spec.cadence_days * DAY_MS - 3 * DAY_MS
        started += rng.randint(0, 8 * 3600) * 1000  # a plausible time of day
        finished = started + rng.randint(12 * 60, 95 * 60) * 1000
        snapshot_day = datetime.fromtimestamp(started / 1000, tz=UTC) - timedelta(days=1)
        plans.append(
            VersionPlan(
                version=version,
                started_ms=started,
                finished_ms=finished,
                run_name=f"{spec.name}-{snapshot_day:%Y%m%d}",
                git_commit=f"{rng.getrandbits(160):040x}",
                data_snapshot=f"{spec.data_source.split('://', 1)[1]}@{snapshot_day:%Y-%m-%d}",
                metrics=_metrics(spec, version, rng),
                params=_params(spec, version, rng),
                validation_status=_validation_status(spec, version),
                description=_version_description(spec, version),
                stage="Archived" if version in spec.archived else "",
            )
        )
    return plans


def _seed_model(client, spec: DemoModel, now_ms: int) -> int:
    from mlflow.entities import Metric, Param, RunTag

    client.create_registered_model(spec.name, tags=model_tags(spec), description=spec.description)
    found = client.get_experiment_by_name(spec.experiment)
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(spec.experiment, tags={"team": spec.team})
    )
    for plan in version_plans(spec, now_ms):
        run = client.create_run(
            experiment_id,
            start_time=plan.started_ms,
            run_name=plan.run_name,
            tags={
                "mlflow.user": spec.owner,
                "mlflow.source.name": spec.training_pipeline,
                "mlflow.source.type": "JOB",
                "mlflow.source.git.commit": plan.git_commit,
                "team": spec.team,
                "data_snapshot": plan.data_snapshot,
            },
        )
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, plan.finished_ms, 0) for k, v in plan.metrics.items()],
            params=[Param(k, v) for k, v in plan.params.items()],
            tags=[RunTag("validation_status", plan.validation_status)],
        )
        client.set_terminated(run_id, status="FINISHED", end_time=plan.finished_ms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # runs:/ sources and stages are deprecated upstream
            client.create_model_version(
                spec.name,
                source=f"runs:/{run_id}/model",
                run_id=run_id,
                tags=plan.version_tags,
                description=plan.description,
                await_creation_for=0,  # an OSS server answers READY at once
            )
            if plan.stage:
                client.transition_model_version_stage(spec.name, str(plan.version), plan.stage)
    client.set_registered_model_alias(spec.name, "champion", str(spec.champion))
    if spec.challenger:
        client.set_registered_model_alias(spec.name, "challenger", str(spec.challenger))
    return spec.versions


def _model_exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def seed_catalog() -> list[str]:
    """Create the unregistered catalog entries (credit-limit-rules); return the names created."""
    created = []
    for values in UNREGISTERED_CATALOG_MODELS:
        if CatalogModel.objects.filter(name=values["name"]).exists():
            continue
        try:
            catalog_model_create(**values)
        except ValidationError:  # created meanwhile by someone else: fine, it exists
            continue
        created.append(values["name"])
    return created


def seed_registry(client, now_ms: int | None = None) -> dict:
    """Write the demo models into the MLflow server behind ``client``; skip what exists.

    Returns ``{"models_created": [...], "models_skipped": [...], "versions_created": n,
    "catalog_created": [...]}``.
    """
    now_ms = now_ms or int(time.time() * 1000)
    created, skipped, versions = [], [], 0
    # MlflowClient prints a "View run" link per finished run to stdout (and reads the run again).
    quiet = os.environ.get(QUIET_ENV)
    os.environ[QUIET_ENV] = "true"
    try:
        for spec in DEMO_MODELS:
            if _model_exists(client, spec.name):
                skipped.append(spec.name)
                continue
            versions += _seed_model(client, spec, now_ms)
            created.append(spec.name)
    finally:
        if quiet is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = quiet
    return {
        "models_created": created,
        "models_skipped": skipped,
        "versions_created": versions,
        "catalog_created": seed_catalog(),
    }


def catalog_owners_from_tags() -> int:
    """Give catalog entries nobody has named owners for the owner their registry tag states.

    Demo only (after a sync): in real use owners are entered in the portal.
    """
    changed = 0
    names = [spec.name for spec in DEMO_MODELS]
    for entry in CatalogModel.objects.filter(name__in=names, owners=[]):
        owners = sorted(
            {
                model.tags["owner"]
                for model in RegisteredModel.objects.filter(
                    catalog_model=entry, deleted_upstream_at__isnull=True
                )
                if model.tags.get("owner")
            }
        )
        if owners:
            entry.owners = owners
            entry.save(update_fields=["owners", "updated_at"])
            changed += 1
    return changed
