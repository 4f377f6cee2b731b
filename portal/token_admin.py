"""The admin of machine access: portal API tokens and the service principals that called the
API (docs/api-access.md). Registered from ``PortalConfig.ready`` rather than portal/admin.py:
that module defines the admin site itself, and registering there, while the default site is
still being built from it, would register on an instance the admin then drops."""

from django import forms
from django.contrib import admin, messages
from django.core.validators import MaxValueValidator
from django.shortcuts import render

from . import api_tokens
from .models import ApiToken, ServicePrincipal


class ApiTokenAddForm(forms.ModelForm):
    """An operator makes a token for someone (a script of theirs); shown once, after saving."""

    days = forms.IntegerField(label="Lifetime (days)", min_value=1)

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scope"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        longest = api_tokens.lifetime_days_max()
        self.fields["days"].validators.append(
            MaxValueValidator(longest, message=f"A token lives at most {longest} days.")
        )
        self.fields["days"].initial = api_tokens.lifetime_days_default()


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every portal API token: whose, what scope, until when, last used from where. Tokens are
    never edited (only a digest is kept); an operator makes one for someone or revokes it."""

    list_display = [
        "name",
        "user",
        "key_id",
        "scope",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "last_used_ip",
    ]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_id", "user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]  # the add form: a user id, not a list of every user
    actions = ["revoke"]
    readonly_fields = [
        "user",
        "name",
        "key_id",
        "scope",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
        "last_used_ip",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return ["user", "name", "scope", "days"] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays, for the audit trail's sake

    def save_model(self, request, obj, form, change):
        token, raw = api_tokens.token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            days=form.cleaned_data["days"],
            by=request.user,
            request=request,
        )
        obj.pk, obj._raw_token = token.pk, raw
        obj.key_id, obj.name = token.key_id, token.name

    def response_add(self, request, obj, post_url_continue=None):
        """The token, this once, in the answer itself (never in the session's messages)."""
        context = {
            **self.admin_site.each_context(request),
            "title": "API token made",
            "token": obj,
            "raw": obj._raw_token,
            "opts": self.model._meta,
        }
        response = render(request, "admin/portal/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        done = sum(
            api_tokens.token_revoke(token=token, by=request.user, request=request)
            for token in queryset.select_related("user")
        )
        self.message_user(request, f"{done} token(s) revoked.", messages.SUCCESS)


@admin.register(ServicePrincipal)
class ServicePrincipalAdmin(admin.ModelAdmin):
    """Service principals and managed identities that called the API with an Entra ID token:
    their portal user (deactivate it to shut one out), roles from their last token, last use.
    Made by their first call; the roles follow the token (assign app roles in Entra ID)."""

    list_display = [
        "__str__",
        "app_id",
        "object_id",
        "roles_from_entra",
        "last_used_at",
        "last_used_ip",
    ]
    search_fields = ["app_id", "object_id", "display_name", "user__username"]
    readonly_fields = [
        "user",
        "tenant_id",
        "object_id",
        "app_id",
        "claimed_roles",
        "roles_from_entra",
        "first_seen_at",
        "last_used_at",
        "last_used_ip",
        "last_token_id",
    ]
    fields = ["display_name", *readonly_fields]

    def has_add_permission(self, request, obj=None):
        return False
