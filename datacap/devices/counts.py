"""Device bytes per day and line from counters read again and again, and the checkpoint they correspond to.

Pure: no files, no clock. Each counter ("element": "up4 10.0.0.5 wan", "own_in wan", "unifi rx aa:bb:...") only
grows while the counters it belongs to live; a group's `identity` names them (for the kernel's: boot, network
namespace, table handle; for UniFi's: the controller and site). A reading below the last is a counter that
started again (an element that expired and came back, a UniFi client's new session): all of it is new. A new
identity (a reboot, our table made again) voids every earlier reading of its group. The caller flushes `days`
and the checkpoint together (device_db.py), so a restart credits exactly what the counters gained since.
"""


class Counts:
    def __init__(self, checkpoint=None, days=None, identities=None):
        self.checkpoint = dict(checkpoint or {})  # element -> value at the last reading
        self.flushed = dict(self.checkpoint)  # element -> value as devices.db holds it
        self.days = dict(days or {})  # (ISO day, mac, line) -> [rx, tx]
        self.identities = dict(identities or {})  # group -> identity of the counters its readings came from
        self.dirty = set()  # day keys changed since the last flush
        self._groups = {}  # group -> its elements in the checkpoint
        self._starts, self._today = {}, None
        self.cycle, self.today = {}, {}  # (mac, line) -> [rx, tx] this cycle of the line, today

    def read(self, group, readings, identity, owner, day, restarted=(), keep_missing=False, baseline=False):
        """Credit the change since the last reading of each element of a group (its name's first word: "kernel"
        for the nftables sets, "unifi") to its (mac, line, direction) = owner(element) on `day` (None: counted
        by no one); returns {(mac, line): [rx, tx]} credited now. restarted: elements known to have started again
        from zero; keep_missing: an element missing from the readings keeps its last reading (a UniFi client
        that left may come back with its counters where they were); baseline: the first readings of a new identity
        are where counting starts, not bytes to credit (a controller's counters hold what came before us)."""
        cp = self.checkpoint
        members = self._groups.get(group)
        if members is None:
            members = self._groups[group] = {e for e in cp if group_of(e) == group}
        if identity != self.identities.get(group):
            for element in members:
                del cp[element]
            members.clear()
            self.identities[group] = identity
            if baseline:
                cp.update(readings)
                members.update(readings)
                return {}
        credited = {}
        for element, value in readings.items():
            old = cp.get(element)
            if value == old:
                continue
            cp[element] = value
            if old is None:
                members.add(element)
                delta = value
            else:
                delta = value if value < old or element in restarted else value - old
            who = owner(element) if delta else None
            if who is not None:
                got = credited.get(who[0])
                if got is None:
                    got = credited[who[0]] = [0, 0]
                got[who[1]] += delta
        if not keep_missing and len(members) != len(readings):
            for element in members - readings.keys():
                del cp[element]  # expired in the kernel: a new one starts from zero
                members.discard(element)
        for (mac, line), (rx, tx) in credited.items():
            self.credit(day, mac, line, rx, tx)
        return credited

    def credit(self, day, mac, line, rx, tx):
        key = (day, mac, line)
        entry = self.days.setdefault(key, [0, 0])
        entry[0] += rx
        entry[1] += tx
        self.dirty.add(key)
        start = self._starts.get(line, self._starts.get(None))
        if start is not None and day >= start:
            _add(self.cycle, (mac, line), rx, tx)
        if day == self._today:
            _add(self.today, (mac, line), rx, tx)

    def set_periods(self, today, starts):
        """Today (ISO date) and each line's cycle start ({line: ISO date}, None for lines not named); the running
        sums are made again only when one of them moves."""
        if today == self._today and starts == self._starts:
            return
        self._today, self._starts = today, dict(starts)
        self.cycle, self.today = {}, {}
        for (day, mac, line), (rx, tx) in self.days.items():
            start = starts.get(line, starts.get(None))
            if start is not None and day >= start:
                _add(self.cycle, (mac, line), rx, tx)
            if day == today:
                _add(self.today, (mac, line), rx, tx)

    def taken(self):
        """What a flush writes: (day rows changed, elements whose reading changed, elements gone) since the last
        successful flush; call flushed_ok(taken) once it is on disk."""
        cp, flushed = self.checkpoint, self.flushed
        rows = {k: tuple(self.days[k]) for k in self.dirty}
        changed = {e: v for e, v in cp.items() if flushed.get(e) != v}
        return rows, changed, flushed.keys() - cp.keys()

    def flushed_ok(self, taken):
        rows, changed, dropped = taken
        self.dirty -= {k for k, v in rows.items() if tuple(self.days[k]) == v}
        for element in dropped:
            self.flushed.pop(element, None)
        self.flushed.update(changed)

    def evict(self, oldest):
        """Days before `oldest` (ISO date) that are flushed leave memory (the database keeps them)."""
        for key in [k for k in self.days if k[0] < oldest and k not in self.dirty]:
            del self.days[key]


def group_of(element):
    """"unifi" for a UniFi client's counter, "kernel" for everything the nftables sets count."""
    return "unifi" if element.startswith("unifi ") else "kernel"


def _add(table, key, rx, tx):
    entry = table.setdefault(key, [0, 0])
    entry[0] += rx
    entry[1] += tx
