"""Seeds: ready-made pipelines and four weeks of run history for the demo.

``demo`` creates, for each demo model (the names of ``registry/demo_data.py``), its CI,
data-cleansing, training (or scoring, for a rule-based model) and release pipelines, in the
folder ``\\<team>\\<model>``, named ``<team>-<model>-<ci|cleanse|train|score|release>``. It then
plays four weeks of history: weekly data cleansing, training triggered by it (or by schedule),
releases through QA and PROD approvals, a failed training, a rejected and a timed-out approval,
and leaves a few runs waiting at QA or PROD approvals and one training running.

The history is shaped so the maturity assessment (maturity/criteria/) finds every level:

- ``fraud-detector`` reaches level 5: in week 2 its monitoring job queued the training through
  REST (ADO reason ``manual``) with the template parameter ``trigger: drift``, and that version
  went to PROD through the QA and PROD approvals (closed loop, promoted; declared by the run
  parameter, so labelled weaker evidence). Its other trainings follow new data, so level 4
  holds. The heartbeat level 5 also needs is its monitoring job's clean report, which the demo
  posts to the operations intake at each start (maturity/demo_data.py).
- ``churn-predictor``, ``credit-scoring`` and ``transaction-screening-rules`` train (score) on
  new data: level 4.
- ``claims-triage-rules`` is scored by hand (reason ``manual``, queued by its owner), so no
  scoring run starts without a person: level 1.
- ``customer-lifetime-value``'s release pipeline deploys to QA only (its PROD stage is
  skipped; PROD is promoted outside the pipeline), so no release reaches PROD: level 2.
- the others (``demand-forecast``, ``marketing-uplift``, ``inventory-anomaly``,
  ``credit-limit-rules``) train on a schedule and release through approvals: level 3.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from .auth import Identity
from .model import Decision
from .state import SimulatorState
from .util import IdSource

# (model, team, kind) as in registry/demo_data.py: DEMO_MODELS + UNREGISTERED_CATALOG_MODELS.
DEMO_MODELS = (
    ("fraud-detector", "risk", "ml"),
    ("churn-predictor", "growth", "ml"),
    ("demand-forecast", "operations", "ml"),
    ("transaction-screening-rules", "risk", "rule_based"),
    ("credit-scoring", "risk", "ml"),
    ("marketing-uplift", "growth", "ml"),
    ("inventory-anomaly", "operations", "ml"),
    ("claims-triage-rules", "operations", "rule_based"),
    ("customer-lifetime-value", "growth", "ml"),
    ("credit-limit-rules", "risk", "rule_based"),
)
# Models whose training is triggered by new data (data-cleansing completion): maturity 4 evidence.
DATA_TRIGGERED = {
    "fraud-detector",
    "churn-predictor",
    "credit-scoring",
    "transaction-screening-rules",
}
# (model, week) of the training its monitoring queued on a drift alert: maturity 5 evidence.
DRIFT_RETRAINED = {("fraud-detector", 2)}
# Rule sets scored only by hand (their owner queues the run): maturity 1.
MANUAL_SCORING = {"claims-triage-rules": "ines.moreau@example.com"}
# Release pipelines that deploy to QA only (PROD is promoted by hand): maturity 2.
QA_ONLY_RELEASES = {"customer-lifetime-value"}

QA_APPROVER = Identity.user("alice@example.com", "Alice Approver")
PROD_APPROVER = Identity.user("paul@example.com", "Paul Prodowner")
DEMO_SECONDS = {"Train": 1200, "Score": 600, "Cleanse": 600, "Build": 180, "Deploy_QA": 240}
# The releases waiting now deploy quickly, so a demo approver sees the run move on to PROD
# (and finish) within a minute of approving, at the simulator's real-time speed.
LIVE_DEPLOY_SECONDS = {"Deploy_QA": 45, "Deploy_PROD": 45}

# Runs queued live (after the history) move at demo speed: a training the portal's operations
# loop queues finishes within two minutes of real time, registers its version and the release
# it leads to reaches its QA approval a minute later (the history keeps its own durations).
LIVE_STAGE_SECONDS = {
    "Train": 60, "Register": 15, "Score": 45, "Publish": 15, "Cleanse": 60, "Build": 30,
    "Deploy_QA": 45, "Deploy_PROD": 45,
}  # fmt: skip
# The operations loop's model in the demo (README, "The operations loop"): its training YAML
# defaults ``simulateMetrics``, so a retraining it queues registers a challenger that beats the
# champion (v4, auc 0.7755) and goes on to the release; pass simulateMetrics to override.
LOOP_MODEL = "credit-scoring"
LOOP_METRICS = '{"auc": 0.8012}'

HISTORY_DAYS = 28
# Where each model's release deploys (the deployTarget parameter, docs/pipelines.md).
REAL_TIME = {"fraud-detector", "transaction-screening-rules"}


def deploy_target(model: str) -> str:
    return "aks" if model in REAL_TIME else "databricks-job"


def pipeline_name(team: str, model: str, kind: str) -> str:
    suffix = {"data-cleansing": "cleanse", "training": "train", "scoring": "score"}.get(kind, kind)
    return f"{team}-{model}-{suffix}"


def seed(sim: SimulatorState, name: str = "demo") -> dict:
    if name in ("", "none", "empty"):
        return {"seed": name, "pipelines": 0, "runs": 0}
    if name != "demo":
        raise ValueError(f"unknown seed {name!r}; known: demo, none")
    if sim.runs:
        raise ValueError("seed a simulator that has no runs yet")
    with sim.lock, sim.quietly():
        end = sim.clock.now()
        sim.clock.set(end - timedelta(days=HISTORY_DAYS))
        start = sim.clock.now()
        actions: list[tuple] = []
        for index, (model, team, kind) in enumerate(DEMO_MODELS):
            kinds = [
                "ci",
                "data-cleansing",
                "scoring" if kind == "rule_based" else "training",
                "release",
            ]
            pipes = {
                k: sim.create_pipeline(
                    pipeline_name(team, model, k),
                    k,
                    folder=f"\\{team}\\{model}",
                    model=model,
                    stage_seconds=DEMO_SECONDS,
                    repository=model,
                )
                for k in kinds
            }
            train_kind = kinds[2]
            version = 0
            for week in range(4):
                day = start + timedelta(days=7 * week + index % 5, hours=2 + index)
                actions.append(
                    (day - timedelta(days=1), _queue, pipes["ci"], {"reason": "individualCI"})
                )
                actions.append((day, _queue, pipes["data-cleansing"], {"reason": "schedule"}))
                version += 1
                params = {"modelName": model, "modelVersion": str(version)}
                fail = "Train" if (model == "demand-forecast" and week == 2) else None
                train = {
                    "reason": "resourceTrigger" if model in DATA_TRIGGERED else "schedule",
                    "template_parameters": params,
                    "fail_stage": fail,
                }
                if (model, week) in DRIFT_RETRAINED:
                    # Queued through REST by the monitoring job: ADO says "manual", the
                    # workflow's trigger parameter says why.
                    train.update(
                        reason="manual", template_parameters={**params, "trigger": "drift"}
                    )
                if model in MANUAL_SCORING:
                    train.update(reason="manual", requested_for=MANUAL_SCORING[model])
                actions.append((day + timedelta(hours=1), _queue, pipes[train_kind], train))
                if fail or week == 3:
                    continue
                decisions = {
                    "Deploy_QA": Decision(
                        2 * 3600, "approved", QA_APPROVER, "QA evidence looks good."
                    ),
                    "Deploy_PROD": Decision(20 * 3600, "approved", PROD_APPROVER, "Go for PROD."),
                }
                extra = {}
                if model == "marketing-uplift" and week == 1:
                    decisions["Deploy_PROD"] = Decision(
                        5 * 3600, "rejected", PROD_APPROVER, "Uplift not significant in QA."
                    )
                if model == "inventory-anomaly" and week == 0:
                    extra["time_out_stage"] = "Deploy_PROD"
                if model in QA_ONLY_RELEASES:
                    del decisions["Deploy_PROD"]
                    extra["stages_to_skip"] = ("Deploy_PROD",)
                actions.append(
                    (
                        day + timedelta(days=1),
                        _queue,
                        pipes["release"],
                        {
                            "template_parameters": {**params, "deployTarget": deploy_target(model)},
                            "decisions": decisions,
                            **extra,
                        },
                    )
                )
        # The present: releases waiting for approvals, a training running.
        for model, team, _kind in DEMO_MODELS:
            release = _find(sim, pipeline_name(team, model, "release"))
            params = {"modelName": model, "modelVersion": "4", "deployTarget": deploy_target(model)}
            live = {"template_parameters": params, "stage_seconds": LIVE_DEPLOY_SECONDS}
            if model in ("fraud-detector", "credit-limit-rules"):
                actions.append((end - timedelta(hours=3), _queue, release, live))
            if model == "churn-predictor":
                # QA passed yesterday: its PROD approval is one a PROD approver may give now.
                decisions = {"Deploy_QA": Decision(3600, "approved", QA_APPROVER, "QA passed.")}
                actions.append(
                    (end - timedelta(hours=26), _queue, release, {**live, "decisions": decisions})
                )
        clv_train = _find(sim, pipeline_name("growth", "customer-lifetime-value", "training"))
        actions.append(
            (
                end - timedelta(minutes=5),
                _queue,
                clv_train,
                {
                    "reason": "resourceTrigger",
                    "template_parameters": {"modelName": "customer-lifetime-value"},
                },
            )
        )
        actions.sort(key=lambda a: a[0])
        for when, action, pipe, options in actions:
            sim.advance_to(when)
            action(sim, pipe, options)
        sim.advance_to(end)
        _live_speed(sim)
        # The history above is the same at every start; ids handed out from now on (approvals
        # opened later, hook event ids) are not: the portal's database outlives a demo's
        # simulator and must not take a new approval or event for one of an earlier start.
        sim.ids = IdSource()
    return {"seed": name, "pipelines": len(sim.pipelines), "runs": len(sim.runs)}


def _live_speed(sim: SimulatorState) -> None:
    """The stages of runs queued from now on take ``LIVE_STAGE_SECONDS`` (the runs already
    queued keep their stages); the loop model's training defaults ``simulateMetrics``."""
    for pipe in sim.pipelines.values():
        pipe.stages = [
            replace(spec, seconds=LIVE_STAGE_SECONDS.get(spec.identifier, spec.seconds))
            for spec in pipe.stages
        ]
        if pipe.model == LOOP_MODEL and pipe.kind == "training":
            pipe.parameter_defaults = {"simulateMetrics": LOOP_METRICS}


def _queue(sim: SimulatorState, pipe, options: dict) -> None:
    sim.queue_run(pipe, **{k: v for k, v in options.items() if v is not None})


def _find(sim: SimulatorState, name: str):
    return next(p for p in sim.pipelines.values() if p.name == name)
