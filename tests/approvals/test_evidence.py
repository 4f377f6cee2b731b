"""The evidence on the approval page says what is compared with what: the version asking to go
against the one running there now, beside the registry's aliases (which may point elsewhere),
with a warning when the candidate is older; and, for a rule-based model, what changed in its
scoring pipeline (commit, parameters, results) against what runs now."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.approvals import test_pages
from tests.approvals.factories import ApprovalRequestFactory
from tests.approvals.test_pages import INBOX, _detail, _soup
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

approver = test_pages.approver
approver_client = test_pages.approver_client


def _text(node) -> str:
    return " ".join(node.get_text(" ").split()) if node is not None else ""


def _churn(candidate: int, running: int, aliases: dict):
    """churn-predictor v1..v6; ``running`` went through PROD; ``candidate`` asks for PROD."""
    registered = RegisteredModelFactory(name="churn-predictor", aliases=aliases)
    versions = {
        n: ModelVersionFactory(
            registered_model=registered, version=n, metrics={"auc": 0.8 + n / 100}
        )
        for n in range(1, 7)
    }
    release = PipelineFactory(catalog_model=registered.catalog_model, kind="release")
    shipped = PipelineRunFactory(
        pipeline=release,
        model_version=versions[running],
        queued_at=timezone.now() - dt.timedelta(days=9),
        parameters={"modelVersion": str(running), "deployTarget": "aks"},
    )
    RunStageFactory(run=shipped, environment="QA", target="aks", order=1)
    RunStageFactory(run=shipped, environment="PROD", target="aks", order=2)
    approval = ApprovalRequestFactory(model_version=versions[candidate], environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", order=0)
    return approval


def test_the_comparison_says_which_versions_and_shows_the_registrys_aliases(approver_client):
    """The demo's case: PROD runs v3, @champion is v5, @challenger v6, the request is for v4."""
    approval = _churn(4, 3, {"champion": "5", "challenger": "6"})
    soup = _soup(approver_client.get(_detail(approval)))
    heading = _text(soup.select_one("[data-testid=metrics] .card-header"))
    assert "v4 against v3, in PROD now" in heading
    aliases = _text(soup.select_one("[data-testid=registry-aliases]"))
    assert "@champion v5" in aliases and "@challenger v6" in aliases
    assert "not what runs in PROD" in aliases  # the registry's champion is not the one running
    warnings = [_text(w) for w in soup.select("[data-testid=version-warning]")]
    assert warnings == [
        "v4 is older than v5, the registry's @champion: check that this is the version meant."
    ]


def test_a_candidate_older_than_what_runs_is_warned_about(approver_client):
    approval = _churn(2, 3, {"champion": "3"})
    soup = _soup(approver_client.get(_detail(approval)))
    assert "v2 against v3, in PROD now" in _text(soup.select_one("[data-testid=metrics]"))
    warnings = [_text(w) for w in soup.select("[data-testid=version-warning]")]
    assert warnings == [
        "v2 is older than v3, which already runs in PROD: approving rolls PROD back.",
        "v2 is older than v3, the registry's @champion: check that this is the version meant.",
    ]
    aliases = _text(soup.select_one("[data-testid=registry-aliases]"))
    assert "@champion v3" in aliases and "not what runs" not in aliases


def test_a_newer_candidate_gets_no_warning(approver_client):
    approval = _churn(6, 3, {"champion": "5", "challenger": "6"})
    soup = _soup(approver_client.get(_detail(approval)))
    assert soup.select("[data-testid=version-warning]") == []
    assert "@challenger v6 (this version)" in _text(
        soup.select_one("[data-testid=registry-aliases]")
    )


# --- Rule-based models ---------------------------------------------------------------------------


