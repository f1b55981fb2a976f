"""stop_process and spin_in_background: the shared DDS test/benchmark helpers."""
import subprocess
import sys
import time

from pgfa_ros.processes import spin_in_background, stop_process


def test_stop_process_interrupts_then_kills():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    time.sleep(0.3)
    assert stop_process(polite, 5.0) != 0 and polite.poll() is not None  # KeyboardInterrupt exit
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(30)"],
                                start_new_session=True)
    time.sleep(0.3)
    assert stop_process(stubborn, 0.5) == -9
    assert stop_process(stubborn) == stubborn.returncode  # already stopped: its code


def test_spin_in_background_runs_until_the_context_stops():
    class Ctx:
        live = 3

        def ok(self):
            self.live -= 1
            return self.live > 0

    calls = []

    class Ex:
        def spin_once(self, timeout_sec):
            calls.append(timeout_sec)

    t = spin_in_background(Ex(), Ctx(), 0.02)
    t.join(2)
    assert not t.is_alive() and calls == [0.02, 0.02]
