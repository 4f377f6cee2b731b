"""Gunicorn settings for the portal's web service: `gunicorn portal.wsgi -c gunicorn.conf.py`.

Command-line options win over this file, e.g. `-b 127.0.0.1:8001` for a local run.
"""

import gc
import os

# Inside the container; docker-compose.yml decides what reaches it from outside.
bind = ["0.0.0.0:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Worker heartbeat files in memory rather than on the container's overlay filesystem,
# which can stall them; /dev/shm is private to the container.
SHARED_MEMORY = "/dev/shm"  # noqa: S108
if os.path.isdir(SHARED_MEMORY):
    worker_tmp_dir = SHARED_MEMORY

# Logs go to the container's stdout/stderr; the Django app logs through its own LOGGING.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Addresses of the TLS-terminating proxy allowed to set X-Forwarded-* headers for gunicorn.
# Django itself reads X-Forwarded-Proto through SECURE_PROXY_SSL_HEADER.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def post_worker_init(worker):
    """Move what the loaded app holds for good (Django, the URLconf, the templates) out of
    the cyclic collector's reach: a full collection then walks what a request allocated, not
    the whole app, which is what made the slow tail of big pages (docs/performance.md,
    "History page")."""
    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    """Tell prometheus_client's multiprocess mode that this worker's live gauges are gone.

    Web and worker containers write metrics files to the shared PROMETHEUS_MULTIPROC_DIR
    (see portal/metrics.py). The directory is not wiped on start: the Celery worker's files
    live there too.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return  # multiprocess mode is not switched on for this gunicorn
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
