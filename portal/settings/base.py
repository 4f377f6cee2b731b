"""Settings shared by every environment; everything that varies comes from the environment."""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A .env file beside manage.py works too; real environment variables win over it.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

# GENERAL
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

# DATABASE: SQLite under var/ unless DATABASE_URL says otherwise.
# ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file: WAL plus immediate transactions avoid
    # "database is locked" when two of them write at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

# APPS
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "csp",
    "axes",
    # The project's own apps, lowest layer first: core <- registry <- pipelines <- approvals
    # <- operations <- maturity <- portal (docs/architecture.md; lint-imports checks the order).
    "core.apps.CoreConfig",
    "portal.apps.PortalConfig",
    "registry",
    "pipelines",
    "approvals",
    "operations",
    "maturity",
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",
    "portal.middleware.NulCharacterMiddleware",
    "portal.middleware.MetricsMiddleware",
    "portal.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.AccessMiddleware",
    "core.errors.PortalErrorMiddleware",
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    },
]

# AUTH: local accounts now; Entra ID sign-in slots in beside them as another backend.
# ------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out sign-in before any password
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
# A signed-in session ends after 30 minutes without a request, and 8 hours after its sign-in
# whatever the activity (portal.middleware.SessionTimeoutMiddleware); the cookie goes with it.
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=1800)
SESSION_ABSOLUTE_TIMEOUT_SECONDS = env.int("SESSION_ABSOLUTE_TIMEOUT_SECONDS", default=28800)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_SECONDS
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Proxies whose X-Forwarded-For names the client (core.client_address); gunicorn trusts
# the same addresses for X-Forwarded-Proto (gunicorn.conf.py).
PORTAL_TRUSTED_PROXIES: list[str] = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1", "::1"])

# SIGN-IN THROTTLING (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one account
# from one address, or from one address for any accounts, sign-in is refused there for the
# cool-off; a successful sign-in clears the count. Admins can unlock in the admin (Axes).
# ------------------------------------------------------------------------------
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The cool-off runs from the lockout; attempts while locked do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "core.client_address.client_ip"
# The sign-in page (or the password confirmation) with a message, not a bare 429.
AXES_LOCKOUT_CALLABLE = "portal.views.sign_in_locked_out"
AXES_HTTP_RESPONSE_CODE = 429
# No start-up banner on every command; failures and lockouts are still logged.
AXES_VERBOSE = False

# STATIC: vendored front-end files under static/, served by whitenoise.
# ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# SECURITY HEADERS
# ------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No inline scripts or styles; only the API docs add inline styles, which Swagger UI needs
# (portal.api.SchemaDocsView).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# REST API
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # A bearer token first (a portal API token, else an Entra ID access token: docs/api-access.md),
    # then the browser's session. Without a token nothing changes: anonymous calls stay 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api_auth.PortalTokenAuthentication",
        "portal.api_auth.EntraTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Writes only, per user and per token (core.throttling; rates below), on the shared cache.
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.WritesPerUserThrottle",
        "core.throttling.WritesPerTokenThrottle",
    ],
    # Fail closed: an API view that declares no roles is refused to everyone.
    "DEFAULT_PERMISSION_CLASSES": ["core.access.HasPortalAccess"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api_support.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MLOps Portal API",
    "DESCRIPTION": "Registry mirror, pipelines, approvals and maturity of the MLOps Portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # What a bearer token can be answered on every operation (401, 503; 403 and 429 on writes).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api_auth.schema_machine_access_responses",
    ],
    # Choice sets that share a field name ("status", "state") get their own names.
    "ENUM_NAME_OVERRIDES": {
        "ApprovalStatusEnum": "approvals.models.ApprovalStatus",
        "DecisionStatusEnum": "approvals.models.DecisionStatus",
        "OutboxStateEnum": "approvals.models.OutboxState",
        "RunStateEnum": "pipelines.models.RunState",
        "SeverityEnum": "operations.models.Severity",
        "SignalKindEnum": "operations.models.SignalKind",
        "EpisodeKindEnum": "operations.models.EpisodeKind",
        "EpisodeStateEnum": "operations.models.EpisodeState",
        "EnvironmentEnum": "pipelines.models.Environment",
        "FreezeKindEnum": "approvals.models.FreezeKind",
        "FreezeScopeEnum": "approvals.models.FreezeScope",
        "OutcomeEnum": "operations.models.EpisodeOutcome",
        "AliasOutcomeEnum": "registry.selectors.ALIAS_OUTCOMES",
        "CardReviewOutcomeEnum": "registry.services.cards.REVIEW_OUTCOMES",
    },
}

