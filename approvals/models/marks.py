"""What the approvals pages mark on a request beyond ADO's own facts: a high-risk model's
PROD approval and the number of approvers it needs (the model card's risk and the policy's
``high_risk_min_approvers``), and a run requested as a rollback. A mixin of ApprovalRequest."""

from __future__ import annotations

from pipelines.models import Environment
from registry.models import CardStatus, ModelCard, RiskRating

from .policies import high_risk_min_approvers_for


class ApprovalMarks:
    """Properties of ApprovalRequest (``card_risk`` and ``rollback_marked`` are annotated by
    ``selectors.approvals_base``; read here when they are not)."""

    @property
    def high_risk(self) -> bool:
        """The model's card (not archived) rates it high risk; ``card_risk`` is annotated by
        the selectors (approvals_base), else read here."""
        risk = getattr(self, "card_risk", None)
        if risk is None and not hasattr(self, "card_risk"):
            card = ModelCard.objects.filter(catalog_model_id=self.catalog_model_id).first()
            risk = card.risk_rating if card and card.review_status != CardStatus.ARCHIVED else ""
            self.card_risk = risk
        return risk == RiskRating.HIGH

    @property
    def high_risk_rule_applies(self) -> bool:
        prod = self.environment == Environment.PROD
        return prod and bool(self.catalog_model_id) and self.high_risk

    @property
    def required_approvers(self) -> int:
        """Distinct approvals the portal needs before it closes the request: ADO's minimum,
        or more for a high-risk model in PROD (the policy's ``high_risk_min_approvers``)."""
        needed = self.min_required_approvers
        if self.high_risk_rule_applies:
            cached = getattr(self, "_high_risk_required", None)
            if cached is None:
                cached = self._high_risk_required = high_risk_min_approvers_for(
                    catalog_model=self.catalog_model, environment=self.environment
                )
            needed = max(needed, cached)
        return needed

    @property
    def approvals_progress(self) -> str:
        """ "1 of 2 approvals (a high-risk model needs two in PROD)": the pages' count."""
        required = self.required_approvers
        text = f"{self.approvals_counted} of {required} approval{'s' if required != 1 else ''}"
        if self.high_risk_rule_applies and required > self.min_required_approvers:
            words = {2: "two", 3: "three", 4: "four", 5: "five"}
            text += f" (a high-risk model needs {words.get(required, required)} in PROD)"
        return text

    @property
    def is_rollback(self) -> bool:
        """Its run was requested as a rollback (annotated by approvals_base, else read)."""
        marked = getattr(self, "rollback_marked", None)
        if marked is None:
            marked = (
                bool(self.run_id) and self.run.requests.filter(rollback_to__isnull=False).exists()
            )
            self.rollback_marked = marked
        return bool(marked)
