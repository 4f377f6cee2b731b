"""Signals the portal sends and the apps listen to: they live in the kernel, so a listener
never imports the portal (the top layer).

``sign_in_denied``: a sign-in that did not let the person in, other than a wrong local
password (Django's ``user_login_failed`` covers that). Sent by the Entra callback for a
failed or refused sign-in: wrong state, a token the portal rejects, no mapped role, an
inactive account. Keyword arguments:

- ``request``: the HTTP request (may be None);
- ``user``: the portal user when one is known (an existing account refused), else None;
- ``reason``: a short stable code, e.g. ``"state_mismatch"``, ``"no_role"``, ``"inactive"``;
- ``claims``: the identity claims known at that point (``oid``, ``tid``, ``upn``/
  ``preferred_username``, ``name``), never tokens;
- ``method``: how the person tried, ``"entra"`` (default) or ``"local"``.

The approvals app records each one in its audit trail (``auth.denied``).

When the session timeout signs someone out, ``portal.middleware.SessionTimeoutMiddleware``
sets ``request.portal_sign_out_reason`` (``"idle_timeout"`` or ``"absolute_timeout"``) before
calling ``logout()``, so listeners of Django's ``user_logged_out`` can tell it from a sign-out
the person asked for.
"""

from django.dispatch import Signal

sign_in_denied = Signal()

api_access_event = Signal()
"""``api_access_event``: machine access to the API worth an audit row. Sent by the portal
(portal/api_auth.py, portal/api_tokens.py), recorded by approvals (the audit trail).
Keyword arguments:

- ``request``: the HTTP request (may be None);
- ``event``: ``"token_created"``, ``"token_revoked"``, ``"used"`` (at most once a minute per
  token or service principal) or ``"refused"``;
- ``user``: the portal user concerned (the token's owner, the service principal's user), or
  None when the token said nobody the portal knows;
- ``actor``: who did it when a person did (created or revoked), else None;
- ``reason``: a short stable code for a refusal (``"expired"``, ``"revoked"``,
  ``"bad_signature"``, ``"wrong_audience"``...), else "";
- ``message``: a sentence for people;
- ``facts``: what identifies the token (kind, key id or ``uti``, app id, scope), never the
  token itself.
"""