# CELERY: Redis when REDIS_URL is set; otherwise kombu's filesystem transport under var/
# so the embedded default still runs a real worker and beat with no server to install.
# ------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{CELERY_BROKER_DIR / 'results'}"
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="portal")
# Queues (README "Workers"): every task by name, the one place that says where it waits.
# deliveries: someone waits on these (a decision's PATCH, a run request), one at a time per
#   worker process (prefetch 1) so a held retry never sits in front of a fresh decision.
# syncs: long and convergent (a rerun is safe): acks_late, and the broker's visibility
#   timeout (above) is longer than the hard time limit, so no sync is handed out twice.
# maintenance: short periodic work (maturity, notices, the outbox sweep).
# portal.ping (the liveness ping) and anything not listed use the default queue.
CELERY_TASK_ROUTES = {
    "approvals.deliver_decision": {"queue": "deliveries"},
    "pipelines.send_run_request": {"queue": "deliveries"},
    "registry.sync_source": {"queue": "syncs"},
    "registry.sync_model": {"queue": "syncs"},
    "pipelines.sync_project": {"queue": "syncs"},
    "pipelines.refresh_run": {"queue": "syncs"},
    "approvals.sync_all_projects": {"queue": "syncs"},
    "approvals.sync_project": {"queue": "syncs"},
    "approvals.refresh_approval": {"queue": "syncs"},
    "approvals.sweep_outbox": {"queue": "maintenance"},
    "approvals.evaluate_check": {"queue": "deliveries"},
    "approvals.send_check_callback": {"queue": "deliveries"},
    "approvals.sweep_checks": {"queue": "maintenance"},
    "approvals.notify_new": {"queue": "maintenance"},
    "approvals.notify_expiring": {"queue": "maintenance"},
    "approvals.notify_signoff": {"queue": "maintenance"},
    "pipelines.sweep_run_requests": {"queue": "maintenance"},
    "operations.follow_episodes": {"queue": "maintenance"},
    "operations.tick": {"queue": "maintenance"},
    "maturity.nightly": {"queue": "maintenance"},
    "maturity.assess_changed": {"queue": "maintenance"},
    "registry.check_artifacts": {"queue": "maintenance"},
    "registry.check_artifact": {"queue": "maintenance"},
}
# Touched by each worker while it runs, read by `python -m portal.worker_liveness`.
CELERY_WORKER_HEARTBEAT_FILE = env(
    "CELERY_WORKER_HEARTBEAT_FILE",
    default="/tmp/celery-worker-heartbeat",  # noqa: S108
)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_TIME_LIMIT = 10 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 9 * 60
# A task whose worker dies mid-run goes back to the queue instead of being lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task running when the broker connection drops is cancelled (and redelivered: acks_late)
# rather than finishing unacknowledgeable; the outbox reads ADO first, so a rerun is safe.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Fixed schedules (the DatabaseScheduler copies them into django_celery_beat's tables).
CELERY_BEAT_SCHEDULE = {
    "approvals: sync pending approvals": {
        "task": "approvals.sync_all_projects",
        "schedule": env.int("APPROVALS_SYNC_INTERVAL_SECONDS", default=60),
    },
    "approvals: sweep the decision outbox": {
        "task": "approvals.sweep_outbox",
        "schedule": 30,
    },
    "approvals: sweep the automated checks (lost evaluations and callbacks)": {
        "task": "approvals.sweep_checks",
        "schedule": 30,
    },
    "approvals: warn about approvals about to expire": {
        "task": "approvals.notify_expiring",
        "schedule": 15 * 60,
    },
    "pipelines: send run requests that are due (retries, lost tasks)": {
        "task": "pipelines.sweep_run_requests",
        "schedule": 30,
    },
    "operations: start deferred runs, expire proposals, follow open episodes": {
        "task": "operations.tick",
        "schedule": env.int("OPERATIONS_TICK_SECONDS", default=30),
    },
    "maturity: assess models whose runs, approvals or versions changed": {
        "task": "maturity.assess_changed",
        "schedule": 60,
    },
    "registry: check the binaries of versions in QA, PROD or approval in Artifactory": {
        "task": "registry.check_artifacts",
        "schedule": env.int("ARTIFACTORY_CHECK_INTERVAL_SECONDS", default=3600),
    },
    "maturity: nightly assessment and weekly snapshot": {
        "task": "maturity.nightly",
        "schedule": crontab(
            hour=env.int("MATURITY_NIGHTLY_HOUR", default=2),
            minute=env.int("MATURITY_NIGHTLY_MINUTE", default=30),
        ),
    },
}

