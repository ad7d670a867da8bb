"""The local stack of this working tree: its services, their ports and wiring, their processes.

``make serve``/``make stop``/``make demo`` (scripts/stack.py), the tests and the benchmarks all
start services through this package, so a service's port, readiness check or shutdown is
known in one place.
"""

from devstack.catalog import (
    CALL_PATH,
    FORK_USER,
    ROOT,
    SERVICES,
    BenchStack,
    Ports,
    Service,
    bench_stack,
    caller_options,
    fork_url,
    stack_env,
)
from devstack.process import (
    StartError,
    answers,
    launch,
    running,
    start,
    start_all,
    stop,
    stop_all,
    stop_pid,
    wait_ready,
)

__all__ = [
    "CALL_PATH",
    "FORK_USER",
    "ROOT",
    "SERVICES",
    "BenchStack",
    "Ports",
    "Service",
    "StartError",
    "answers",
    "bench_stack",
    "caller_options",
    "fork_url",
    "launch",
    "running",
    "stack_env",
    "start",
    "start_all",
    "stop",
    "stop_all",
    "stop_pid",
    "wait_ready",
]
