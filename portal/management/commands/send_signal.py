"""Send a plain JSON signal for a model to a running portal, as a monitor would: a POST to
``/api/v1/operations/signals/generic/`` with the generic endpoint's shared secret
(``OPERATIONS_SIGNAL_SECRETS``; in the demo, the key ``manage.py demo`` keeps in
var/demo-signal-key). The portal's trigger policy of the model decides what it starts.

Exit codes: 0 sent; 1 the portal answered with an error; 2 bad input (an unknown model, a
resolved signal without --resolves); 3 the portal is not reachable (or not a portal);
4 no key, or the portal refused it (401/403).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from operations.models import Severity, SignalKind
from operations.payloads.generic import generic_signal_body
from portal.demo.processes import SIGNAL_KEY_FILE, demo_signal_key
from registry.models import CatalogModel

ENDPOINT = "/api/v1/operations/signals/generic/"
BAD_INPUT, UNREACHABLE, REFUSED, ANSWERED_ERROR = 2, 3, 4, 1


class Command(BaseCommand):
    help = (
        "Send a signal (drift by default) for a catalog model to a running portal over HTTP, "
        "signed with the generic signal endpoint's shared secret; prints what the trigger "
        "policy made of it."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", help="the catalog model's name")
        parser.add_argument(
            "--kind",
            choices=[str(k) for k in SignalKind],
            default=str(SignalKind.DRIFT),
            help="the kind of signal (default drift)",
        )
        parser.add_argument(
            "--severity",
            choices=[str(s) for s in Severity],
            default=str(Severity.WARNING),
            help="default warning",
        )
        parser.add_argument(
            "--url",
            default=getattr(settings, "PORTAL_BASE_URL", "") or "http://127.0.0.1:8000",
            help="the portal's address (default PORTAL_BASE_URL, http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--key",
            default=None,
            help="the generic endpoint's shared secret (default: the first generic secret of "
            f"OPERATIONS_SIGNAL_SECRETS, else the demo's var/{SIGNAL_KEY_FILE})",
        )
        parser.add_argument("--title", default="", help="what the signal says")
        parser.add_argument(
            "--resolves",
            default="",
            help="for --kind resolved: the event id of the signal it closes (printed when that "
            "one was sent)",
        )
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    def handle(self, *args, model, kind, severity, url, key, title, resolves, timeout, **opts):
        model = model.strip()
        if not model:
            raise CommandError("Name the model the signal is about.", returncode=BAD_INPUT)
        if kind == SignalKind.RESOLVED and not resolves:
            raise CommandError(
                "A resolved signal closes an earlier one: pass --resolves <its event id>.",
                returncode=BAD_INPUT,
            )
        if resolves and kind != SignalKind.RESOLVED:
            raise CommandError("--resolves goes with --kind resolved.", returncode=BAD_INPUT)
        model = self._known_model(model)
        key = key or _configured_key()
        if not key:
            raise CommandError(
                "No shared secret for the generic signal endpoint: pass --key, or set "
                "OPERATIONS_SIGNAL_SECRETS=generic=<key> (the demo keeps its key in "
                f"{Path(settings.VAR_DIR) / SIGNAL_KEY_FILE}).",
                returncode=REFUSED,
            )
        body = generic_signal_body(
            model=model,
            kind=kind,
            severity=severity,
            source="manage.py send_signal",
            title=title,
            made_by="send_signal",
            resolves=resolves,
        )
        target = url.rstrip("/") + ENDPOINT
        try:
            response = requests.post(
                target, json=body, headers={"X-Signal-Key": key}, timeout=timeout
            )
        except requests.RequestException as exc:
            raise CommandError(
                f"Could not reach the portal at {url}: {_why(exc)}. Is it running (make demo)? "
                "Pass its address with --url.",
                returncode=UNREACHABLE,
            ) from None
        answer = _json(response)
        detail = answer.get("detail") or response.text[:300]
        if response.status_code in (401, 403):
            raise CommandError(
                f"The portal at {url} refused the signal ({response.status_code}): {detail} "
                "Pass the generic endpoint's shared secret with --key.",
                returncode=REFUSED,
            )
        if response.status_code == 404 or (response.status_code < 300 and not answer):
            raise CommandError(
                f"{target} is not a portal's signal endpoint (HTTP {response.status_code}).",
                returncode=UNREACHABLE,
            )
        if response.status_code >= 300:
            raise CommandError(
                f"The portal at {url} answered {response.status_code}: {detail}",
                returncode=ANSWERED_ERROR,
            )
        signals = answer.get("signals") or []
        if not signals:
            self.stdout.write(f"Nothing new: {detail}")
            return
        signal = signals[0]
        page = f"{url.rstrip('/')}/operations/signals/{signal['id']}/"
        if signal.get("model") is None:
            raise CommandError(
                f"The portal at {url} knows no model named {model!r}: the signal was recorded "
                f"as unmatched ({page}).",
                returncode=BAD_INPUT,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Sent a {kind} signal ({severity}) for {signal['model']}: signal #{signal['id']}, "
                f"{signal.get('disposition') or 'not decided'}."
            )
        )
        self.stdout.write(f"  event id {body['id']} (--resolves {body['id']} closes it)")
        self.stdout.write(f"  {page}")

    def _known_model(self, name: str) -> str:
        """The catalog's spelling of ``name``, when this database is the portal's (it holds a
        catalog); an unknown name is refused here, with the near ones."""
        try:
            names = list(CatalogModel.objects.values_list("name", flat=True))
        except DatabaseError:
            return name  # not the portal's database: the portal's answer tells
        if not names:
            return name
        for known in names:
            if known.lower() == name.lower():
                return known
        near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise CommandError(
            f"No catalog model named {name!r}.{hint} Known models: {', '.join(sorted(names))}.",
            returncode=BAD_INPUT,
        )


def _configured_key() -> str | None:
    configured = (getattr(settings, "OPERATIONS_SIGNAL_SECRETS", {}) or {}).get("generic") or []
    if configured:
        return configured[0]
    return demo_signal_key(Path(settings.VAR_DIR), create=False)


def _json(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _why(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or no such host"
    return str(exc)
