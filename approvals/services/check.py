"""The automated ADO check: ADO's call received and kept (``check_receive``), then evaluated
once by a worker (``check_evaluate``): the challenger against the champion on the model's
promotion policy, and every gate of ``gates.environment_rules``. The evaluation, its audit
rows and its callback (the outbox row ``check_callback.check_callback_deliver`` sends) are
written in one transaction, so ADO gets exactly one answer per evaluation.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.tasks import enqueue_after_commit
from pipelines.models import PipelineRun
from registry.models import CatalogModel, ModelVersion

from ..models import (
    ApprovalRequest,
    AuditAction,
    CheckCallback,
    CheckEvaluation,
    CheckRequest,
    CheckResult,
)
from .audit import audit_record
from .gates import environment_rules
from .promotion import PROMOTE, champion_in, evaluate, promotion_policy_for
from .refusals import Rule

logger = logging.getLogger(__name__)

EVALUATE_TASK = "approvals.evaluate_check"
CALLBACK_TASK = "approvals.send_check_callback"
CHECK_ACTOR = "portal (automated check)"


# --- The job's token at rest -------------------------------------------------------------------


def _fernet() -> Fernet:
    """APPROVALS_CHECK_TOKEN_KEY when set (a Fernet key), else a key derived from SECRET_KEY."""
    key = settings.APPROVALS_CHECK_TOKEN_KEY
    if not key:
        digest = hashlib.sha256(f"approvals-check-token:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def check_token_encrypt(*, token: str) -> str:
    return _fernet().encrypt(token.encode()).decode()


def check_token_decrypt(*, encrypted: str) -> str:
    """The job's AuthToken; ValueError when the key changed since it was stored."""
    try:
        return _fernet().decrypt(encrypted.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the stored AuthToken cannot be decrypted with the current key") from exc


# --- Receiving ADO's call ---------------------------------------------------------------------


@dataclass(frozen=True)
class CheckCall:
    """ADO's call, validated by the endpoint: the headers and the body's fields."""

    plan_url: str
    project_id: str
    hub_name: str
    plan_id: str
    job_id: str
    task_instance_id: str
    auth_token: str
    timeline_id: str
    build_id: str
    model_name: str
    version: str
    environment: str
    run_id: str
    body: dict


def check_receive(*, call: CheckCall) -> tuple[CheckRequest, bool]:
    """Keep ADO's call and queue its evaluation after commit. Idempotent per (plan, job, task
    instance): a repeat returns the first request and ``False``, and evaluates nothing."""
    key = {"plan_id": call.plan_id, "job_id": call.job_id}
    key["task_instance_id"] = call.task_instance_id
    existing = CheckRequest.objects.filter(**key).first()
    if existing is not None:
        return existing, False
    fields = asdict(call)
    token = fields.pop("auth_token")
    fields.pop("run_id")
    catalog_model = CatalogModel.objects.filter(name=call.model_name).first()
    try:
        with transaction.atomic():
            request = CheckRequest.objects.create(
                **fields,
                ado_run_id=call.run_id,
                auth_token=check_token_encrypt(token=token),
                catalog_model=catalog_model,
                model_version=_version_of(catalog_model, call.version),
                run=_run_of(catalog_model, call.run_id or call.build_id),
            )
            audit_record(
                action=AuditAction.CHECK_RECEIVED,
                actor_name=CHECK_ACTOR,
                approval=_approval_of(request),
                environment=call.environment,
                model_name=call.model_name,
                message=f"ADO asked the automated check about {call.model_name} "
                f"v{call.version or '?'} for {call.environment} (run {call.run_id or '?'}).",
                detail={"check_request": request.pk, "plan_id": call.plan_id},
            )
            enqueue_after_commit(EVALUATE_TASK, request.pk)
    except IntegrityError:  # the same call twice at once: the other one keeps it
        return CheckRequest.objects.get(**key), False
    return request, True


def _version_of(catalog_model: CatalogModel | None, version: str) -> ModelVersion | None:
    if catalog_model is None or not version.isdigit():
        return None
    return (
        ModelVersion.objects.filter(
            registered_model__catalog_model=catalog_model, version=int(version)
        )
        .select_related("registered_model")
        .first()
    )


def _run_of(catalog_model: CatalogModel | None, run_id: str) -> PipelineRun | None:
    if not run_id.isdigit():
        return None
    runs = PipelineRun.objects.filter(ado_id=int(run_id))
    if catalog_model is not None:
        runs = runs.filter(pipeline__catalog_model=catalog_model)
    return runs.order_by("-pk").first()


def _approval_of(request: CheckRequest) -> ApprovalRequest | None:
    """The approval of the same run and environment, when ADO also asks people (the audit
    row and the approval page then show the check beside it)."""
    if request.run_id is None:
        return None
    return (
        ApprovalRequest.objects.filter(run_id=request.run_id, environment=request.environment)
        .select_related("catalog_model")
        .order_by("-created_on")
        .first()
    )


# --- Evaluating it ------------------------------------------------------------------------------


def check_rules(*, request: CheckRequest, now=None) -> list[Rule]:
    """Every rule of the check, in order: the model is known, the challenger beats the
    champion, and the environment's gates (QA first for PROD, soak time, freeze windows...)."""
    now = now or timezone.now()
    if request.catalog_model is None:
        return [
            Rule(
                "model_known",
                False,
                f"No model named '{request.model_name}' in the portal's catalog: the check "
                "cannot tell whether it may go on.",
            )
        ]
    return [
        challenger_rule(request=request),
        *environment_rules(
            catalog_model=request.catalog_model,
            model_version=request.model_version,
            run=request.run,
            environment=request.environment,
            now=now,
        ),
    ]


def challenger_rule(*, request: CheckRequest) -> Rule:
    """The challenger against the version now in that environment, on the model's promotion
    policy: the comparison the approval page shows, with its numbers in ``values``."""
    challenger = request.model_version
    if challenger is None:
        return Rule(
            "challenger",
            False,
            f"{request.model_name} v{request.version or '?'} is not in the registry: there is "
            "nothing to compare with the champion.",
        )
    target = (request.run.parameters.get("deployTarget") if request.run else "") or ""
    champion, _ = champion_in(
        catalog_model=request.catalog_model,
        environment=request.environment,
        challenger_id=challenger.pk,
        target=target,
    )
    policy = promotion_policy_for(request.catalog_model)
    result = evaluate(challenger, champion, policy)
    if policy is None:
        return Rule(
            "challenger",
            True,
            "No promotion policy names a metric for this model: nothing to compare.",
            warning=True,
            values=result,
        )
    return Rule(
        "challenger", result["verdict"] == PROMOTE, _comparison_message(result), values=result
    )


def _comparison_message(result: dict) -> str:
    """ "auc 0.71 vs champion v3 0.74: worse by 0.03; policy needs +0.01", then the reasons."""
    metric, ours, theirs = result.get("metric"), result.get("challenger"), result.get("champion")
    reasons = " ".join(result.get("reasons") or [])
    if ours is None or theirs is None:
        return reasons
    greater = result.get("greater_is_better", True)
    change = ours - theirs
    better = change > 0 if greater else change < 0
    word = "same" if abs(change) < 1e-12 else ("better" if better else "worse")
    need = result.get("min_absolute_change") or 0
    sign = "+" if greater else "-"
    head = (
        f"{metric} {ours:.4g} vs champion v{result.get('champion_version')} {theirs:.4g}: "
        + (word if word == "same" else f"{word} by {abs(change):.4g}")
        + f"; policy needs {sign}{need:g}"
    )
    if result.get("threshold") is not None:
        head += f" and {'at least' if greater else 'at most'} {result['threshold']:g}"
    return f"{head}. {reasons}"


def check_evaluate(*, request_id: int) -> CheckEvaluation | None:
    """Evaluate one check request, once: the evaluation, its audit row and its callback in
    one transaction; the callback is queued after commit. None when it was evaluated already."""
    with transaction.atomic():
        request = (
            CheckRequest.objects.select_for_update(of=("self",))
            .select_related("catalog_model", "model_version__registered_model", "run")
            .filter(pk=request_id)
            .first()
        )
        if request is None or request.evaluations.exists():
            return None
        now = timezone.now()
        rules = check_rules(request=request, now=now)
        passed = all(rule.ok for rule in rules)
        evaluation = CheckEvaluation.objects.create(
            request=request,
            result=CheckResult.PASSED if passed else CheckResult.FAILED,
            rules=[_rule_row(rule) for rule in rules],
            evaluated_at=now,
        )
        callback = CheckCallback.objects.create(
            evaluation=evaluation,
            request=request,
            result="succeeded" if passed else "failed",
            log_lines=log_lines(request=request, evaluation=evaluation),
            next_attempt_at=now,
        )
        _audit_evaluation(request, evaluation)
        enqueue_after_commit(CALLBACK_TASK, callback.pk)
    return evaluation


def _rule_row(rule: Rule) -> dict:
    return {
        "code": rule.code,
        "ok": rule.ok,
        "message": rule.message,
        "warning": rule.warning,
        "until": rule.until.isoformat() if rule.until else None,
        "values": rule.values,
    }


def log_lines(*, request: CheckRequest, evaluation: CheckEvaluation) -> list[str]:
    """What ADO's check log shows: the verdict, then one line per rule with its reason."""
    verdict = "PASSED" if evaluation.passed else "FAILED"
    lines = [
        f"MLOps Portal: {request.model_name} v{request.version or '?'} to "
        f"{request.environment}: {verdict}"
    ]
    for rule in evaluation.rules:
        mark = "ok" if rule["ok"] else "NOT OK"
        lines.append(f"[{mark}] {rule['code']}: {rule['message']}")
    query = urlencode({"model": request.model_name, "environment": request.environment})
    lines.append(
        f"Details: {settings.PORTAL_BASE_URL.rstrip('/')}{reverse('approvals:audit')}?{query}"
    )
    return lines


def _audit_evaluation(request: CheckRequest, evaluation: CheckEvaluation) -> None:
    failed = evaluation.failed_rules
    if evaluation.passed:
        message = (
            f"Automated check passed for {request.model_name} v{request.version or '?'} to "
            f"{request.environment}: every rule is met."
        )
    else:
        message = (
            f"Automated check failed for {request.model_name} v{request.version or '?'} to "
            f"{request.environment}: " + " ".join(f"{r['code']}: {r['message']}" for r in failed)
        )
    audit_record(
        action=AuditAction.CHECK_PASSED if evaluation.passed else AuditAction.CHECK_FAILED,
        actor_name=CHECK_ACTOR,
        approval=_approval_of(request),
        environment=request.environment,
        model_name=request.model_name,
        message=message,
        detail={
            "check_request": request.pk,
            "evaluation": evaluation.pk,
            "failed": [r["code"] for r in failed],
        },
    )
