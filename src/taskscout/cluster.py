"""Running many independent jobs on a Ray cluster (source fine-tunes, transfer runs).

The same command scales from this machine to a multi-node cluster: without an address Ray starts a
local runtime with this machine's cores; with ``--ray ADDRESS`` (or ``auto`` for the cluster this node
belongs to, or ``ray://HOST:10001`` for Ray Client) jobs go to that cluster. Each job is a Ray task with
explicit resources (CPUs, GPUs) and retries for lost workers; results come back to the driver, which
alone writes them (SQLite, pool), so the single-writer and atomic-write guarantees of the local engine
hold unchanged and an interrupted driver resumes from what it wrote.

Ray is an optional dependency (``pip install 'taskscout[ray]'``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from taskscout.errors import TaskscoutError


@dataclass(frozen=True)
class RayOptions:
    """Where and how jobs run on Ray.

    ``address``: None or ``"local"`` starts a local runtime; ``"auto"`` joins the running cluster this
    node belongs to; ``"ray://host:10001"`` connects with Ray Client. ``cpus_per_task`` /
    ``gpus_per_task``: resources each job reserves (one fine-tuning per CPU core is what the local
    engine does too). ``max_retries``: re-runs of a job whose worker or node died (a job that raises
    is not retried: it would fail again). ``local_cpus``: cores of a local runtime (default: all).
    """

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 2
    local_cpus: int | None = None

    def task_options(self) -> dict[str, Any]:
        return {
            "num_cpus": self.cpus_per_task,
            "num_gpus": self.gpus_per_task,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
        }


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise TaskscoutError("--ray needs Ray: pip install 'taskscout[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Ray, initialised for ``options`` (and shut down after, if this call started it)."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        local = options.address in (None, "", "local")
        # Workers inherit the driver's environment on this node (TASKSCOUT_HOME, HF_HUB_OFFLINE, thread
        # caps); on other nodes they use theirs.
        env = {k: v for k, v in os.environ.items() if k.startswith(("TASKSCOUT_", "HF_", "OMP_"))}
        try:
            ray.init(
                address=None if local else options.address,
                num_cpus=options.local_cpus if local else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": env} if env else None,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TaskscoutError(f"cannot connect to Ray at {options.address!r}: {first}") from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def completed(ray: Any, refs: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """``(key, result)`` for each job in ``refs`` (ref -> key) as it finishes, in completion order.

    A job that raised a :class:`TaskscoutError` re-raises it here unchanged (one clear line, as
    in-process); any other failure of a job, or a job lost after its retries, becomes one
    :class:`TaskscoutError` naming it. The jobs still pending are cancelled.
    """
    pending = dict(refs)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        key = pending.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            for ref in pending:
                ray.cancel(ref)
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, TaskscoutError):
                raise cause from None
            text = str(cause).strip().splitlines()
            first = next((line for line in reversed(text) if line.strip()), type(cause).__name__)
            raise TaskscoutError(f"Ray job {key} failed: {type(cause).__name__}: {first.strip()}") from None
        yield key, result
