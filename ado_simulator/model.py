"""The simulator's objects: projects, pipelines, runs with stages, approvals, subscriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .auth import Identity

PIPELINE_KINDS = ("ci", "data-cleansing", "training", "scoring", "release")
DEFAULT_APPROVAL_TIMEOUT_MINUTES = 43200  # 30 days, the example of the check configuration
# Template parameters the operations loop sends to a training (scoring) pipeline: a pipeline of
# that kind that declares its parameters always accepts these too (docs/ado-simulator.md).
TRAINING_PARAMETERS = (
    "modelName",
    "modelVersion",
    "trigger",
    "signalId",
    "signalKind",
    "portalRequestId",
    "simulateMetrics",
)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a pipeline's YAML: ``identifier`` is the stage ref name, ``name`` its
    display name. A stage with ``approvers`` uses an environment whose approval check pauses
    it at a checkpoint until the approval is approved, rejected or timed out."""

    identifier: str
    name: str
    seconds: float = 60.0
    job: str = "Job"
    environment: str | None = None
    approvers: tuple[Identity, ...] = ()
    min_required_approvers: int = 1
    execution_order: str = "anyOrder"
    instructions: str = ""
    timeout_minutes: float = DEFAULT_APPROVAL_TIMEOUT_MINUTES
    blocked_approvers: tuple[Identity, ...] = ()

    @property
    def has_approval(self) -> bool:
        return bool(self.approvers)


def default_stages(kind: str, project: str) -> list[StageSpec]:
    """Stages of the scaffolded pipelines; each stage's time can be overridden."""
    if kind == "release":
        return [
            StageSpec("Build", "Build", 120, job="Package"),
            StageSpec(
                "Deploy_QA",
                "QA",
                180,
                job="Deploy",
                environment="QA",
                approvers=(Identity.group(project, "QA Approvers"),),
                instructions="Check the QA evidence before deploying this model version to QA.",
            ),
            StageSpec(
                "Deploy_PROD",
                "PROD",
                180,
                job="Deploy",
                environment="PROD",
                approvers=(Identity.group(project, "PROD Approvers"),),
                instructions="Check the QA sign-off before deploying this model version to PROD.",
            ),
        ]
    if kind == "training":
        return [
            StageSpec("Train", "Train", 600, job="Train"),
            StageSpec("Register", "Register", 60),
        ]
    if kind == "scoring":
        return [StageSpec("Score", "Score", 300, job="Score"), StageSpec("Publish", "Publish", 60)]
    if kind == "data-cleansing":
        return [StageSpec("Cleanse", "Cleanse", 300, job="Cleanse")]
    if kind == "ci":
        return [StageSpec("Build", "Build", 120, job="Build"), StageSpec("Test", "Test", 120)]
    raise ValueError(f"unknown pipeline kind {kind!r}; one of {', '.join(PIPELINE_KINDS)}")


@dataclass
class Project:
    id: str
    name: str


@dataclass
class Pipeline:
    id: int
    project: Project
    name: str
    folder: str
    kind: str
    model: str | None
    stages: list[StageSpec]
    repository_id: str
    repository_name: str
    yaml_path: str = "azure-pipelines.yml"
    revision: int = 1
    parameters: tuple[str, ...] | None = None  # declared template parameters; None: any
    # The YAML's parameter defaults: a run that does not pass one of these gets its default.
    parameter_defaults: dict[str, str] = field(default_factory=dict)
    default_branch: str = "refs/heads/main"
    runs_per_day: dict[str, int] = field(default_factory=dict)

    def stage(self, key: str) -> StageSpec | None:
        for spec in self.stages:
            if key.lower() in (spec.identifier.lower(), spec.name.lower()):
                return spec
        return None


@dataclass
class ApprovalStep:
    assigned: Identity
    order: int
    status: str
    initiated_on: datetime
    actual: Identity | None = None
    comment: str | None = None
    last_modified_on: datetime | None = None
    last_modified_by: Identity | None = None


@dataclass
class Approval:
    id: str
    run: Run
    stage: StageRun
    status: str
    created_on: datetime
    last_modified_on: datetime
    expires_at: datetime
    steps: list[ApprovalStep]
    min_required_approvers: int
    execution_order: str
    instructions: str
    blocked_approvers: tuple[Identity, ...]
    decided_at: datetime | None = None


