"""The collector's process loop: signals, the parent's death, a tick every interval; flush on the way out."""
import gc
import logging
import signal
import time

from datacap import process

log = logging.getLogger("collector")


def run(c, interval_override, config_path, data_dir):
    """The process loop: signals, the parent's death, a tick every interval; flush on the way out."""
    signals = process.SignalQueue()
    heartbeat = process.Heartbeat(data_dir, "collector")
    interval = interval_override or c.cfg["update_interval_seconds"]
    c.start()
    gc.freeze()  # modules and what start() loaded live as long as we do: no full collection walks them each time
    log.info("counting %s every %gs into %s", ", ".join(c.counted) or "(no interface yet)", interval, data_dir)
    next_tick = time.monotonic() + interval
    while True:
        heartbeat.beat()
        sigs = signals.drain()
        if any(s in (signal.SIGTERM, signal.SIGINT) for s in sigs) or process.parent_gone():
            break
        if signal.SIGHUP in sigs:
            c.reload(process.reload_config(config_path, c.cfg, log))
            interval = interval_override or c.cfg["update_interval_seconds"]
        c.devices.poll(c.now())  # a pause or unpause asked for: within half a second, whatever the interval
        if time.monotonic() >= next_tick:
            c.tick()
            next_tick += interval
            if next_tick < time.monotonic():  # we fell behind (suspend): do not burst
                next_tick = time.monotonic() + interval
        time.sleep(max(0.0, min(0.5, next_tick - time.monotonic())))
    c.tick()
    c.routers.stop()
    c.flush(c.clock(), c.now())
    c.write_live(c.now(), c.summaries(c.now()), status="stopped")
    c.devices.stop(c.now(), c.ledger, c.summaries(c.now()))
    log.info("stopped; ledger flushed")
