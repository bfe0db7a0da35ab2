# One image for the web server (gunicorn), the Celery worker and Celery beat.
#   web:    docker run IMAGE                      (default command: gunicorn)
#   worker: docker run IMAGE celery -A reims worker -Q anomaly,default -l INFO
#   beat:   docker run IMAGE celery -A reims beat -l INFO
# Configure with DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY, DEBUG=false, ALLOWED_HOSTS.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime requirements only: tests, lint, selenium and schemathesis are in requirements-dev.txt.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# collectstatic needs settings that load without a database or broker; DEBUG=false needs a key.
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --create-home --uid 10001 reims \
    && mkdir -p /app/var \
    && chown -R reims:reims /app/var

USER reims
EXPOSE 8000
CMD ["gunicorn", "reims.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
