"""Celery worker entry point:  celery -A app.worker worker --loglevel INFO"""

from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