# PIPELINES run requests (pipelines/services/run_requests.py): a worker holds a request for
# one attempt for CLAIM seconds; retries back off from BACKOFF to BACKOFF_MAX, at most
# MAX_ATTEMPTS times, each first looking in ADO for the run the request may have queued.
PIPELINES_RUN_REQUEST_CLAIM_SECONDS = env.int("PIPELINES_RUN_REQUEST_CLAIM_SECONDS", default=60)
PIPELINES_RUN_REQUEST_BACKOFF_SECONDS = env.float(
    "PIPELINES_RUN_REQUEST_BACKOFF_SECONDS", default=5.0
)
PIPELINES_RUN_REQUEST_BACKOFF_MAX_SECONDS = env.float(
    "PIPELINES_RUN_REQUEST_BACKOFF_MAX_SECONDS", default=600.0
)
PIPELINES_RUN_REQUEST_MAX_ATTEMPTS = env.int("PIPELINES_RUN_REQUEST_MAX_ATTEMPTS", default=8)

# OPERATIONS (operations/; docs/operations.md)
# ------------------------------------------------------------------------------
# A signal matched more than this long after it came in is recorded, not acted on.
OPERATIONS_LATE_MATCH_MINUTES = env.int("OPERATIONS_LATE_MATCH_MINUTES", default=60)
# A model's "last heard from" times are written when a signal moves them by this much or more
# (a burst of alerts writes the row once, not once per alert).
OPERATIONS_LAST_HEARD_RESOLUTION_SECONDS = env.int(
    "OPERATIONS_LAST_HEARD_RESOLUTION_SECONDS", default=60
)
# Stall flags: a run with no version this long after it succeeded; an approval waiting longer.
OPERATIONS_NO_VERSION_STALL_MINUTES = env.int("OPERATIONS_NO_VERSION_STALL_MINUTES", default=60)
OPERATIONS_APPROVAL_STALL_HOURS = env.int("OPERATIONS_APPROVAL_STALL_HOURS", default=24)
OPERATIONS_RELEASE_STALL_MINUTES = env.int("OPERATIONS_RELEASE_STALL_MINUTES", default=60)
# Shared secrets of the signal endpoints, per source, for senders without a machine token:
# "azure-monitor=s1|s1next,event-grid=s2,..." (several per source while one is rotated).
OPERATIONS_SIGNAL_SECRETS: dict[str, list[str]] = {
    slug.strip(): [s for s in secrets.split("|") if s]
    for slug, _, secrets in (
        part.partition("=") for part in env("OPERATIONS_SIGNAL_SECRETS", default="").split(",")
    )
    if slug.strip() and secrets
}
# The demo (manage.py demo sets PORTAL_DEMO for its processes): demo-only buttons, such as
# "send a signal" on the operations inbox for admins.
DEMO = env.bool("PORTAL_DEMO", default=False)
# A signal request body larger than this is refused with a 413 (Azure Monitor caps at 256 KB).
OPERATIONS_SIGNAL_MAX_BYTES = env.int("OPERATIONS_SIGNAL_MAX_BYTES", default=1024 * 1024)

# MATURITY (maturity/criteria.py; docs/maturity.md)
# ------------------------------------------------------------------------------
# The criteria look at runs and deployments of the last N days.
MATURITY_WINDOW_DAYS = env.int("MATURITY_WINDOW_DAYS", default=90)
# Level 4: median hours from data arrival to the start of training.
MATURITY_DATA_LAG_HOURS = env.float("MATURITY_DATA_LAG_HOURS", default=24.0)
# Version or run tags that name the code commit and the data version (level 2, 3).
MATURITY_COMMIT_TAGS = env.list(
    "MATURITY_COMMIT_TAGS", default=["mlflow.source.git.commit", "git_commit"]
)
MATURITY_DATA_TAGS = env.list(
    "MATURITY_DATA_TAGS", default=["data_snapshot", "data_version", "dataset_version"]
)
# Weekly snapshots for the trend are kept this long (at least 53 weeks whatever it says).
MATURITY_SNAPSHOT_RETENTION_WEEKS = env.int("MATURITY_SNAPSHOT_RETENTION_WEEKS", default=104)

