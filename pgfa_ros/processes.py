"""Small helpers the DDS tests and benchmarks share: stop a node process, spin a listener.

No rclpy import at module level: the executor and context are passed in.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT (a node's clean shutdown), then SIGKILL of its process group after ``timeout`` s.

    Returns the exit code (-9 when it had to be killed). ``proc`` must have been started with
    ``start_new_session=True`` so that the group kill reaches its children too.
    """
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return -9


def spin_in_background(executor, context, timeout_sec: float = 0.05) -> threading.Thread:
    """Spin ``executor`` on a daemon thread until ``context`` shuts down (errors raised while it
    is being shut down under the thread end the loop quietly)."""
    def spin() -> None:
        try:
            while context.ok():
                executor.spin_once(timeout_sec=timeout_sec)
        except Exception:
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return thread
