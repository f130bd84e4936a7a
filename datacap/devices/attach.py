"""The collector's handle on device counting: on or off as the config says, and never in the way of the line's count.

A failure in device counting (a bug, the kernel refusing) is logged and shown in devices.json; the ledger goes on.
Turning `devices` off removes datacap's nftables table (its pauses end with it); stopping datacap leaves it, so
counting and pauses hold while datacap restarts.
"""
import logging

from datacap.devices import nft_table
from datacap.devices import settings as devices_settings

log = logging.getLogger("collector")


def line_bytes(ledger, summaries):
    """{line: bytes its counter counted this cycle, both directions, free hours included}."""
    out = {}
    for name, s in summaries.items():
        tables = ledger.line(name)
        out[name] = sum(rx + tx for table in (tables["days"], tables["free"]) for day, entry in table.items()
                        if day >= s["start"] for rx, tx in entry.values())
    return out


class Devices:
    def __init__(self, cfg, data_dir, live_dir, clock, boot_id, kernel=None, unifi_factory=None):
        self.data_dir, self.live_dir, self.clock, self.boot_id = data_dir, live_dir, clock, boot_id
        self.kernel, self.unifi_factory = kernel, unifi_factory
        self.settings = devices_settings.of(cfg)
        self.interval = cfg["update_interval_seconds"]
        self.counter = None
        self._started = False

    def _make(self):
        unifi = None
        if self.settings.unifi:
            from datacap.devices import unifi as unifimod
            unifi = (self.unifi_factory or unifimod.Poller)(self.settings.unifi).start()
        from datacap.devices.counter import DeviceCounter  # SQLite and netlink: only when devices are counted
        return DeviceCounter(self.settings, self.data_dir, self.live_dir, self.clock, self.boot_id,
                             kernel=self.kernel, unifi=unifi, interval=self.interval)

    def _guarded(self, what, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # device counting must never stop the line's count
            log.exception("device counting: %s failed", what)
            if self.counter is not None:
                self.counter.error = f"device counting failed ({what}): {exc}"
            return None

    def start(self, when, summaries, wan_lines, ledger):
        if self.settings is None:
            return
        self.counter = self._guarded("start", self._make)
        if self.counter is not None:
            self._started = True  # a start that failed half-way is retried by nothing: its error is shown
            self._guarded("start", self.counter.start, when, summaries, wan_lines, line_bytes(ledger, summaries))

    def tick(self, when, summaries, wan_lines, ledger):
        if self.counter is not None and self._started:
            self._guarded("tick", self.counter.tick, when, summaries, wan_lines, line_bytes(ledger, summaries))

    def poll(self, when):
        if self.counter is not None and self._started:
            self._guarded("a pause request", self.counter.apply_requests, when)

    def flush(self, when, force=False):
        if self.counter is not None and self._started:
            self._guarded("flush", self.counter.flush, when, force)

    def reload(self, cfg, when, summaries, wan_lines, ledger):
        wanted = devices_settings.of(cfg)
        self.interval = cfg["update_interval_seconds"]
        if wanted == self.settings:
            return
        was, self.settings = self.settings, wanted
        if wanted is not None and was is not None and self.counter is not None and wanted.unifi == was.unifi \
                and bool(wanted.lan) == bool(was.lan):
            self._guarded("reload", self.counter.reload, wanted)
            return
        self.stop(when, ledger, summaries, remove=wanted is None or not wanted.lan)
        if wanted is not None:
            self.start(when, summaries, wan_lines, ledger)

    def stop(self, when, ledger, summaries, remove=False):
        """Flush and say stopped; with remove (device counting turned off), our nftables table goes too."""
        if self.counter is None:
            return
        self.flush(when, force=True)
        self._guarded("stop", self.counter.write_live, when, line_bytes(ledger, summaries), "stopped")
        if self.counter.unifi:
            self.counter.unifi.stop()
        self.counter.close()
        if remove and self.counter.kernel is not None:
            try:
                self.counter.kernel.remove()
                log.info("device counting is off: datacap's nftables table removed")
            except nft_table.NftError as exc:
                log.error("cannot remove datacap's nftables table: %s", exc)
        self.counter, self._started = None, False
