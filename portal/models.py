"""The portal app's own tables: who signed in with Microsoft Entra ID, and their token cache."""

from django.conf import settings
from django.db import models


class EntraAccount(models.Model):
    """The Entra ID identity behind a portal user, matched by tenant and object id (never by
    e-mail), with the user's MSAL token cache so the worker can act for them (portal.entra)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entra_account"
    )
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    # What Entra last said (refreshed at each sign-in; for people, never for matching).
    preferred_username = models.CharField(max_length=254, blank=True)
    home_account_id = models.CharField(max_length=200, blank=True)
    # The MSAL SerializableTokenCache, encrypted (portal.entra). Kept after sign-out, so a
    # decision already made still reaches ADO under its maker's name; a new sign-in replaces it.
    token_cache = models.TextField(blank=True, editable=False)
    roles_from_entra = models.JSONField(
        default=list, blank=True, help_text="Portal roles the last sign-in granted."
    )
    claimed_roles = models.JSONField(
        default=list, blank=True, help_text="App roles and groups the last id token carried."
    )
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "object_id"], name="portal_entra_account_tid_oid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.preferred_username or self.object_id} ({self.tenant_id})"


class EntraSession(models.Model):
    """Which portal session an Entra sign-in session (the id token's ``sid``) opened, so
    Entra's front-channel logout can end it."""

    sid = models.CharField(max_length=200, db_index=True)
    session_key = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sid} -> {self.session_key[:6]}…"