# INTEGRATIONS (unset means "not configured")
# ------------------------------------------------------------------------------
# The registry sources and the ADO project `manage.py bootstrap_from_env` declares (the
# migrate step runs it): the central registry, an optional Data Discovery one, the project.
MLFLOW_TRACKING_URI = env("MLFLOW_TRACKING_URI", default="")
MLFLOW_REGISTRY_URI = env("MLFLOW_REGISTRY_URI", default="")
DATA_DISCOVERY_MLFLOW_TRACKING_URI = env("DATA_DISCOVERY_MLFLOW_TRACKING_URI", default="")
DATA_DISCOVERY_MLFLOW_REGISTRY_URI = env("DATA_DISCOVERY_MLFLOW_REGISTRY_URI", default="")
MLFLOW_WEBHOOK_SECRET = env("MLFLOW_WEBHOOK_SECRET", default="")
AZURE_DEVOPS_ORG_URL = env("AZURE_DEVOPS_ORG_URL", default="")
AZURE_DEVOPS_PROJECT = env("AZURE_DEVOPS_PROJECT", default="")
AZURE_DEVOPS_PAT = env("AZURE_DEVOPS_PAT", default="")
ADO_HOOK_SECRET = env("ADO_HOOK_SECRET", default="")

# SIGN-IN WITH MICROSOFT ENTRA ID (portal/entra.py; README "Sign-in with Microsoft Entra ID")
# ------------------------------------------------------------------------------
ENTRA_TENANT_ID = env("ENTRA_TENANT_ID", default="")
ENTRA_CLIENT_ID = env("ENTRA_CLIENT_ID", default="")
ENTRA_CLIENT_SECRET = env("ENTRA_CLIENT_SECRET", default="")
# Entra sign-in is on when all three are set; local accounts stay the embedded default.
ENTRA_ENABLED = bool(ENTRA_TENANT_ID and ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET)
# Sovereign clouds (or the tests' stand-in) use another authority.
ENTRA_AUTHORITY = env(
    "ENTRA_AUTHORITY", default=f"https://login.microsoftonline.com/{ENTRA_TENANT_ID or 'common'}"
)
# A CA bundle to trust for the authority (a TLS-inspecting proxy); empty: the system's.
ENTRA_CA_BUNDLE = env("ENTRA_CA_BUNDLE", default="")
# The redirect URI registered in Entra; empty: <this host>/auth/callback/ as the browser sees it.
ENTRA_REDIRECT_URI = env("ENTRA_REDIRECT_URI", default="")
# App-role values (the id token's "roles" claim) -> portal roles; JSON in the environment.
ENTRA_ROLE_CLAIMS: dict[str, str] = env.json(
    "ENTRA_ROLE_CLAIMS",
    default={
        "Portal.Approver": "approver",
        "Portal.DataScientist": "data_scientist",
        "Portal.Manager": "manager",
        "Portal.Admin": "admin",
    },
)
# Group object ids (the "groups" claim) -> portal roles; JSON in the environment.
ENTRA_GROUP_ROLES: dict[str, str] = env.json("ENTRA_GROUP_ROLES", default={})
# Seconds Entra's answers may take before the portal gives up.
ENTRA_TIMEOUT_SECONDS = env.float("ENTRA_TIMEOUT_SECONDS", default=10.0)
# Local user names and passwords; production may switch them off once Entra is on.
LOCAL_ACCOUNTS_ENABLED = env.bool("LOCAL_ACCOUNTS_ENABLED", default=True)
# Whom a signed-in user without a role should ask (shown on the "no role" page).
PORTAL_ROLE_CONTACT = env("PORTAL_ROLE_CONTACT", default="")
if ENTRA_ENABLED:
    # Sign-out (and a PROD decision's fresh sign-in) answer a form POST with a redirect to
    # Entra, which the browser follows only when form-action allows Entra's origin.
    from urllib.parse import urlsplit as _urlsplit

    _entra = _urlsplit(ENTRA_AUTHORITY)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(
        f"{_entra.scheme}://{_entra.netloc}"
    )