@pytest.fixture
def rules_v4_at_qa():
    """credit-limit-rules (rule-based, not registered): v3 runs in QA; v4's scoring run changed
    the commit and a threshold; the release of v4 waits at QA."""
    rules = CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    scoring = PipelineFactory(
        catalog_model=rules, kind="scoring", name="risk-credit-limit-rules-score"
    )
    release = PipelineFactory(catalog_model=rules, kind="release")

    def scored(version: str, commit: str, threshold: str, days: int):
        return PipelineRunFactory(
            pipeline=scoring,
            queued_at=timezone.now() - dt.timedelta(days=days),
            source_version=commit + "0" * 32,
            parameters={
                "modelName": "credit-limit-rules",
                "modelVersion": version,
                "threshold": threshold,
                "window": "30d",
            },
        )

    scored_v3 = scored("3", "aaaa1111", "0.7", days=8)
    scored_v4 = scored("4", "bbbb2222", "0.8", days=1)
    shipped = PipelineRunFactory(
        pipeline=release,
        queued_at=timezone.now() - dt.timedelta(days=7),
        parameters={"modelVersion": "3", "deployTarget": "databricks-job"},
    )
    RunStageFactory(run=shipped, environment="QA", target="databricks-job", order=1)
    waiting = PipelineRunFactory(
        pipeline=release,
        state="inProgress",
        result="",
        finished_at=None,
        parameters={"modelVersion": "4", "deployTarget": "databricks-job"},
    )
    approval = ApprovalRequestFactory(
        model_version=None, catalog_model=rules, run=waiting, environment_name="QA"
    )
    return approval, scored_v3, scored_v4


def test_a_rule_based_approval_shows_what_changed_against_what_runs_now(
    approver_client, rules_v4_at_qa
):
    approval, _, scored_v4 = rules_v4_at_qa
    soup = _soup(approver_client.get(_detail(approval)))
    assert "credit-limit-rules v4" in _text(soup.select_one("[data-testid=approval-header]"))
    changes = soup.select_one("[data-testid=rule-changes]")
    assert "v4 against v3, in QA now" in _text(changes.select_one(".card-header"))
    commit = changes.select_one("[data-row=commit]")
    assert "bbbb2222" in _text(commit) and "aaaa1111" in _text(commit)
    assert commit["data-changed"] == "true"
    threshold = changes.select_one("[data-param=threshold]")
    assert threshold["data-changed"] == "true"
    assert [td.get_text(strip=True) for td in threshold.select("td")] == ["0.8", "0.7"]
    assert changes.select_one("[data-param=window]")["data-changed"] == "false"
    assert changes.select_one("[data-param=modelVersion]") is None  # which run, not a change
    result = _text(changes.select_one("[data-row=result]"))
    assert result.count("succeeded") == 2
    deployed = _text(soup.select_one("[data-testid=rule-deployed]"))
    assert "QA: v3" in deployed and "Databricks" in deployed and "PROD: nothing" in deployed
    # the scoring runs stay listed beneath
    assert soup.select_one(f"[data-testid=scoring-runs] [data-run='{scored_v4.pk}']") is not None


def test_the_inbox_names_a_rule_based_version_instead_of_a_dash(approver_client, rules_v4_at_qa):
    approval, *_ = rules_v4_at_qa
    row = _soup(approver_client.get(INBOX)).select_one(f"tr[data-approval='{approval.pk}']")
    cells = [_text(td) for td in row.select("td")]
    assert "v4" in cells[2] and "rule set" in cells[2]
    assert "—" not in cells[2] and "?" not in " ".join(cells)


def test_a_rule_based_approval_with_nothing_running_says_so(approver_client):
    rules = CatalogModelFactory(name="limits-rules", kind="rule_based")
    release = PipelineFactory(catalog_model=rules, kind="release")
    scoring = PipelineFactory(catalog_model=rules, kind="scoring")
    PipelineRunFactory(pipeline=scoring, parameters={"modelVersion": "1", "threshold": "0.5"})
    waiting = PipelineRunFactory(
        pipeline=release,
        state="inProgress",
        result="",
        finished_at=None,
        parameters={"modelVersion": "1"},
    )
    approval = ApprovalRequestFactory(model_version=None, catalog_model=rules, run=waiting)
    changes = _soup(approver_client.get(_detail(approval))).select_one("[data-testid=rule-changes]")
    assert "v1, nothing in QA yet" in _text(changes.select_one(".card-header"))
    assert [
        td.get_text(strip=True) for td in changes.select_one("[data-param=threshold]").select("td")
    ] == ["0.5", "—"]
