"""Forms of the maturity pages: a manager's declaration of a model's level."""

from __future__ import annotations

from django import forms

from .models import LEVEL_NAMES, LEVELS
from .services import MIN_REASON_LENGTH

WITHDRAW = "withdraw"


class DeclarationForm(forms.Form):
    """Level 1-5, or "withdraw" to drop the declaration; the reason is kept with it.

    The service checks the rules again (manager, reason length, nothing to withdraw...): its
    refusals come back as errors of this form.
    """

    level = forms.ChoiceField(
        choices=[
            ("", "Choose…"),
            *((str(lv), f"Level {lv} · {LEVEL_NAMES[lv]}") for lv in LEVELS),
            (WITHDRAW, "Withdraw the declaration (use the assessed level)"),
        ],
        label="Declared level",
        error_messages={"required": "Choose a level, or withdraw the declaration."},
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 2000}),
        max_length=2000,
        label="Reason",
        help_text=f"Required (at least {MIN_REASON_LENGTH} characters); everyone who reads "
        "this model's maturity sees it.",
        error_messages={"required": "Give a reason: it is kept with the declaration."},
    )

    def __init__(self, *args, prefix_id: str = "declare", can_withdraw: bool = True, **kwargs):
        kwargs.setdefault("auto_id", f"{prefix_id}-%s")
        super().__init__(*args, **kwargs)
        self.can_withdraw = can_withdraw

    @property
    def level_choices(self) -> list[tuple[str, str]]:
        """The choices to show: "withdraw" only when a level is declared. A posted
        "withdraw" is still accepted, so the service answers it with its own clear refusal."""
        return [c for c in self.fields["level"].choices if self.can_withdraw or c[0] != WITHDRAW]

    @property
    def declared_level(self) -> int | None:
        """The level to declare (None: withdraw); call after ``is_valid``."""
        value = self.cleaned_data["level"]
        return None if value == WITHDRAW else int(value)
