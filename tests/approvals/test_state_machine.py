"""A hypothesis state machine over the life of approvals: created in ADO, approved or rejected
in the portal (by approvers, the run's requester, the version's creator, a non-approver),
expired, decided in ADO itself, hooks replayed, deliveries tried while the simulator fails,
QA frozen and thawed by a deny window. After every step the invariants hold:

- per approval: at most ``min_required_approvers`` approvals and one rejection, nothing after
  the decision that closed it, nothing once the portal knows it is closed;
- never a self-approval (the run's requester, the version's creator);
- no decision while a freeze window covers QA (``decide`` checks it at each attempt);
- every decision has one outbox message and one ``decision.made`` row; every delivered (or
  already-decided, or failed) message has its audit row; a delivered one is in ADO;
- ADO applied each decision at most once (PATCHes per approval never exceed its decisions);
- ADO's close of an approval is recorded once, however often hooks are replayed;
- audit rows never change.

``PolicyMachine`` adds approval policies set as it runs (soak time warn or block, the QA
approver not the PROD approver, approvers in sequence), runs taken to their PROD approval, and
a clock step; its invariant: no sequence of actions gets a request approved that a policy rule
refuses (judged by an oracle written apart from the rules).

The simulator (real HTTP) lives for the whole run; each example makes its own runs in it.
The database: the test holds pytest-django's transaction, and each example runs in a savepoint
rolled back at its teardown (what ``hypothesis.extra.django.TestCase`` does per example), so
examples are independent; ``on_commit`` never fires, so nothing is queued: the machine
delivers by hand.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import ClassVar
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ado_simulator.errors import ApiError
from approvals import services
from approvals.models import (
    OPEN_STATUSES,
    ApprovalPolicy,
    ApprovalRequest,
    AuditAction,
    AuditEvent,
    DecidedIn,
    Decision,
    DecisionStatus,
    FreezeWindow,
    OutboxMessage,
    OutboxState,
)
from pipelines import services as pipelines_services
from pipelines.client import AdoClient, AdoCredentials
from pipelines.models import RunStage
from tests.approvals.conftest import PAT, wait_at

pytestmark = pytest.mark.django_db

REQUESTER = "rita@example.com"  # queues some of the runs, and holds the approver role
CREATOR = "dana@example.com"  # created fraud-detector v2 (ModelVersionFactory's user_id)
APPROVERS = ("alice@example.com", "bob@example.com", "carol@example.com")
NOT_AN_APPROVER = "victor@example.com"
USERS = (*APPROVERS, REQUESTER, CREATOR, NOT_AN_APPROVER)
DECIDERS = (*APPROVERS, *APPROVERS, REQUESTER, CREATOR, NOT_AN_APPROVER)  # mostly allowed
MAX_APPROVALS = 2
SHORT_TIMEOUT_MINUTES = 10
AUDIT_FIELDS = (
    "at",
    "action",
    "actor_id",
    "actor_name",
    "approval_id",
    "decision_id",
    "environment",
    "model_name",
    "message",
    "detail",
    "request_id",
)
FAULTS = ("500-get", "500-patch", "429", "answer-lost")


@dataclass
class Tracked:
    """What the machine remembers of one approval of the current example."""

    pk: int
    ado_id: str
    kind: str  # single | pair (two approvals needed) | short (ADO times it out soon)
    requested_by: str
    snapshots: list[dict] = field(default_factory=list)  # ADO's JSON, as read over time
    decisions_when_closed: int | None = None  # decisions on it when the portal saw it closed


class ApprovalsMachine(RuleBasedStateMachine):
    env: ClassVar[SimpleNamespace]  # set by the test: simulator, project, pipelines, users

    approvals = Bundle("approvals")

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.tracked: dict[int, Tracked] = {}
        self.audit_floor = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        self.audit_floor = self.audit_floor or 0
        self.audit_seen: dict[int, tuple] = {}

    def teardown(self):
        self.env.sim.clear_faults()
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # ---- helpers -----------------------------------------------------------------------------

    def _read(self, item: Tracked) -> dict:
        data = self.env.client.get_approval(item.ado_id, expand_steps=True)
        item.snapshots.append(data)
        return data

    def _messages(self) -> list[OutboxMessage]:
        return list(OutboxMessage.objects.filter(approval_id__in=self.tracked).order_by("pk"))

    # ---- rules -------------------------------------------------------------------------------

    @precondition(lambda self: len(self.tracked) < MAX_APPROVALS)
    @rule(
        target=approvals,
        kind=st.sampled_from(["single", "pair", "short"]),
        requested_by=st.sampled_from([REQUESTER, "portal-service@example.com"]),
    )
    def create_approval(self, kind, requested_by):
        """A release run reaches its QA approval in ADO; a hook makes the portal read it."""
        sim = self.env.sim
        run = sim.queue_run(
            self.env.pipelines[kind],
            template_parameters={"modelName": "fraud-detector", "modelVersion": "2"},
            requested_for=requested_by,
        )
        ado_id = wait_at(sim, run, "QA")
        result = services.approval_refresh(
            project=self.env.project, approval_id=ado_id, client=self.env.client
        )
        assert result.ok and result.created == 1, result.as_dict()
        request = ApprovalRequest.objects.get(project=self.env.project, ado_id=ado_id)
        assert request.run is not None and request.environment == "QA"
        assert request.min_required_approvers == (2 if kind == "pair" else 1)
        item = Tracked(request.pk, ado_id, kind, requested_by)
        self.tracked[request.pk] = item
        self._read(item)
        return item

    @rule(
        item=approvals,
        user=st.sampled_from(DECIDERS),
        status=st.sampled_from(["approved", "approved", "rejected"]),
        comment=st.sampled_from(["Looks fine", "Metrics regressed", ""]),
    )
    def decide(self, item, user, status, comment):
        person = self.env.users[user]
        before = Decision.objects.filter(approval_id=item.pk).count()
        frozen = FreezeWindow.objects.filter(active=True, environment="QA").exists()
        try:
            decision = services.approval_decide(
                approval_id=item.pk, user=person, status=status, comment=comment
            )
        except services.DecisionRefused as refusal:
            assert Decision.objects.filter(approval_id=item.pk).count() == before
            assert AuditEvent.objects.filter(
                approval_id=item.pk, action=AuditAction.DECISION_REFUSED, detail__code=refusal.code
            ).exists()
            if status == "rejected" and not comment:  # checked before anything else
                assert refusal.code == "comment_required"
            elif user == NOT_AN_APPROVER:
                assert refusal.code == "not_an_approver"
            return
        assert decision.status == status
        assert user != NOT_AN_APPROVER
        assert status == "rejected" or user not in (item.requested_by, CREATOR)
        # a freeze holds promotions back; a rejection stops one, so it goes through
        assert status == "rejected" or not frozen, "approved while a freeze window covers QA"

    @rule(on=st.booleans())
    def freeze_qa(self, on):
        """A manager freezes QA (a deny window covering the next hours) or lifts every freeze."""
        if on:
            services.freeze_window_create(
                user=self.env.admin,
                name="QA freeze",
                environment="QA",
                dtstart=timezone.now() - timedelta(minutes=1),
                duration_minutes=600,
            )
        else:
            for pk in FreezeWindow.objects.filter(active=True).values_list("pk", flat=True):
                services.freeze_window_update(window_id=pk, user=self.env.admin, active=False)

    @rule(
        items=st.lists(approvals, min_size=1, max_size=4),
        user=st.sampled_from(DECIDERS),
        status=st.sampled_from(["approved", "rejected"]),
        comment=st.sampled_from(["Batch looks fine", ""]),
    )
    def decide_bulk(self, items, user, status, comment):
        """Several at once (services.approvals_decide_bulk): each decided or refused on its
        own, by the same rules; a refused batch writes nothing."""
        person = self.env.users[user]
        before = {i.pk: Decision.objects.filter(approval_id=i.pk).count() for i in items}
        environments = set(
            ApprovalRequest.objects.filter(pk__in=before).values_list("environment", flat=True)
        )
        try:
            outcomes = services.approvals_decide_bulk(
                approval_ids=[i.pk for i in items],
                user=person,
                status=status,
                comment=comment,
                authenticated_at=timezone.now(),
            )
        except services.DecisionRefused as refusal:
            for pk, count in before.items():
                assert Decision.objects.filter(approval_id=pk).count() == count
            expected = {"not_an_approver", "comment_required"}
            if len(environments) > 1:
                expected.add("bulk_mixed_environments")
            assert refusal.code in expected, refusal.code
            return
        self._bulk_outcomes(outcomes, status)
        assert [o.approval_id for o in outcomes] == list(before)
        for outcome in outcomes:
            count = Decision.objects.filter(approval_id=outcome.approval_id).count()
            assert count == before[outcome.approval_id] + outcome.decided
            if outcome.decided:
                item = self.tracked[outcome.approval_id]
                assert user != NOT_AN_APPROVER
                assert status == "rejected" or user not in (item.requested_by, CREATOR)
            else:
                assert AuditEvent.objects.filter(
                    approval_id=outcome.approval_id,
                    action=AuditAction.DECISION_REFUSED,
                    detail__code=outcome.code,
                ).exists()

    def _bulk_outcomes(self, outcomes, status) -> None:
        """What a subclass judges about a bulk operation's decisions (the policy oracle)."""

    @rule(item=approvals)
    def expire(self, item):
        """Time passes the approval's expiry. For a short-timeout check ADO times it out too
        (the clock moves past it, for every such approval still pending)."""
        ApprovalRequest.objects.filter(pk=item.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        if item.kind == "short" and self.env.sim.approval(item.ado_id).status == "pending":
            self.env.sim.advance(SHORT_TIMEOUT_MINUTES * 60 + 60)
            assert self.env.sim.approval(item.ado_id).status == "timedOut"

    @rule(
        item=approvals,
        status=st.sampled_from(["approved", "rejected"]),
        who=st.sampled_from(["olga@example.com", "alice@example.com"]),
        hook=st.booleans(),
    )
    def decide_in_ado(self, item, status, who, hook):
        """Someone decides in ADO itself; the approval-completed hook may or may not come."""
        with contextlib.suppress(ApiError):  # already closed, or that person already acted
            self.env.sim.decide(item.ado_id, status, who, f"{status} in ADO by {who}")
        if hook:
            self.refresh(item)

    @rule(item=approvals)
    def refresh(self, item):
        """A hook or the poll: the portal re-reads the approval and applies it."""
        data = self._read(item)
        outcome = services.approval_apply(
            project=self.env.project, data=data, client=self.env.client
        )
        assert outcome in ("updated", "closed", "unchanged")
        again = services.approval_apply(project=self.env.project, data=data)
        assert again == "unchanged"  # applying the same JSON twice changes nothing

    @precondition(lambda self: any(item.snapshots for item in self.tracked.values()))
    @rule(item=approvals, data=st.data())
    def replay_hook(self, item, data):
        """A replayed delivery: the same ADO JSON applied again (as read at some point)."""
        snapshot = data.draw(st.sampled_from(item.snapshots))
        services.approval_apply(project=self.env.project, data=snapshot)

    def _has_messages(self) -> bool:
        return OutboxMessage.objects.filter(approval_id__in=self.tracked).exists()

    @precondition(_has_messages)
    @rule(data=st.data())
    def deliver(self, data):
        """One delivery attempt, what the task runs."""
        self._deliver(data.draw(st.sampled_from(self._messages())), "none")

    @precondition(_has_messages)
    @rule()
    def drain_outbox(self):
        """The worker catches up: one attempt at every message still queued."""
        for message in self._messages():
            if message.state == OutboxState.QUEUED:
                self._deliver(message, "none")

    @precondition(_has_messages)
    @rule(data=st.data(), fault=st.sampled_from(FAULTS))
    def deliver_while_ado_fails(self, data, fault):
        """One delivery attempt while the simulator fails (or loses the PATCH's answer)."""
        self._deliver(data.draw(st.sampled_from(self._messages())), fault)

    def _deliver(self, message: OutboxMessage, fault: str) -> None:
        sim = self.env.sim
        final_before = message.is_final or message.state == OutboxState.FAILED
        patches_before = len(sim.patch_log)
        client = self.env.client
        held = None
        if fault == "500-get":
            sim.fail_next(1, 500, path=message.approval.ado_id, method="GET")
        elif fault == "500-patch":
            sim.fail_next(1, 500, path="pipelines/approvals", method="PATCH")
        elif fault == "429":
            sim.throttle_next(1, retry_after=2, path="pipelines/approvals")
        elif fault == "answer-lost":
            # ADO applies the PATCH, but its answer never reaches the portal.
            held = sim.slow_next(1, 2, path="pipelines/approvals", method="PATCH", after=True)
            client = self.env.impatient_client
        try:
            outcome = services.outbox_deliver(message_id=message.pk, client=client)
        finally:
            if held is not None:
                held.release()
            sim.clear_faults()
        message.refresh_from_db()
        if final_before:
            assert outcome.state == "missing"
            assert len(sim.patch_log) == patches_before
        if outcome.state == OutboxState.QUEUED:
            assert outcome.retry_in is not None and message.claimed_until is None
            if fault == "429" and "429" in outcome.detail:
                assert outcome.retry_in >= 2
        if outcome.state != "missing":
            assert message.state == outcome.state

    @precondition(
        lambda self: OutboxMessage.objects.filter(
            approval_id__in=self.tracked, state=OutboxState.FAILED
        ).exists()
    )
    @rule(data=st.data())
    def admin_retry(self, data):
        failed = [m for m in self._messages() if m.state == OutboxState.FAILED]
        message = data.draw(st.sampled_from(failed))
        services.outbox_retry(message_id=message.pk, user=self.env.admin)
        message.refresh_from_db()
        assert message.state == OutboxState.QUEUED

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def one_terminal_decision_per_step(self):
        for item in self.tracked.values():
            approval = ApprovalRequest.objects.get(pk=item.pk)
            decisions = list(Decision.objects.filter(approval=approval).order_by("pk"))
            statuses = [d.status for d in decisions]
            assert statuses.count(DecisionStatus.APPROVED) <= approval.min_required_approvers
            assert statuses.count(DecisionStatus.REJECTED) <= 1
            assert len({d.user_id for d in decisions}) == len(decisions)
            approvals_so_far = 0
            for index, decision in enumerate(decisions):
                if decision.status == DecisionStatus.APPROVED:
                    approvals_so_far += 1
                closes = (
                    decision.status == DecisionStatus.REJECTED
                    or approvals_so_far >= approval.min_required_approvers
                )
                if closes:
                    assert index == len(decisions) - 1, "a decision after the closing one"
                    assert approval.status not in OPEN_STATUSES
                    if approval.decided_in == DecidedIn.PORTAL:
                        assert approval.status == decision.status
                    else:  # ADO decided first (the portal was behind): ADO's outcome stands
                        assert approval.decided_in == DecidedIn.ADO
            if approval.status not in OPEN_STATUSES:
                if item.decisions_when_closed is None:
                    item.decisions_when_closed = len(decisions)
                assert len(decisions) == item.decisions_when_closed, "decided after closing"

    @invariant()
    def never_a_self_approval(self):
        for item in self.tracked.values():
            approval = ApprovalRequest.objects.select_related("run", "model_version").get(
                pk=item.pk
            )
            forbidden = {item.requested_by, approval.run.requested_by_id.lower()}
            if approval.model_version is not None:
                forbidden.add(approval.model_version.user_id.lower())
            approvers = Decision.objects.filter(
                approval=approval, status=DecisionStatus.APPROVED
            ).values_list("user__email", flat=True)
            assert not forbidden & {e.lower() for e in approvers}

    @invariant()
    def outbox_and_audit_agree(self):
        for decision in Decision.objects.filter(approval_id__in=self.tracked):
            message = OutboxMessage.objects.get(decision=decision)
            assert message.approval_id == decision.approval_id
            rows = list(
                AuditEvent.objects.filter(decision=decision).values_list("action", flat=True)
            )
            assert rows.count(AuditAction.DECISION_MADE) == 1
            delivered = rows.count(AuditAction.DELIVERY_DELIVERED)
            already = rows.count(AuditAction.DELIVERY_ALREADY_DECIDED)
            if message.state == OutboxState.DELIVERED:
                assert delivered == 1 and already == 0
                assert message.delivered_at is not None
                steps = self.env.sim.approval(decision.approval.ado_id).steps
                mark = f"{services.PORTAL_MARK} {decision.pk})"
                assert any(mark in (s.comment or "") for s in steps), "delivered, not in ADO"
            elif message.state == OutboxState.ALREADY_DECIDED:
                assert already == 1 and delivered == 0
            else:
                assert delivered == 0 and already == 0
            if message.state == OutboxState.FAILED:
                assert rows.count(AuditAction.DELIVERY_FAILED) >= 1
            if message.state in (OutboxState.DELIVERED, OutboxState.ALREADY_DECIDED):
                assert message.claimed_until is None

    @invariant()
    def ado_applied_each_decision_at_most_once(self):
        applied: dict[str, list[str]] = {}
        for entry in self.env.sim.patch_log:
            if entry.get("status") != 200:
                continue
            for update in entry.get("body") or []:
                applied.setdefault(str(update["approvalId"]).lower(), []).append(
                    str(update.get("comment") or "")
                )
        for item in self.tracked.values():
            decisions = list(Decision.objects.filter(approval_id=item.pk))
            comments = applied.get(item.ado_id, [])
            assert len(comments) <= len(decisions)
            for decision in decisions:
                mark = f"{services.PORTAL_MARK} {decision.pk})"
                assert sum(mark in c for c in comments) <= 1, f"decision {decision.pk} sent twice"

    @invariant()
    def each_close_in_ado_is_recorded_once(self):
        """ADO closes an approval once; replays and re-reads must not record it again."""
        for item in self.tracked.values():
            actions = list(
                AuditEvent.objects.filter(approval_id=item.pk).values_list("action", flat=True)
            )
            closes = actions.count(AuditAction.APPROVAL_CHANGED_IN_ADO) + actions.count(
                AuditAction.APPROVAL_CONFIRMED
            )
            assert closes <= 1, f"ADO's close recorded {closes} times"
            assert actions.count(AuditAction.APPROVAL_REQUESTED) == 1

    @invariant()
    def audit_rows_never_change(self):
        rows = AuditEvent.objects.filter(pk__gt=self.audit_floor).values_list("pk", *AUDIT_FIELDS)
        current = {row[0]: row[1:] for row in rows}
        for pk, seen in self.audit_seen.items():
            assert current.get(pk) == seen, f"audit row {pk} changed or vanished"
        self.audit_seen = current


@pytest.fixture
def machine_env(sim, project, fraud, make_user, settings):
    settings.APPROVALS_NOTIFY = False
    settings.APPROVALS_DELIVERY_CLIENT_RETRIES = 0
    folder = "\\risk\\fraud-detector"
    stage_seconds = {"Build": 60, "Deploy_QA": 60, "Deploy_PROD": 60}
    pipelines = {
        "single": sim.create_pipeline(
            "risk-fraud-detector-release",
            "release",
            folder=folder,
            model="fraud-detector",
            stage_seconds=stage_seconds,
        ),
        "pair": sim.create_pipeline(
            "risk-fraud-detector-release-pair",
            "release",
            folder=folder,
            model="fraud-detector",
            stage_seconds=stage_seconds,
            approvers={"Deploy_QA": list(APPROVERS)},
            min_required_approvers=2,
        ),
        "short": sim.create_pipeline(
            "risk-fraud-detector-release-short",
            "release",
            folder=folder,
            model="fraud-detector",
            stage_seconds=stage_seconds,
            approval_timeout_minutes=SHORT_TIMEOUT_MINUTES,
        ),
    }
    users = {
        email: make_user(
            *(() if email == NOT_AN_APPROVER else ("approver",)),
            email=email,
            username=email.split("@")[0],
        )
        for email in USERS
    }
    credentials = AdoCredentials(pat=PAT)
    return SimpleNamespace(
        sim=sim,
        project=project,
        pipelines=pipelines,
        users=users,
        admin=make_user("admin", email="adam@example.com", username="adam"),
        client=AdoClient(sim.org_url, "MLOps", credentials, sleep=lambda s: None, max_retries=0),
        impatient_client=AdoClient(
            sim.org_url,
            "MLOps",
            credentials,
            sleep=lambda s: None,
            max_retries=0,
            timeout=(5, 0.5),
        ),
    )


def test_approvals_keep_their_invariants(machine_env):
    """25 examples in `make test`; APPROVALS_MACHINE_EXAMPLES=500 explores further."""
    ApprovalsMachine.env = machine_env
    run_state_machine_as_test(
        ApprovalsMachine,
        settings=hypothesis_settings(
            max_examples=int(os.environ.get("APPROVALS_MACHINE_EXAMPLES", "25")),
            stateful_step_count=20,
            deadline=None,
            database=None,  # nothing written under the repository
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# --- The approval policies in play ---------------------------------------------------------------

_real_now = timezone.now
SEEN: Counter = Counter()  # what the policy machine's runs did (printed with -s)
CLOCK_STEPS_HOURS = (1, 6, 25)


class PolicyMachine(ApprovalsMachine):
    """The machine above, with approval policies set and changed as it runs (soak time warn
    or block, QA approver not the PROD approver, approvers in sequence), runs that reach their
    PROD approval once QA was approved in ADO, and a clock that moves forward. Invariant: no
    sequence of actions gets a request approved that a policy rule refuses (an oracle, written
    apart from the rules, judges each accepted decision from the persisted facts)."""

    def __init__(self):
        super().__init__()
        self.offset = timedelta(0)
        self._clock = mock.patch.object(timezone, "now", lambda: _real_now() + self.offset)
        self._clock.start()
        self.accepted: set[int] = set()  # decisions the oracle found allowed when made
        self.prod_for: set[int] = set()  # QA items whose run reached PROD
        self.policy_changes = self.clock_steps = 0
        SEEN["examples"] += 1

    def teardown(self):
        self._clock.stop()
        super().teardown()

    # ---- policy and clock ---------------------------------------------------------------------

    @precondition(lambda self: self.policy_changes < 3)
    @rule(
        environment=st.sampled_from(["QA", "PROD"]),
        soak=st.sampled_from([None, 0, 24]),
        mode=st.sampled_from(["warn", "block"]),
        qa_approver=st.booleans(),
        sequence=st.sampled_from([(), ("bob", "alice"), ("carol",), ("alice", "carol")]),
    )
    def set_policy(self, environment, soak, mode, qa_approver, sequence):
        """A manager changes the environment's global policy (audited)."""
        SEEN["policy changes"] += 1
        self.policy_changes += 1
        existing = ApprovalPolicy.objects.filter(environment=environment, scope="global").first()
        data = {
            "environment": environment,
            "scope": "global",
            "soak_hours": soak,
            "soak_mode": mode,
            "prod_approver_not_qa_approver": qa_approver,
            "execution_order": "inSequence" if sequence else "anyOrder",
            "sequence_approvers": [f"{name}@example.com" for name in sequence],
        }
        before = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).count()
        services.policy_save(
            user=self.env.admin, data=data, policy_id=existing.pk if existing else None
        )
        after = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).count()
        assert after in (before, before + 1)

    @precondition(lambda self: self.clock_steps < 3 and bool(self.tracked))
    @rule(hours=st.sampled_from(CLOCK_STEPS_HOURS))
    def clock_step(self, hours):
        """Time passes (the portal's clock; soak times run on it)."""
        SEEN["clock steps"] += 1
        self.clock_steps += 1
        self.offset += timedelta(hours=hours)

    def _prod_candidates(self) -> list[Tracked]:
        """QA items approved in the portal (or ADO) whose run has not reached PROD yet."""
        open_qa = [
            i
            for i in self.tracked.values()
            if i.kind in ("single", "pair") and i.pk not in self.prod_for
        ]
        approved = set(
            ApprovalRequest.objects.filter(
                pk__in=[i.pk for i in open_qa], status=DecisionStatus.APPROVED
            ).values_list("pk", flat=True)
        )
        return [i for i in open_qa if i.pk in approved]

    @precondition(lambda self: bool(self._prod_candidates()))
    @rule(target=ApprovalsMachine.approvals, data=st.data())
    def reach_prod(self, data):
        """A run whose QA approval ADO has approved (once the worker delivered the portal's
        decisions) deploys to QA and waits at PROD; the pipelines sync mirrors its stages and
        the portal reads the PROD approval."""
        item = data.draw(st.sampled_from(self._prod_candidates()))
        sim = self.env.sim
        for message in OutboxMessage.objects.filter(
            approval_id=item.pk, state=OutboxState.QUEUED
        ):  # the worker catches up with the QA decisions first
            self._deliver(message, "none")
        if sim.approval(item.ado_id).status != "approved":
            return multiple()
        self.prod_for.add(item.pk)
        qa = ApprovalRequest.objects.get(pk=item.pk)
        prod_id = wait_at(sim, sim.run(qa.build_id), "PROD")
        assert pipelines_services.project_sync(project=self.env.project, client=self.env.client).ok
        result = services.approval_refresh(
            project=self.env.project, approval_id=prod_id, client=self.env.client
        )
        assert result.ok, result.as_dict()
        prod = ApprovalRequest.objects.get(project=self.env.project, ado_id=prod_id)
        assert prod.environment == "PROD" and prod.model_version_id == qa.model_version_id
        SEEN["a run reached its PROD approval"] += 1
        tracked = Tracked(prod.pk, prod_id, "prod", item.requested_by)
        self.tracked[prod.pk] = tracked
        self._read(tracked)
        return tracked

    # ---- deciding, judged by the oracle -------------------------------------------------------

    @rule(
        item=ApprovalsMachine.approvals,
        user=st.sampled_from(DECIDERS),
        status=st.sampled_from(["approved", "approved", "rejected"]),
        comment=st.sampled_from(["Looks fine", "Metrics regressed", ""]),
    )
    def decide(self, item, user, status, comment):
        person = self.env.users[user]
        approval = ApprovalRequest.objects.select_related("model_version", "run").get(pk=item.pk)
        refusals_before = policy_refusals(approval, person, timezone.now(), status)
        try:
            decision = services.approval_decide(
                approval_id=item.pk,
                user=person,
                status=status,
                comment=comment,
                authenticated_at=timezone.now(),
            )
        except services.DecisionRefused as refusal:
            assert AuditEvent.objects.filter(
                approval_id=item.pk, action=AuditAction.DECISION_REFUSED, detail__code=refusal.code
            ).exists()
            SEEN[f"{approval.environment} refused: {refusal.code}"] += 1
            return
        SEEN[f"{approval.environment} {status}"] += 1
        refusals_after = policy_refusals(approval, person, timezone.now(), status)
        assert not (refusals_before & refusals_after), (
            f"{user} got {approval.environment} approval {item.pk} {status}, "
            f"which {sorted(refusals_before & refusals_after)} refuses"
        )
        self.accepted.add(decision.pk)
        assert decision.status == status and user != NOT_AN_APPROVER

    def _bulk_outcomes(self, outcomes, status) -> None:
        """A bulk decision is judged like a single one: the oracle must have allowed it (the
        refusals it finds now, after the decision, are the ones that held before it)."""
        for outcome in outcomes:
            if not outcome.decided:
                continue
            decision = Decision.objects.select_related("user").get(pk=outcome.decision_id)
            approval = ApprovalRequest.objects.select_related("model_version", "run").get(
                pk=outcome.approval_id
            )
            others = Decision.objects.filter(approval=approval).exclude(pk=decision.pk)
            refusals = policy_refusals(
                approval, decision.user, timezone.now(), status, ignoring=decision.pk
            )
            assert not refusals, (
                f"bulk {status} of {approval.environment} approval {approval.pk} went through "
                f"{sorted(refusals)} ({others.count()} other decisions)"
            )
            SEEN[f"{approval.environment} bulk {status}"] += 1
            self.accepted.add(decision.pk)

    @precondition(lambda self: any(i.kind == "prod" for i in self.tracked.values()))
    @rule(data=st.data(), user=st.sampled_from(DECIDERS), comment=st.sampled_from(["Fine", ""]))
    def decide_prod(self, data, user, comment):
        """The PROD approvals get their share of attempts."""
        prods = [i for i in self.tracked.values() if i.kind == "prod"]
        self.decide(data.draw(st.sampled_from(prods)), user, "approved", comment)

    @invariant()
    def every_decision_was_allowed_by_the_policies(self):
        made = set(
            Decision.objects.filter(approval_id__in=self.tracked).values_list("pk", flat=True)
        )
        assert made <= self.accepted, f"decisions the oracle never allowed: {made - self.accepted}"


def policy_refusals(
    approval: ApprovalRequest, user, now, status: str = "approved", ignoring: int | None = None
) -> set[str]:
    """The policy rules that refuse ``user`` deciding ``approval`` (``status``) at ``now``,
    judged from the stored facts (policies, decisions, ADO's steps, QA stages), apart from the
    rules' code. ``ignoring``: a decision to leave out (judging one already made). Soak time
    is a promotion gate: it refuses approving, not rejecting."""
    found = set()
    policy = ApprovalPolicy.objects.filter(environment=approval.environment, scope="global").first()
    if policy is None:
        return found
    email = user.email.lower()
    named = [a.lower() for a in policy.sequence_approvers or []]
    if policy.execution_order == "inSequence" and named:
        decided = {
            d.user.email.lower()
            for d in Decision.objects.filter(approval=approval)
            .exclude(pk=ignoring)
            .select_related("user")
        }
        waiting = [a for a in named if a not in decided]
        if waiting and waiting[0] != email:
            found.add("sequence")
    if approval.environment != "PROD":
        return found
    same_version = ApprovalRequest.objects.filter(
        environment="QA", model_version_id=approval.model_version_id
    )
    if policy.prod_approver_not_qa_approver:
        approved_here = Decision.objects.filter(
            approval__in=same_version, user=user, status=DecisionStatus.APPROVED
        ).exists()
        approved_in_ado = any(
            step.get("status") == "approved"
            and str((step.get("actual") or {}).get("unique_name") or "").lower() == email
            for steps in same_version.filter(decided_in="ado").values_list("steps", flat=True)
            for step in steps or []
        )
        if approved_here or approved_in_ado:
            found.add("qa_approver")
    if policy.soak_hours and policy.soak_mode == "block" and status == "approved":
        deployed = (
            RunStage.objects.filter(
                environment="QA",
                result="succeeded",
                run__model_version_id=approval.model_version_id,
                finished_at__isnull=False,
            )
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        if deployed is None or now < deployed + timedelta(hours=policy.soak_hours):
            found.add("soak_time")
    return found


def test_policies_never_let_a_refused_request_through(machine_env):
    """15 examples by default (each mirrors runs reaching PROD over HTTP);
    APPROVALS_POLICY_MACHINE_EXAMPLES explores further."""
    for name in ("alice", "bob", "carol"):
        assert machine_env.users[f"{name}@example.com"].email == f"{name}@example.com"
    PolicyMachine.env = machine_env
    run_state_machine_as_test(
        PolicyMachine,
        settings=hypothesis_settings(
            max_examples=int(os.environ.get("APPROVALS_POLICY_MACHINE_EXAMPLES", "15")),
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print("policy machine:", dict(sorted(SEEN.items())))
