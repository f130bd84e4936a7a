"""The supervisor's state machine on a fake clock with fake processes."""
import os
import signal
import threading

import pytest

from datacap.supervise.child import BACKOFF_MAX, HUNG_AFTER_S, MAX_FAST_FAILURES, START_SECS, STOP_TIMEOUT, Child, State
from datacap.supervise.supervisor import Supervisor


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
    assert s.control("start") == (True, "connecting")  # until its first bytes
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
    assert s.control("start") == (True, "connecting")


def test_snapshot_never_waits_for_the_lock_and_shows_each_action_at_once(world):
    s = Supervisor("c.json", "d", clock=world.clock, popen=world.popen)
    assert s.snapshot()["downloader"]["state"] == "stopped"
    s.control("start")
    assert s.snapshot()["downloader"]["state"] == "starting"  # published as the lock is let go
    with s.lock:  # a tick waiting on a child, say: the dashboards' polls go on
        got = []
        reader = threading.Thread(target=lambda: got.append(s.snapshot()))
        reader.start()
        reader.join(2)
        assert got and got[0]["downloader"]["pid"] == world.procs[-1].pid


def test_reload_sends_sighup_to_live_children(world):
    s = Supervisor("c.json", "d", clock=world.clock, popen=world.popen)
    s.start()
    s.reload()
    assert world.procs[0].signals == [signal.SIGHUP]


def test_a_spawn_that_fails_with_oserror_backs_off_and_shows_why(world):
    def refuse(argv, **kw):
        raise BlockingIOError(11, "Resource temporarily unavailable")
    c = Child("collector", [], autorestart=True, clock=world.clock, popen=refuse)
    assert c.spawn() is False
    assert c.state is State.BACKOFF and "Resource temporarily unavailable" in c.snapshot()["last_error"]
    c.popen = world.popen  # the system recovers: the retry after the back-off starts it
    world.t = c.retry_at
    c.tick()
    assert c.state is State.STARTING and len(world.procs) == 1


def test_start_whose_spawn_fails_answers_why_and_the_server_goes_on(world, tmp_path):
    s = Supervisor(tmp_path / "c.json", tmp_path, clock=world.clock, popen=world.popen)
    s.downloader.popen = lambda argv, **kw: (_ for _ in ()).throw(OSError(12, "Cannot allocate memory"))
    ok, why = s.control("start")
    assert ok is False and "Cannot allocate memory" in why


def test_a_child_whose_heartbeat_stops_is_killed_and_restarted_like_a_crash(world):
    beat = {"v": 1}
    c = Child("collector", [], autorestart=True, clock=world.clock, popen=world.popen, heartbeat=lambda: beat["v"])
    c.spawn()
    for _ in range(10):  # alive: the heartbeat moves every few seconds
        world.t += 3
        beat["v"] += 1
        c.tick()
    assert c.state is State.RUNNING and world.procs[-1].signals == []
    world.t += HUNG_AFTER_S - 1  # SIGSTOP: the process exists, the heartbeat stands still
    c.tick()
    assert world.procs[-1].signals == []
    world.t += 1
    c.tick()
    assert world.procs[-1].signals == [signal.SIGKILL]
    c.tick()  # reaped: a crash after a long run restarts after one second
    assert c.state is State.BACKOFF and "no heartbeat" in c.snapshot()["last_error"]
    world.t += 1
    c.tick()
    assert c.state is State.STARTING and len(world.procs) == 2


def test_nothing_starts_once_shutdown_has_begun(world, tmp_path):
    s = Supervisor(tmp_path / "c.json", tmp_path, clock=world.clock, popen=world.popen)
    s.start()
    s.closing = True
    assert s.control("start") == (False, "datacap is shutting down")
    assert len(world.procs) == 1  # only the collector


def test_start_names_a_hand_run_downloader_holding_the_folder(world, tmp_path):
    from datacap.store import InstanceLock
    other = InstanceLock(tmp_path, "downloader")
    assert other.acquire()
    try:
        s = Supervisor(tmp_path / "c.json", tmp_path, clock=world.clock, popen=world.popen)
        ok, why = s.control("start")
        assert ok is False and f"(pid {os.getpid()})" in why and world.procs == []
    finally:
        other.release()


def test_a_fatal_collector_is_started_again_when_the_config_is_fixed(world, tmp_path):
    s = Supervisor(tmp_path / "c.json", tmp_path, clock=world.clock, popen=world.popen)
    s.start()
    world.procs[-1].code = 2  # bad config
    s.tick()
    assert s.collector.state is State.FATAL
    s.reload()  # the user saved a good config (PUT /api/config, or SIGHUP to the server)
    assert s.collector.state is State.STARTING and len(world.procs) == 2
