"""The portal app's own tables: who signed in with Microsoft Entra ID (and their token cache),
the portal API tokens people made for scripts, and the service principals that called the API."""

from django.conf import settings
from django.db import models
from django.utils import timezone


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


class ApiTokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write (what the owner's role allows)"


class ApiToken(models.Model):
    """A portal API token a person (or an admin for them) made for a script: only a hash is
    kept (the token is shown once), it acts as its owner with the owner's roles, limited to
    reads unless its scope is ``write``, until it expires or is revoked (portal.api_tokens)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    # The token's first characters after the prefix: how people and the audit trail name it.
    key_id = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)  # sha256 hex
    scope = models.CharField(
        max_length=10, choices=ApiTokenScope.choices, default=ApiTokenScope.READ
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who made it (the owner, or an admin for them).",
    )
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at <= (now or timezone.now())


class ServicePrincipal(models.Model):
    """A service principal or managed identity that called the API with an Entra access token
    (client credentials): the portal user it acts as (no password), matched by tenant and
    object id, with its app id, the roles its last token granted, and when and from where it
    last called (portal.api_auth)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_principal"
    )
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    app_id = models.CharField(max_length=64, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    claimed_roles = models.JSONField(
        default=list, blank=True, help_text="App roles the last access token carried."
    )
    roles_from_entra = models.JSONField(
        default=list, blank=True, help_text="Portal roles the last access token granted."
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    last_token_id = models.CharField(
        max_length=100, blank=True, help_text="The last token's uti (Entra's token id)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "object_id"], name="portal_service_principal_tid_oid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.app_id or self.object_id} ({self.tenant_id})"
