from celery import shared_task

from core.request_context import get_request_id


@shared_task(name="portal.ping")
def ping() -> dict:
    """Answer from a worker, echoing the request id it runs under (a liveness probe)."""
    import socket

    return {"pong": True, "request_id": get_request_id(), "hostname": socket.gethostname()}