# MACHINE ACCESS TO THE API (portal/api_auth.py, portal/api_tokens.py; docs/api-access.md)
# ------------------------------------------------------------------------------
# Audiences an Entra ID access token may carry (the portal API's application id URI, its
# client id); empty: ENTRA_CLIENT_ID and api://ENTRA_CLIENT_ID.
ENTRA_API_AUDIENCES: list[str] = env.list("ENTRA_API_AUDIENCES", default=[])
# Portal API tokens: lifetime offered by default, and the longest one may ask for (days).
PORTAL_API_TOKEN_DEFAULT_DAYS = env.int("PORTAL_API_TOKEN_DEFAULT_DAYS", default=30)
PORTAL_API_TOKEN_MAX_DAYS = env.int("PORTAL_API_TOKEN_MAX_DAYS", default=365)
# Writes through the API per user and per token (DRF rates: "<n>/minute"; empty: no limit).
PORTAL_API_WRITE_RATE_PER_USER = env("PORTAL_API_WRITE_RATE_PER_USER", default="60/minute")
PORTAL_API_WRITE_RATE_PER_TOKEN = env("PORTAL_API_WRITE_RATE_PER_TOKEN", default="30/minute")
# The cache the rate limits (and the once-a-minute audit of refused tokens) share between
# processes: Redis when REDIS_URL is set, else files under var/ (the embedded default).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# OPERATIONS
# ------------------------------------------------------------------------------
# Prometheus scrapers present this as a bearer token; operators sign in instead.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Web and worker processes write their counters here so /metrics can add them up.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
# Each app that syncs an external system adds a callable returning its SyncStatus list.
PORTAL_SYNC_STATUS_PROVIDERS: list[str] = [
    "registry.selectors.sync_status_list",
    "pipelines.selectors.sync_status_list",
    "approvals.selectors.sync_status_list",
]
# Each app adds a callable f(user, held_roles) -> list[HomeCard] with its cards for the home
# page (core/home.py); the page orders them by role and by each card's ``order``.
PORTAL_HOME_CARD_PROVIDERS: list[str] = [
    "registry.sections.home_cards",
    "pipelines.sections.home_cards",
    "approvals.sections.home_cards",
    "maturity.sections.home_cards",
    "operations.sections.home_cards",
    "portal.selectors.home_sync_cards",
]
# A sync older than this is reported as stale by /readyz and the metrics.
PORTAL_SYNC_STALE_AFTER_SECONDS = env.int("PORTAL_SYNC_STALE_AFTER_SECONDS", default=3600)

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="text")  # "json" in production
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.request_context.RequestIdLogFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT if LOG_FORMAT in ("text", "json") else "text",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
        # django-axes logs every sign-in at INFO; failures and lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}

# REGISTRY MIRROR
# ------------------------------------------------------------------------------
# Registry tags that say a model's category; the catalog entry can override each.
REGISTRY_CATEGORY_TAGS = {
    "kind": env("REGISTRY_TAG_KIND", default="model_kind"),
    "serving": env("REGISTRY_TAG_SERVING", default="serving"),
    "team": env("REGISTRY_TAG_TEAM", default="team"),
}
# Link registered models in several registries to one catalog entry with this tag.
REGISTRY_CATALOG_NAME_TAG = env("REGISTRY_CATALOG_NAME_TAG", default="catalog_name")
# Metric directions for "better/worse" marks: names matched by prefix; the rest: higher is better.
REGISTRY_LOWER_IS_BETTER = env.list(
    "REGISTRY_LOWER_IS_BETTER",
    default=["loss", "rmse", "mse", "mae", "mape", "log_loss", "error", "latency", "brier"],
)
# The alias a model's headline version is read from (list, model page, home card) when neither
# the model nor its team names one; a model without that alias headlines its latest version.
REGISTRY_HEADLINE_ALIAS = env("REGISTRY_HEADLINE_ALIAS", default="champion").strip().lstrip("@")
# Seconds a webhook's X-MLflow-Timestamp may differ from now.
MLFLOW_WEBHOOK_TOLERANCE_SECONDS = env.int("MLFLOW_WEBHOOK_TOLERANCE_SECONDS", default=300)

