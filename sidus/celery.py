"""The Celery app: `celery -A sidus worker` finds it through `sidus.celery_app`."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sidus.settings")

app = Celery("sidus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
