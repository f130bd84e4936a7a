"""The supervisor's state machine on a fake clock with fake processes."""
import signal

import pytest

from supervisor import BACKOFF_MAX, MAX_FAST_FAILURES, START_SECS, STOP_TIMEOUT, Child, State, Supervisor


class FakeProc:
    pid_seq = 1000

    def __init__(self):
        FakeProc.pid_seq += 1
        self.pid = FakeProc.pid_seq
        self.code = None
        self.signals = []
        self.stderr = None
        self.ignore_term = False

    def poll(self):
        return self.code

    def send_signal(self, sig):
        self.signals.append(sig)
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and not self.ignore_term):
            self.code = -sig if sig == signal.SIGKILL else 0


class World:
    def __init__(self):
        self.t = 0.0
        self.procs = []

    def clock(self):
        return self.t

    def popen(self, argv, **kw):
        p = FakeProc()
        self.procs.append(p)
        return p


@pytest.fixture
def world():
    return World()


def child(world, autorestart=True):
    return Child("collector", [], autorestart=autorestart, clock=world.clock, popen=world.popen)


def test_child_is_promoted_to_running_after_start_secs(world):
    c = child(world)
    c.spawn()
    assert c.state is State.STARTING
    world.t += START_SECS
    c.tick()
    assert c.state is State.RUNNING


def test_crash_after_a_long_run_restarts_after_one_second(world):
    c = child(world)
    c.spawn()
    world.t += 100
    c.tick()
    world.procs[-1].code = -9
    c.tick()
    assert c.state is State.BACKOFF and c.exit_code == -9
    world.t += 1.0
    c.tick()
    assert c.state is State.STARTING and c.restarts == 1 and len(world.procs) == 2


def test_fast_crashes_back_off_longer_each_time_then_go_fatal(world):
    c = child(world)
    c.spawn()
    delays = []
    for _ in range(MAX_FAST_FAILURES):
        world.t += 0.5
        world.procs[-1].code = 1
        c.tick()
        if c.state is State.FATAL:
            break
        delays.append(c.retry_at - world.t)
        world.t = c.retry_at
        c.tick()
    assert c.state is State.FATAL
    assert delays == sorted(delays) and delays[0] < delays[-1] <= BACKOFF_MAX
    assert c.snapshot()["state"] == "fatal"


def test_bad_config_exit_code_is_fatal_at_once(world):
    c = child(world)
    c.spawn()
    world.procs[-1].code = 2
    c.tick()
    assert c.state is State.FATAL and len(world.procs) == 1


def test_stop_escalates_to_sigkill_after_the_timeout(world):
    c = child(world, autorestart=False)
    c.spawn()
    world.procs[-1].ignore_term = True
    c.stop()
    assert c.state is State.STOPPING and world.procs[-1].signals == [signal.SIGTERM]
    world.t += STOP_TIMEOUT
    c.tick()
    assert world.procs[-1].signals[-1] == signal.SIGKILL
    c.tick()
    assert c.state is State.EXITED


def test_downloader_that_ends_is_not_restarted(world):
    c = child(world, autorestart=False)
    c.spawn()
    world.procs[-1].code = 0
    c.tick()
    world.t += 60
    c.tick()
    assert c.state is State.EXITED and len(world.procs) == 1


def test_control_moves_and_their_409_reasons(world):
    s = Supervisor("c.json", "d", clock=world.clock, popen=world.popen)
    assert s.control("pause") == (False, "no test is running, so there is nothing to pause")
    assert s.control("start") == (True, "running")
    assert s.control("start")[0] is False
    assert s.control("resume") == (False, "the test is not paused")
    assert s.control("pause") == (True, "paused")
    assert world.procs[-1].signals == [signal.SIGUSR1]
    assert s.control("pause")[0] is False
    assert s.control("resume") == (True, "running")
    assert world.procs[-1].signals[-1] == signal.SIGUSR2
    assert s.control("stop") == (True, "stopping")
    assert s.control("stop")[0] is False
    s.tick()
    assert s.downloader.state is State.EXITED
    assert s.control("start") == (True, "running")


def test_reload_sends_sighup_to_live_children(world):
    s = Supervisor("c.json", "d", clock=world.clock, popen=world.popen)
    s.start()
    s.reload()
    assert world.procs[0].signals == [signal.SIGHUP]