# JFROG ARTIFACTORY (registry/artifactory_client.py; docs/artifactory.md): where each version's
# binary is, checked through the REST API. Unset ARTIFACTORY_URL: "not configured".
ARTIFACTORY_URL = env("ARTIFACTORY_URL", default="").rstrip("/")
ARTIFACTORY_TOKEN = env("ARTIFACTORY_TOKEN", default="")
ARTIFACTORY_USERNAME = env("ARTIFACTORY_USERNAME", default="")
ARTIFACTORY_PASSWORD = env("ARTIFACTORY_PASSWORD", default="")
# "true" (the system's CAs), "false" (no TLS check: never in production), or a CA bundle path.
_artifactory_verify = env("ARTIFACTORY_VERIFY", default="true").strip()
ARTIFACTORY_VERIFY: bool | str = {"true": True, "1": True, "yes": True, "": True}.get(
    _artifactory_verify.lower(),
    False if _artifactory_verify.lower() in ("false", "0", "no") else _artifactory_verify,
)
ARTIFACTORY_TIMEOUT_SECONDS = env.float("ARTIFACTORY_TIMEOUT_SECONDS", default=10.0)
ARTIFACTORY_RETRIES = env.int("ARTIFACTORY_RETRIES", default=2)
ARTIFACTORY_CHECK_INTERVAL_SECONDS = env.int("ARTIFACTORY_CHECK_INTERVAL_SECONDS", default=3600)
# The version tags (else the source run's tags) that name the binary: "repo/path", its sha256,
# and optionally a URL to link to.
ARTIFACTORY_PATH_TAG = env("ARTIFACTORY_PATH_TAG", default="artifactory.path")
ARTIFACTORY_SHA256_TAG = env("ARTIFACTORY_SHA256_TAG", default="artifactory.sha256")
ARTIFACTORY_URL_TAG = env("ARTIFACTORY_URL_TAG", default="artifactory.url")
# Which versions the periodic check looks at: f() -> list of ModelVersion pks each (the apps
# above the registry say which versions are in QA / PROD or waiting for approval).
REGISTRY_ARTIFACT_CHECK_SCOPE: list[str] = ["pipelines.artifact_scope.deployed_versions"]
REGISTRY_ARTIFACT_CHECK_SCOPE.append("approvals.artifact_scope.open_approval_versions")

# Sections and list columns the apps above the registry add to its pages (registry/sections.py);
# the registry never imports them. Empty: the registry pages show their placeholders.
REGISTRY_MODEL_PAGE_SECTIONS: list[str] = ["registry.card_sections.model_page"]
REGISTRY_MODEL_PAGE_SECTIONS.append("pipelines.sections.model_page")
REGISTRY_MODEL_PAGE_SECTIONS.append("approvals.sections.model_page")
REGISTRY_MODEL_PAGE_SECTIONS.append("operations.sections.model_page")
REGISTRY_MODEL_PAGE_SECTIONS.append("maturity.sections.model_page")
REGISTRY_MODEL_PAGE_BADGES: list[str] = ["maturity.sections.model_badges"]
REGISTRY_VERSION_PAGE_SECTIONS: list[str] = ["pipelines.sections.version_page"]
# Who approved each deployment of the history page (pipelines/selectors_history.py).
PIPELINES_DEPLOYMENT_ANNOTATORS: list[str] = ["approvals.sections.deployment_approvers"]
REGISTRY_VERSION_PAGE_SECTIONS.append("approvals.sections.version_page")
REGISTRY_CATALOG_LIST_ANNOTATORS: list[str] = ["pipelines.sections.catalog_deployments"]
REGISTRY_VERSION_LIST_ANNOTATORS: list[str] = ["pipelines.sections.version_deployments"]
REGISTRY_VERSION_LIST_ANNOTATORS.append("pipelines.artifact_scope.version_binary_flags")
REGISTRY_CATALOG_LIST_ANNOTATORS.append("maturity.sections.catalog_levels")
# Marks on the versions of the "Metric across versions" chart (e.g. served in PROD).
REGISTRY_VERSION_MARKERS: list[str] = ["pipelines.sections.version_markers"]

