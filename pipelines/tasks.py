"""Thin Celery tasks: primitive ids in, look the row up, call one service."""
