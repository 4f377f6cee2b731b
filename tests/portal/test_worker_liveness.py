"""The worker's heartbeat file and the liveness probe that reads it: a real worker writes it,
keeps it fresh and removes it at shutdown; the probe says 0 only for a fresh file whose
pid runs, and why not otherwise."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings

from portal.worker_heartbeat import write_heartbeat
from portal.worker_liveness import check, main
from tests.approvals.faults import Worker, celery_app_on, wait_until


def _probe(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal.worker_liveness"],
        env={**os.environ, "CELERY_WORKER_HEARTBEAT_FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=settings.BASE_DIR,
    )


def test_no_file_is_not_alive(tmp_path, capsys):
    assert main(["--file", str(tmp_path / "missing")]) == 1
    assert "no worker heartbeat" in capsys.readouterr().err


def test_a_fresh_file_of_a_running_process_is_alive(tmp_path):
    path = tmp_path / "hb"
    write_heartbeat(path)  # this test process's pid
    assert check(path) is None
    result = _probe(path)
    assert result.returncode == 0, result.stderr
    assert "worker alive" in result.stdout


def test_a_stale_file_is_not_alive(tmp_path):
    path = tmp_path / "hb"
    write_heartbeat(path)
    old = time.time() - 120
    os.utime(path, (old, old))
    result = _probe(path)
    assert result.returncode == 1
    assert "s old (more than 60 s)" in result.stderr
    assert main(["--file", str(path), "--max-age", "300"]) == 0


def test_a_file_whose_worker_is_gone_is_not_alive(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "hb"
    write_heartbeat(path, pid=gone.pid)
    assert f"(pid {gone.pid})" in check(path)
    path.write_text("garbage\n")
    assert "holds no pid" in check(path)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_beats_while_it_runs_and_removes_the_file_at_shutdown(tmp_path):
    queue = f"liveness-{uuid.uuid4().hex[:10]}"
    worker = Worker(
        broker_url=settings.CELERY_BROKER_URL,
        queue=queue,
        log_dir=tmp_path,
        env={"CELERY_WORKER_HEARTBEAT_SECONDS": 0.5},
    ).start()
    try:
        with celery_app_on(settings.CELERY_BROKER_URL, queue):
            worker.wait_ready()
        path = worker.heartbeat_path
        assert path.read_text().strip() == str(worker.pid)
        assert _probe(path).returncode == 0
        first = path.stat().st_mtime
        wait_until(lambda: path.stat().st_mtime > first, 10, "a second heartbeat")

        worker.process.send_signal(signal.SIGTERM)  # a warm shutdown, as `docker stop` does
        worker.process.wait(timeout=30)
        assert not path.exists(), worker.log()
        result = _probe(path)
        assert result.returncode == 1
        assert "no worker heartbeat" in result.stderr
    finally:
        worker.stop()
