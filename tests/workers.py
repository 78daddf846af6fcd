"""Real, long-running ``worker.py`` processes, as production runs them (not burst workers).

``worker_environment`` gives a worker the suite's settings as a deployment would; ``running_worker``
starts one with its output in a log file, hands it over once it is idle, and stops it on the way
out; ``wait_for`` polls a condition and fails with what it waited for and the tail of a log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import redis
from rq import Worker as RQWorker

from core.config import PROJECT_ROOT

T = TypeVar("T")
TAIL = 4000
START_SECONDS = 60
STOP_SECONDS = 30
# redis-py's default socket timeout: a worker blocked in RQ's dequeue for longer used to fail.
REDIS_SOCKET_TIMEOUT = 5
# How long the idle-then-work tests leave a worker waiting before they give it a job.
IDLE_SECONDS = REDIS_SOCKET_TIMEOUT + 3


def tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-TAIL:]
    except FileNotFoundError:
        return "(no log yet)"


def wait_for(condition: Callable[[], T], seconds: float, what: str, log: Path | None = None) -> T:
    """The first true value of ``condition()`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    message = f"waited {seconds} s for {what}"
    raise AssertionError(f"{message}; the end of {log.name}:\n{tail(log)}" if log else message)


def worker_environment(app, instance: Path | str | None = None, **extra: object) -> dict[str, str]:
    """The suite's app settings as a deployment gives them to ``worker.py``, and ``extra`` variables.

    ``instance``: a folder of its own, as on another machine; the keys for secrets at rest come
    with the rest, so that the worker reads what the suite's app wrote either way. ``VENTANILLA_``
    variables of the shell are left out: the worker sees the settings the suite's app has.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("VENTANILLA_")}
    env.update(
        {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "DATABASE_MIGRATION_URL": app.config["DATABASE_MIGRATION_URL"],
            "DATABASE_APP_ROLE": app.config["DATABASE_APP_ROLE"] or "",
            "REDIS_URL": app.config["REDIS_URL"],
            "VENTANILLA_QUEUE_PREFIX": app.config["QUEUE_PREFIX"],
            "VENTANILLA_INSTANCE": str(instance or app.config["INSTANCE_PATH"]),
            "SECRET_KEY": app.config["SECRET_KEY"],
            "VENTANILLA_SECRET_KEYS": ",".join(app.config["SECRET_KEYS"]),
            "VENTANILLA_EXTRA_PLUGINS": ",".join(app.config["EXTRA_PLUGINS"]),
            "VENTANILLA_PUBLIC_URL": app.config["PUBLIC_URL"],
            "VENTANILLA_ALLOW_TEST_EMAIL": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({name: str(value) for name, value in extra.items()})
    return env


@dataclass
class Worker:
    """A ``worker.py`` process started by ``running_worker``, and its log."""

    process: subprocess.Popen
    log: Path
    redis_url: str
    own_group: bool
    killed: bool = False

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def kill(self) -> None:
        """SIGKILL, as when its machine dies: with its work-horse when it has a process group of its own."""
        self.killed = True
        self._sigkill()
        self.process.wait(timeout=10)

    def _sigkill(self) -> None:
        if self.own_group:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None and not self.killed:
            raise AssertionError(f"worker.py exited with code {code}; the end of {self.log.name}:\n{tail(self.log)}")

    def wait_until_idle(self, seconds: float = START_SECONDS) -> None:
        """Until RQ records this process idle with its queues empty: blocked waiting for a job."""

        def idle() -> bool:
            self.check_alive()
            mine = [w for w in RQWorker.all(connection=connection) if w.pid == self.process.pid]
            # Between two jobs RQ records a worker idle for a moment; with work queued, that is not idle.
            return bool(mine) and mine[0].get_state() == "idle" and not any(queue.count for queue in mine[0].queues)

        with redis.Redis.from_url(self.redis_url) as connection:
            wait_for(idle, seconds, "worker.py to sit idle on its queues", self.log)

    def stop(self) -> None:
        """SIGTERM, RQ's warm shutdown (the job in hand is finished); SIGKILL if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._sigkill()
            self.process.wait()


@contextlib.contextmanager
def running_worker(
    env: dict[str, str],
    log: Path,
    *arguments: str,
    idle: bool = True,
    own_group: bool = False,
) -> Iterator[Worker]:
    """``python worker.py *arguments``, handed over once it is idle (``Worker.wait_until_idle``).

    ``idle=False`` hands it over as soon as it started: a worker that finds work waiting is never
    idle before it has done it all, and several can start at once before ``wait_until_idle``.
    ``own_group``: a process group of its own, so that ``kill`` reaches the work-horse too. The
    tail of the log is added to any failure inside the block, and a worker that exits before it
    is stopped is a failure.
    """
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "worker.py"), *arguments],
            cwd=str(PROJECT_ROOT),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
    worker = Worker(process, log, env["REDIS_URL"], own_group)
    try:
        if idle:
            worker.wait_until_idle()
        yield worker
        worker.check_alive()
    except Exception as error:
        if f"the end of {log.name}" not in str(error):
            error.add_note(f"the end of {log.name}:\n{tail(log)}")
        raise
    finally:
        worker.stop()
