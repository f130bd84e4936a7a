"""A supervised child's states (the names /api/system shows): one definition for every reader."""
import enum


class State(enum.Enum):
    STOPPED = "stopped"  # never started
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"  # ended by itself (downloader) or after stop()
    BACKOFF = "backoff"  # waiting to be restarted
    FATAL = "fatal"  # gave up restarting


ALIVE = (State.STARTING, State.RUNNING, State.STOPPING)  # a process exists
UP = (State.STARTING.value, State.RUNNING.value)  # alive and not being stopped