# APPROVALS
# ------------------------------------------------------------------------------
# Sections the apps above approvals add to an approval's evidence column: f(request, approval)
# -> Section | list[Section] | None (approvals/sections.py).
APPROVALS_DETAIL_SECTIONS: list[str] = [
    "operations.sections.approval_why",
    "approvals.sections.approval_checks",
    "approvals.evidence_sections.approval_rollback",
    "approvals.evidence_sections.approval_card",
]
APPROVALS_DETAIL_SECTIONS.append("approvals.artifact_scope.approval_binary")
# The public address of the portal, for links in e-mails and Teams messages.
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
# ADO does not say when an approval expires; its check's timeout does (ADO's default: 30 days).
APPROVALS_TIMEOUT_MINUTES = env.int("APPROVALS_TIMEOUT_MINUTES", default=43200)
# A project's first approvals sync imports what ADO decided in this many days (its history).
APPROVALS_HISTORY_DAYS = env.int("APPROVALS_HISTORY_DAYS", default=90)
APPROVALS_OVERDUE_HOURS = env.int("APPROVALS_OVERDUE_HOURS", default=24)
APPROVALS_EXPIRY_WARNING_HOURS = env.int("APPROVALS_EXPIRY_WARNING_HOURS", default=24)
# A PROD decision needs a sign-in at most this old.
APPROVALS_PROD_REAUTH_MINUTES = env.int("APPROVALS_PROD_REAUTH_MINUTES", default=15)
APPROVALS_COMMENT_MAX_LENGTH = 2000
# Deciding several at once (the inbox selection, POST /api/v1/approvals/bulk-decisions): at
# most this many requests in one go (more is refused with 400).
APPROVALS_BULK_MAX = env.int("APPROVALS_BULK_MAX", default=100)
# Delivery: a deliverer holds a message this long (a killed worker lets go when it ends);
# transient failures back off from BACKOFF up to BACKOFF_MAX (or ADO's Retry-After).
APPROVALS_DELIVERY_CLAIM_SECONDS = env.int("APPROVALS_DELIVERY_CLAIM_SECONDS", default=120)
APPROVALS_DELIVERY_BACKOFF_SECONDS = env.float("APPROVALS_DELIVERY_BACKOFF_SECONDS", default=2.0)
APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS = env.float(
    "APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS", default=300.0
)
# 0: the client never sleeps through a Retry-After inside a delivery; the outbox waits it out
# (with the message released), so no claim can expire under a sleeping worker.
APPROVALS_DELIVERY_CLIENT_RETRIES = env.int("APPROVALS_DELIVERY_CLIENT_RETRIES", default=0)
# People who signed in with Entra have their decisions sent with their own delegated ADO
# token; when it cannot be had, the decision waits for their sign-in, unless this is on: then
# the portal's own credentials send it (their name is in the comment; audited as a fallback).
APPROVALS_SERVICE_IDENTITY_FALLBACK = env.bool("APPROVALS_SERVICE_IDENTITY_FALLBACK", default=False)
# The sweep re-queues a message due for longer than this with no worker on it.
APPROVALS_OUTBOX_STUCK_SECONDS = env.int("APPROVALS_OUTBOX_STUCK_SECONDS", default=60)
# The automated ADO check (docs/approvals.md "The automated check"): the secret ADO sends
# (basic auth password or bearer token; unset: the endpoint answers 503); the Fernet key the
# job's AuthToken is stored under (unset: derived from SECRET_KEY); how long a worker holds a
# callback; how long an evaluation or a callback may wait before the sweep queues it again.
APPROVALS_CHECK_SECRET = env("APPROVALS_CHECK_SECRET", default="")
APPROVALS_CHECK_TOKEN_KEY = env("APPROVALS_CHECK_TOKEN_KEY", default="")
APPROVALS_CHECK_CLAIM_SECONDS = env.int("APPROVALS_CHECK_CLAIM_SECONDS", default=60)
APPROVALS_CHECK_STUCK_SECONDS = env.int("APPROVALS_CHECK_STUCK_SECONDS", default=30)
# Notifications: e-mail to the assigned approvers (or the approver group); Teams optional.
APPROVALS_NOTIFY = env.bool("APPROVALS_NOTIFY", default=True)
APPROVALS_TEAMS_WEBHOOK_URL = env("APPROVALS_TEAMS_WEBHOOK_URL", default="")
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="mlops-portal@localhost")
