"""devices.db: the device history in SQLite, its one writer (the collector) and its read-only readers.

250 devices x lines x 400 days outgrow a JSON file rewritten every minute, so the history is SQLite in WAL mode
(as vnStat 2 moved to). Each flush is one short transaction holding the day totals and the raw-counter
checkpoint they correspond to: a crash at any point leaves both from the same flush, and the restart counts
the kernel's counters from that checkpoint, so no byte is lost or counted twice. Today's rows sit together
(primary key day first, and no index by device: each new day's first flush would dirty a page per device, 1.4 MB
at 250 devices), so a flush dirties a few pages; one device's 400 days take 7 ms to read. Readers open it `mode=ro`.

    meta(key, value)                        id, flushes, boot_id, netns, table_handle, flushed_at
    devices(id, mac, name, first_seen, last_seen, source)      name: as the leases or UniFi call it
    lines(id, name)                          "" is traffic that left by no counted line (a tunnel, a container)
    days(day, device, line, rx, tx)          bytes of a device on a line on a local day (rx: to the device)
    addresses(address, device, last_seen)    who had an address last
    elements(id, name), checkpoint(element, value)    each kernel counter ("up4 10.0.0.5 wan") and its reading
    pauses(device, since, until, reason, period), allowed(device, period)   paused devices; let through this period
    requests(id, at)                          pause/unpause requests from the server already applied
    events(key, at, device, data)             budget pauses, for notifications (sent once by key)
"""
import json
import logging
import sqlite3
import uuid

log = logging.getLogger("collector")

NAME = "devices.db"
DAYS_KEPT = 430
EVENTS_KEPT = 200
REQUESTS_KEPT = 500
BUSY_MS = 5000


def _v1(db):
    _script(db, """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE devices(id INTEGER PRIMARY KEY, mac TEXT UNIQUE NOT NULL, name TEXT, first_seen TEXT,
                             last_seen TEXT, source TEXT);
        CREATE TABLE lines(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
        CREATE TABLE days(day TEXT NOT NULL, device INTEGER NOT NULL, line INTEGER NOT NULL, rx INTEGER NOT NULL,
                          tx INTEGER NOT NULL, PRIMARY KEY(day, device, line)) WITHOUT ROWID;
        CREATE TABLE addresses(address TEXT PRIMARY KEY, device INTEGER NOT NULL, last_seen TEXT) WITHOUT ROWID;
        CREATE TABLE elements(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
        CREATE TABLE checkpoint(element INTEGER PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE pauses(device INTEGER PRIMARY KEY, since TEXT, until TEXT, reason TEXT, period TEXT);
        CREATE TABLE allowed(device INTEGER PRIMARY KEY, period TEXT);
        CREATE TABLE requests(id TEXT PRIMARY KEY, at TEXT) WITHOUT ROWID;
        CREATE TABLE events(key TEXT PRIMARY KEY, at TEXT, device INTEGER, data TEXT) WITHOUT ROWID;
    """)
    db.execute("INSERT INTO meta VALUES ('id', ?), ('flushes', 0)", (uuid.uuid4().hex,))


def _script(db, text):
    """Statements one by one (executescript would commit the migration's transaction half-way)."""
    for statement in text.split(";"):
        if statement.strip():
            db.execute(statement)


MIGRATIONS = [_v1]  # MIGRATIONS[n] takes user_version n to n + 1


def path(data_dir):
    return data_dir / NAME