@dataclass
class StageRun:
    spec: StageSpec
    record_id: str
    phase_id: str
    job_id: str
    checkpoint_id: str
    log_id: int
    state: str = "pending"  # pending | waiting | running | completed
    result: str | None = None  # timeline result: succeeded | failed | skipped | canceled
    event_result: str | None = None  # stage event result: adds "rejected"
    start_time: datetime | None = None  # the stage record's start (checks included)
    job_start: datetime | None = None  # when its job started (after the checkpoint)
    finish_time: datetime | None = None
    approval: Approval | None = None
    check: Any = None  # state.checks.CheckRun: the environment's REST check, while it runs
    checkpoint_start: datetime | None = None
    checkpoint_finish: datetime | None = None
    last_modified: datetime | None = None

    @property
    def identifier(self) -> str:
        return self.spec.identifier

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Decision:
    """A scripted approval decision: ``status`` by ``identity`` ``seconds`` after the
    approval was created."""

    seconds: float
    status: str = "approved"
    identity: Identity | None = None
    comment: str = ""


@dataclass
class RunScript:
    fail_stage: str | None = None  # the stage (identifier or name) whose job fails
    time_out_stage: str | None = None  # the stage whose approval times out at once
    decisions: dict[str, Decision] = field(default_factory=dict)  # stage -> scripted decision
    queue_seconds: float = 0.0  # wait before an agent picks the run up
    stage_seconds: dict[str, float] = field(default_factory=dict)  # per-stage duration override

    def matches(self, value: str | None, stage: StageRun) -> bool:
        return bool(value) and value.lower() in (stage.identifier.lower(), stage.name.lower())

    def decision_for(self, stage: StageRun) -> Decision | None:
        for key, decision in self.decisions.items():
            if self.matches(key, stage):
                return decision
        return None


@dataclass
class Run:
    id: int
    pipeline: Pipeline
    name: str
    queue_time: datetime
    reason: str
    requested_for: Identity
    requested_by: Identity
    source_branch: str
    source_version: str
    template_parameters: dict
    variables: dict
    stages: list[StageRun]
    stages_to_skip: tuple[str, ...]
    script: RunScript
    plan_id: str
    timeline_id: str
    state: str = "notStarted"  # notStarted | inProgress | canceling | completed
    result: str | None = None  # succeeded | failed | canceled
    start_time: datetime | None = None
    finish_time: datetime | None = None
    change_id: int = 1
    last_changed: datetime | None = None
    trigger_info: dict = field(default_factory=dict)
    live: bool = True  # False for the history seeded quietly: it registers no model version

    @property
    def project(self) -> Project:
        return self.pipeline.project

    def touch(self, when: datetime) -> None:
        self.change_id += 1
        self.last_changed = when

    def current_stage(self) -> StageRun | None:
        for stage in self.stages:
            if stage.state != "completed":
                return stage
        return None

    def ready_time(self, stage: StageRun) -> datetime:
        """When ``stage`` may start: the previous stage's finish, else the run's start."""
        index = self.stages.index(stage)
        for previous in reversed(self.stages[:index]):
            if previous.finish_time is not None:
                return previous.finish_time
        return self.start_time or self.queue_time

    def stage(self, key: str) -> StageRun | None:
        for stage in self.stages:
            if key.lower() in (stage.identifier.lower(), stage.name.lower()):
                return stage
        return None


@dataclass
class Subscription:
    id: str
    event_types: tuple[str, ...]
    url: str
    username: str | None
    password: str | None
    headers: dict[str, str]
    publisher_inputs: dict[str, str]
    resource_version: str | None
    created_by: Identity
    created_date: datetime
    status: str = "enabled"  # enabled | onProbation | disabledByUser | disabledBySystem
    approval_event_detail: str = "sparse"  # sparse: the docs sample's nulls; full: filled in
    consumer_inputs: dict[str, str] = field(default_factory=dict)
    publisher_id: str = "pipelines"

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types

    def filter_ok(self, attributes: dict[str, object]) -> bool:
        """Apply the subscription's publisher inputs (``pipelineId``, ``runStateId``, ...) to an
        event's attributes; an input the event does not carry does not filter it out."""
        lowered: dict[str, set[str]] = {}
        for key, value in attributes.items():
            if value is None:
                continue
            values = value if isinstance(value, list | tuple | set) else (value,)
            lowered[key.lower()] = {str(v).lower() for v in values if v is not None}
        for key, value in self.publisher_inputs.items():
            if key.lower() in ("hostid", "tfssubscriptionid") or value in ("", None):
                continue
            actual = lowered.get(key.lower())
            if actual is not None and str(value).lower() not in actual:
                return False
        return True


def stage_seconds(run_script: RunScript, stage: StageRun) -> timedelta:
    for key, seconds in run_script.stage_seconds.items():
        if run_script.matches(key, stage):
            return timedelta(seconds=seconds)
    return timedelta(seconds=stage.spec.seconds)
