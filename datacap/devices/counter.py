"""The collector's device work each tick: read the counters, credit devices, pause who is over budget, write the
live file; flush the history with the ledger; apply pause requests as they come.

The collector drives it (it is root on a gateway and already the one writer of counts); devices.db and
devices.json have no other writer. Kernel and UniFi counters go through counts.Counts, names and addresses
through addresses.AddressBook, pauses through budgets.PauseRules (durable in devices.db first, then the kernel).
"""
import json
import logging
import sqlite3

from datacap import store
from datacap.devices import budgets, counts, device_db, live, nft_table, requests
from datacap.devices.addresses import AddressBook
from datacap.devices.leases import Leases

log = logging.getLogger("collector")

EVENTS_SHOWN = 20
LIVE_S = 2.0  # devices.json at most this often (and at once when a pause changes): 250 devices are 120 KB of JSON
FLUSH_S = 300.0  # devices.db to disk this often (and on a new day, and on exit): see flush()
OTHER = ""  # the line of traffic that left by no counted line's interface (a tunnel, a container)


class DeviceCounter:
    def __init__(self, settings, data_dir, live_dir, clock, boot_id, kernel=None, unifi=None, interval=1.0):
        self.settings, self.clock, self.boot_id, self.interval = settings, clock, boot_id, interval
        self.kernel = kernel if kernel is not None else (nft_table.Kernel() if settings.lan else None)
        self.unifi = unifi
        self.data_dir, self.live_path = data_dir, live_dir / live.NAME
        self.db = device_db.DeviceDb(device_db.path(data_dir))
        self.requests = store.CachedReader(data_dir / requests.NAME)
        self.error = None
        self.events, self.usage, self.rates = [], {}, {}
        self._wan_lines, self._first_line, self._summaries, self._line_bytes = {}, None, {}, {}
        self._kernel_paused = None  # what the kernel's pause sets hold, as we last set them
        self._day = None
        self._read_t = None
        self._flushed_at = self._flushed_day = None
        self._live_at = None
        self._unnamed = set()  # addresses counted that no lease or neighbour names yet
        self._identity = None
        self._owners = {}  # kernel element -> its owner (see _owner)

    # -- start, stop -------------------------------------------------------------------------------

    def start(self, when, summaries, wan_lines, line_bytes):
        since = min(s["start"] for s in summaries.values())
        meta, checkpoint, days, known, remembered = self.db.load(min(since, when.date().isoformat()))
        self.counts = counts.Counts(checkpoint, days, json.loads(meta.get("identities") or "{}"))
        self.known = known  # mac -> {name, first_seen, last_seen, source} (as the database had them)
        self.seen = {}  # mac -> the same, to write at the next flush
        self._written = {m: (d.get("name"), d.get("source"), (d.get("last_seen") or "")[:13]) for m, d in known.items()}
        self.book = AddressBook(remembered, Leases(self.settings.leases),
                                self.kernel.neighbours if self.kernel else dict, self.clock)
        paused, allowed = self.db.pauses()
        self.rules = budgets.PauseRules(self.settings.budgets, paused, allowed)
        self.done = self.db.requests_done()
        self.events = self.db.events(EVENTS_SHOWN)
        if self.kernel:
            self._install()
        self.tick(when, summaries, wan_lines, line_bytes)

    def reload(self, settings):
        lan_changed = settings.lan != self.settings.lan
        self.settings = settings
        self.rules.budgets = budgets.PauseRules(settings.budgets, {}, {}).budgets
        self.book.leases = Leases(settings.leases)
        if self.kernel and lan_changed:
            self._install()

    def close(self):
        self.db.close()

    def _install(self):
        """Our table with the LAN's rules, and who is paused (after a restart, a reboot, a firewall reload)."""
        try:
            self.kernel.install(self.settings.lan)
            self._kernel_paused = None
            self._set_kernel_pauses()
            self.error = None
        except nft_table.NftError as exc:
            self.error = f"cannot set up datacap's nftables table: {exc} (counting devices needs root on the gateway)"
            log.error(self.error)

    # -- each tick -----------------------------------------------------------------------------------

    def tick(self, when, summaries, wan_lines, line_bytes):
        """Count, credit, pause, write the live file. summaries: each line's cycle figure; wan_lines: {interface:
        line} of the lines counted on this machine; line_bytes: {line: its counter's bytes this cycle}."""
        today = when.date().isoformat()
        if wan_lines != self._wan_lines or len(self._owners) > 100_000:
            self._owners = {}
        self._summaries, self._wan_lines, self._first_line = summaries, wan_lines, next(iter(summaries))
        self._line_bytes = line_bytes
        starts = {name: s["start"] for name, s in summaries.items()}
        self.counts.set_periods(today, {**starts, OTHER: starts[self._first_line]})
        t = self.clock()
        credited = {}
        if self.kernel:
            credited.update(self._read_kernel(today, when))
        if self.unifi:
            for key, (rx, tx) in self._read_unifi(today, when).items():
                got = credited.setdefault(key, [0, 0])
                got[0], got[1] = got[0] + rx, got[1] + tx
        elapsed = t - self._read_t if self._read_t is not None else None
        self._read_t = t
        self.rates = {}
        for (mac, _), (rx, tx) in credited.items():
            if elapsed:
                r = self.rates.setdefault(mac, [0, 0])
                r[0], r[1] = r[0] + rx * 8 / elapsed, r[1] + tx * 8 / elapsed
        live_due = self._live_at is None or t - self._live_at >= LIVE_S - 0.05
        watched = set(self.rules.budgets) | set(self.rules.paused)
        self.usage = self._usage(summaries, None if live_due else watched)
        changes = self.rules.due(when, self.usage, self.names()) if watched else []
        for change in changes:
            self._apply(change, when)
        if self.book.changed and self.rules.paused:
            self._set_kernel_pauses()  # a paused device showed up at a new address
        if today != self._day:
            if self._day is not None:
                self.db.prune(today)
            self._day = today
        if live_due or changes:
            if not live_due:
                self.usage = self._usage(summaries)
            self.write_live(when, line_bytes)

    def _read_kernel(self, today, when):
        try:
            readings, handle = self.kernel.read()
            if handle is None:  # our table is gone (a firewall reload flushed the ruleset): make it again
                log.warning("datacap's nftables table was gone: made again; traffic in between was not counted per device")
                self._install()
                readings, handle = self.kernel.read()
        except (OSError, nft_table.NftError) as exc:
            why = "it needs root (CAP_NET_ADMIN) on the gateway" if isinstance(exc, PermissionError) else exc
            error = f"cannot read the device counters: {why}"
            if error != self.error:
                log.error(error)
            self.error = error
            return {}
        if handle is None:
            return {}
        address_of = self.kernel.address_of  # new counters' addresses, and those nobody could name yet
        unknown = {address_of.get(e) for e in readings.keys() - self.counts.checkpoint.keys()} | self._unnamed
        unknown -= self.book.of.keys() | {None}
        self._unnamed = unknown
        if self.book.resolve(unknown):
            self._owners = {}  # an address moved (or became known): who owns which counter again
        if self._identity is None:  # the boot and network namespace do not change while we run
            self._identity = [self.boot_id(), self.kernel.netns()]
        identity = self._identity + [handle]
        credited = self.counts.read("kernel", readings, identity, self._owner, today)
        stamp, lease_names = when.isoformat(timespec="seconds"), self.book.leases.names
        for mac, _ in credited:
            self._seen(mac, stamp, "gateway", lease_names.get(mac))  # the name kept after the lease is gone
        return credited

    def _read_unifi(self, today, when):
        snapshot = self.unifi.take()
        if snapshot is None:
            return {}
        mine = {m for m, d in self.known.items() if d.get("source") == "gateway"}  # counted exactly, by the gateway

        def owner(element):
            _, direction, mac = element.split(" ")
            return None if mac in mine else ((mac, self._first_line), direction == "tx")
        credited = self.counts.read("unifi", snapshot.readings, snapshot.identity, owner, today,
                                    restarted=snapshot.restarted, keep_missing=True, baseline=True)
        self.book._merge({a: m for a, m in snapshot.addresses.items() if m not in mine})
        stamp = when.isoformat(timespec="seconds")
        for mac, _ in credited:
            self._seen(mac, stamp, "unifi", snapshot.names.get(mac))
        return credited

    def _owner(self, element):
        """((mac, line), 0 for rx or 1 for tx) of a kernel counter: "up4 10.0.0.5 wan", "own_in wan"; remembered
        until an address moves or the lines' interfaces change."""
        found = self._owners.get(element)
        if found is None:
            parts = element.split(" ")
            ifname = parts[-1]
            line = self._wan_lines.get(ifname)
            if line is None:
                line = OTHER if self._wan_lines else self._first_line  # no line counted here: the (first) line
            if parts[0] in nft_table.OWN_SETS:
                found = ((live.GATEWAY, line), nft_table.OWN_SETS[parts[0]] == "tx")
            else:
                found = ((self.book.mac(parts[1]), line), nft_table.DEVICE_SETS[parts[0]][1] == "tx")
            self._owners[element] = found
        return found

    def _seen(self, mac, stamp, source, name=None):
        """A device counted now: its row is written again when its name or source changes, or once an hour (the
        hour is all `last_seen` keeps on disk: rewriting 250 rows every flush was a third of its pages)."""
        entry = self.known.get(mac)
        if entry is None:
            entry = self.known[mac] = {}
        entry["last_seen"], entry["source"] = stamp, source
        if name:
            entry["name"] = name
        mark = (entry.get("name"), source, stamp[:13])
        if self._written.get(mac) != mark:
            self._written[mac] = mark
            self.seen[mac] = dict(entry)

    def names(self):
        """{mac: name}: the user's names, then UniFi's, then the leases', then the names remembered."""
        lease_names = self.book.leases.names
        out = {mac: d.get("name") for mac, d in self.known.items() if d.get("name")}
        out.update(lease_names)
        out.update(self.settings.names)
        return out

    def _usage(self, summaries, only=None):
        """{mac: {today_bytes, cycle_bytes, rx, tx, lines, line, cycle}} of every device with bytes this cycle (or of
        the devices `only` names: those with a budget or a pause, every tick, while the others wait for the live
        file's turn)."""
        out = {}
        cycle = self.counts.cycle.items() if only is None else \
            [(k, self.counts.cycle[k]) for k in ((m, x) for m in only for x in (*summaries, OTHER)) if k in self.counts.cycle]
        today = self.counts.today.items() if only is None else \
            [(k, self.counts.today[k]) for k in ((m, x) for m in only for x in (*summaries, OTHER)) if k in self.counts.today]
        for (mac, line), (rx, tx) in cycle:
            u = out.setdefault(mac, {"today_bytes": 0, "cycle_bytes": 0, "rx": 0, "tx": 0, "lines": {}})
            u["cycle_bytes"] += rx + tx
            u["rx"], u["tx"] = u["rx"] + rx, u["tx"] + tx
            u["lines"][line] = u["lines"].get(line, 0) + rx + tx
        for (mac, line), (rx, tx) in today:
            out.setdefault(mac, {"today_bytes": 0, "cycle_bytes": 0, "rx": 0, "tx": 0, "lines": {}})["today_bytes"] += rx + tx
        for mac in set(self.rules.budgets) | set(self.rules.paused):  # a budget or pause with no bytes yet
            out.setdefault(mac, {"today_bytes": 0, "cycle_bytes": 0, "rx": 0, "tx": 0, "lines": {}})
        for u in out.values():
            counted = {k: v for k, v in u["lines"].items() if k in summaries}
            u["line"] = max(counted, key=counted.get) if counted else self._first_line
            u["cycle"] = summaries[u["line"]]
        return out

    # -- pauses --------------------------------------------------------------------------------------

    def _apply(self, change, when, request=None):
        """On disk first (a restart reinstalls it), then in the kernel, then news."""
        self.db.set_pause(change.mac, change.pause, change.allowed, request, change.event)
        if self.kernel:
            self._set_kernel_pauses()
        name = self.names().get(change.mac) or change.mac
        log.warning("device %s (%s) %s: %s", name, change.mac, "paused" if change.pause else "let through", change.why)
        if change.event:
            self.events = [{**change.event, "name": name}] + self.events[:EVENTS_SHOWN - 1]

    def _set_kernel_pauses(self):
        macs = {m for m in self.rules.paused if not m.startswith("?") and m != live.GATEWAY}
        addrs = [a for m in self.rules.paused for a in self.book.of_mac(m)]
        wanted = (sorted(macs), sorted(a for a in addrs if ":" not in a), sorted(a for a in addrs if ":" in a))
        if wanted == self._kernel_paused:
            return
        try:
            self.kernel.pause(*wanted)
            self._kernel_paused = wanted
        except nft_table.NftError as exc:
            self.error = f"cannot apply pauses: {exc}"
            log.error(self.error)

    def apply_requests(self, when):
        """Pause/unpause requests the server appended; each applied once (its id recorded with the pause); the
        live file shows it at once."""
        applied = False
        for item in requests.items(self.requests.read()):
            rid = item.get("id")
            if not isinstance(rid, str) or rid in self.done:
                continue
            self.done.add(rid)
            if item.get("action") not in ("pause", "unpause") or item.get("until") not in budgets.UNTIL:
                self.db.mark_request(rid, when.isoformat(timespec="seconds"))
                continue
            first = self._summaries[self._first_line]  # a device with no bytes yet: its line is the first
            usage = {**self.usage, item["mac"]: self.usage.get(item["mac"]) or
                     {"today_bytes": 0, "cycle_bytes": 0, "cycle": first}}
            change = self.rules.request(item["mac"], item["action"], item.get("until"), when, usage)
            self._apply(change, when, request=(rid, when.isoformat(timespec="seconds")))
            applied = True
        if applied:
            self.usage = self._usage(self._summaries)
            self.write_live(when, self._line_bytes)

    # -- flush, live file ----------------------------------------------------------------------------

    def flush(self, when, force=False):
        """Day totals and the checkpoint of the counters they came from, in one transaction.

        Every FLUSH_S, not every minute as the ledger: the kernel's counters outlive datacap, so a restart without
        a reboot (a kill -9 included) credits exactly what they gained since the flush on disk, however old it is;
        only a power cut loses the devices' share of its last minutes (the line's ledger still has the bytes, they
        show as unattributed). A flush dirties ~10 pages; every minute that was 40 KB/min on an SD card."""
        t = self.clock()
        if not force and self._flushed_at is not None and t - self._flushed_at < FLUSH_S \
                and when.date() == self._flushed_day:
            return
        self._flushed_at, self._flushed_day = t, when.date()
        taken = self.counts.taken()
        seen, book = self.seen, self.book.taken()
        stamp = when.isoformat(timespec="seconds")
        try:
            self.db.flush(taken[0], taken[1], taken[2], seen, {a: (m, stamp) for a, m in book.items()},
                          {"identities": json.dumps(self.counts.identities), "flushed_at": stamp})
            self.counts.flushed_ok(taken)
        except sqlite3.Error as exc:
            self.seen = {**seen, **self.seen}
            self.book.changed = {**book, **self.book.changed}
            self.error = f"cannot write {device_db.NAME}: {exc}"
            log.error(self.error)
            return
        self.seen = {}
        self.counts.evict(min(s["start"] for s in self._summaries.values()) if self._summaries else stamp[:10])

    def write_live(self, when, line_bytes, status="running"):
        self._live_at = self.clock()
        names = self.names()
        doc = live.document(self, when, line_bytes, names, status)
        try:
            try:
                store.write_json_atomic(self.live_path, doc, fsync=False)
            except FileNotFoundError:
                self.live_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                store.write_json_atomic(self.live_path, doc, fsync=False)
        except OSError as exc:
            log.error("cannot write %s: %s", self.live_path, exc)
