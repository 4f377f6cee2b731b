# syntax=docker/dockerfile:1
# One image for the portal's web, worker, beat and migrate services (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PROMETHEUS_MULTIPROC_DIR=/var/run/portal-metrics

# A real home directory: gunicorn puts its control socket under $HOME/.gunicorn.
RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --create-home --home-dir /home/portal \
        --shell /usr/sbin/nologin portal

WORKDIR /app

# The runtime lock only (uv-generated, hash-pinned, complete): --no-deps because every
# dependency is already listed, --require-hashes so nothing unpinned slips in.
COPY requirements/base.txt requirements/base.txt
RUN pip install --require-hashes --no-deps -r requirements/base.txt

COPY . .

# Production settings refuse SQLite and missing secrets, so collectstatic gets dummy values
# that exist only for this build step (nothing connects to the database here).
RUN DJANGO_SETTINGS_MODULE=portal.settings.production \
    DJANGO_SECRET_KEY=build-time-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" /app/var \
    && chown portal:portal "$PROMETHEUS_MULTIPROC_DIR" /app/var

ENV DJANGO_SETTINGS_MODULE=portal.settings.production
USER portal:portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "-c", "gunicorn.conf.py"]