class DeviceDb:
    """The collector's connection: the only writer."""

    def __init__(self, file):
        self.db = sqlite3.connect(str(file), isolation_level=None, check_same_thread=False)
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")  # a flush on disk is the checkpoint a restart trusts
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for n in range(version, len(MIGRATIONS)):
            with self.transaction():
                MIGRATIONS[n](self.db)
                self.db.execute(f"PRAGMA user_version = {n + 1}")
        self._ids = {"devices": {}, "lines": {}, "elements": {}}
        for table, key in (("devices", "mac"), ("lines", "name"), ("elements", "name")):
            self._ids[table] = dict(self.db.execute(f"SELECT {key}, id FROM {table}"))

    def close(self):
        self.db.close()

    def transaction(self):
        return _Transaction(self.db)

    def _id(self, table, key):
        """The row id of a device (by MAC), line or element (by name), made on first use (inside a transaction)."""
        ids = self._ids[table]
        if key not in ids:
            column = "mac" if table == "devices" else "name"
            ids[key] = self.db.execute(f"INSERT INTO {table}({column}) VALUES (?)", (key,)).lastrowid
        return ids[key]

    def device_id(self, mac):
        return self._id("devices", mac)

    def meta(self):
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def load(self, since):
        """What the collector continues from: meta, checkpoint {element: value}, days {(day, mac, line): [rx, tx]}
        since `since` (ISO date), devices {mac: row}, addresses {address: mac}."""
        macs = {i: m for m, i in self._ids["devices"].items()}
        lines = {i: n for n, i in self._ids["lines"].items()}
        elements = {i: n for n, i in self._ids["elements"].items()}
        days = {(d, macs[dev], lines[ln]): [rx, tx] for d, dev, ln, rx, tx in
                self.db.execute("SELECT day, device, line, rx, tx FROM days WHERE day >= ?", (since,))}
        devices = {mac: {"name": name, "first_seen": first, "last_seen": last, "source": source}
                   for mac, name, first, last, source in
                   self.db.execute("SELECT mac, name, first_seen, last_seen, source FROM devices")}
        addresses = {a: macs[d] for a, d in self.db.execute("SELECT address, device FROM addresses")}
        checkpoint = {elements[e]: v for e, v in self.db.execute("SELECT element, value FROM checkpoint")}
        return self.meta(), checkpoint, days, devices, addresses

    def flush(self, days, checkpoint, dropped, devices, addresses, meta):
        """One transaction: day totals (absolute), the checkpoint's changed and dropped elements, devices and
        addresses seen, meta. Either all of it is on disk afterwards or none of it."""
        with self.transaction():
            self.db.executemany(
                "INSERT INTO days VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET rx = excluded.rx, tx = excluded.tx",
                [(d, self.device_id(m), self._id("lines", ln), rx, tx) for (d, m, ln), (rx, tx) in days.items()])
            self.db.executemany("INSERT OR REPLACE INTO checkpoint VALUES (?, ?)",
                                [(self._id("elements", e), v) for e, v in checkpoint.items()])
            self.db.executemany("DELETE FROM checkpoint WHERE element = ?",
                                [(self._ids["elements"][e],) for e in dropped if e in self._ids["elements"]])
            self.db.executemany("UPDATE devices SET name = coalesce(?, name), last_seen = ?, "
                                "first_seen = coalesce(first_seen, ?), source = ? WHERE id = ?",
                                [(d.get("name"), d["last_seen"], d["last_seen"], d.get("source"), self.device_id(m))
                                 for m, d in devices.items()])
            self.db.executemany("INSERT OR REPLACE INTO addresses VALUES (?, ?, ?)",
                                [(a, self.device_id(m), seen) for a, (m, seen) in addresses.items()])
            self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'flushes'")
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))

    def forget_checkpoint(self):
        """The kernel's counters started again (a new table or boot): none of the old readings holds."""
        with self.transaction():
            self.db.execute("DELETE FROM checkpoint")

    def prune(self, today):
        from datetime import date, timedelta
        oldest = (date.fromisoformat(today) - timedelta(days=DAYS_KEPT)).isoformat()
        with self.transaction():
            self.db.execute("DELETE FROM days WHERE day < ?", (oldest,))
            self.db.execute("DELETE FROM events WHERE key NOT IN (SELECT key FROM events ORDER BY at DESC LIMIT ?)",
                            (EVENTS_KEPT,))
            self.db.execute("DELETE FROM requests WHERE id NOT IN (SELECT id FROM requests ORDER BY at DESC LIMIT ?)",
                            (REQUESTS_KEPT,))

    # -- pauses: rare, each its own short transaction, so a pause is on disk before it is in the kernel --

    def pauses(self):
        macs = {i: m for m, i in self._ids["devices"].items()}
        paused = {macs[d]: {"since": s, "until": u, "reason": r, "period": p}
                  for d, s, u, r, p in self.db.execute("SELECT device, since, until, reason, period FROM pauses")}
        allowed = {macs[d]: p for d, p in self.db.execute("SELECT device, period FROM allowed")}
        return paused, allowed

    def set_pause(self, mac, pause, allowed=None, request=None, event=None):
        """Record a device paused (pause a dict) or not (None), what it is let through for, the request applied
        and the event to notify, together."""
        with self.transaction():
            dev = self.device_id(mac)
            if pause is None:
                self.db.execute("DELETE FROM pauses WHERE device = ?", (dev,))
            else:
                self.db.execute("INSERT OR REPLACE INTO pauses VALUES (?, ?, ?, ?, ?)",
                                (dev, pause["since"], pause["until"], pause["reason"], pause["period"]))
            if allowed is not None:
                self.db.execute("INSERT OR REPLACE INTO allowed VALUES (?, ?)", (dev, allowed or None))
            if request is not None:
                self.db.execute("INSERT OR IGNORE INTO requests VALUES (?, ?)", request)
            if event is not None:
                self.db.execute("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                                (event["key"], event["at"], dev, json.dumps(event)))

    def mark_request(self, request_id, at):
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO requests VALUES (?, ?)", (request_id, at))

    def requests_done(self):
        return {r for (r,) in self.db.execute("SELECT id FROM requests")}

    def events(self, limit=50):
        return [json.loads(d) for (d,) in self.db.execute("SELECT data FROM events ORDER BY at DESC LIMIT ?", (limit,))]


class _Transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


class Reader:
    """The server's view: a fresh read-only connection per question, never a transaction across a request."""

    def __init__(self, data_dir):
        self.file = path(data_dir)

    def _connect(self):
        db = sqlite3.connect(f"file:{self.file}?mode=ro", uri=True)
        db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        return db

    def query(self, sql, args=()):
        """Rows of a query; [] when there is no database yet (or it is unreadable)."""
        if not self.file.exists():
            return []
        try:
            db = self._connect()
            try:
                return db.execute(sql, args).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("cannot read %s: %s", self.file.name, exc)
            return []

    def days(self, since, until=None, mac=None):
        """[(day, mac, line, rx, tx)] from `since` (ISO date) on, of one device or all, oldest first."""
        sql = ("SELECT day, mac, lines.name, rx, tx FROM days JOIN devices ON devices.id = days.device "
               "JOIN lines ON lines.id = days.line WHERE day >= ?")
        args = [since]
        if until is not None:
            sql, args = sql + " AND day <= ?", args + [until]
        if mac is not None:
            sql, args = sql + " AND days.device = (SELECT id FROM devices WHERE mac = ?)", args + [mac]
        return self.query(sql + " ORDER BY day, mac", args)

    def devices(self):
        """{mac: {name, first_seen, last_seen, source, addresses}} of every device seen."""
        out = {mac: {"name": n, "first_seen": f, "last_seen": last, "source": s, "addresses": []}
               for mac, n, f, last, s in self.query("SELECT mac, name, first_seen, last_seen, source FROM devices")}
        for address, mac in self.query("SELECT address, mac FROM addresses JOIN devices ON devices.id = addresses.device "
                                       "ORDER BY addresses.last_seen DESC"):
            if mac in out:
                out[mac]["addresses"].append(address)
        return out

    def pauses(self):
        return {mac: {"since": s, "until": u, "reason": r, "period": p} for mac, s, u, r, p in
                self.query("SELECT mac, since, until, reason, period FROM pauses JOIN devices ON devices.id = pauses.device")}

    def events(self, limit=50):
        return [json.loads(d) for (d,) in self.query("SELECT data FROM events ORDER BY at DESC LIMIT ?", (limit,))]
