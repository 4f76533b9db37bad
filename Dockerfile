FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=4

# redis-server only for the tests that stop a Redis of their own (docker compose run --rm web pytest).
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 sidus
WORKDIR /app
RUN chown sidus:sidus /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=sidus:sidus . .
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0

USER sidus
EXPOSE 8000
# uvicorn reads the number of worker processes from WEB_CONCURRENCY.
CMD ["uvicorn", "sidus.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers"]
