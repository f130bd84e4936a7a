"""What the 1-second bins say about the link: baseline, throttles, outages, congestion, a burst.

Each closed bin goes one way:
- silent (no bytes): held; OUTAGE_S of them in a row are an outage (never a throttle), a
  shorter run is measured as seconds of 0 B/s once bytes arrive again;
- a stream was in back-off after an error: not a measurement of the ISP;
- slow start (at the start, after a resume or an outage): not a measurement either;
- otherwise a measurement of the aggregate, fed to the baseline, the throttle detector and the
  congestion tracker. A low plateau found in the first BURST_MAX_S seconds and BURST_MAX_BYTES,
  no more than BURST_MAX_FACTOR below the start, looks like an initial burst: a speed boost
  running out. When it is one level (a shaper's), the refill check (measure/refill.py) asks the
  session for a rest and watches the seconds after it: a fast rate that comes back is a boost (a
  `burst` event), the same low level is a throttle from the change point (a volume throttle the
  test began near), anything else a burst as before the check. A level that wanders is a fast
  start on a swinging link: a burst at once.
"""
from datacap.measure import events as ev
from datacap.measure.baseline import Baseline
from datacap.measure.refill import RefillCheck
from datacap.measure.plateau import one_level
from datacap.measure.throttle import ThrottleDetector

BURST_MAX_S = 15  # seconds of measurement from the first one to the change point
BURST_MAX_BYTES = 300_000_000
BURST_MAX_FACTOR = 4.0  # speed boosts run up to 2-3x the plan; a drop to a fifth is a throttle
EVENTS_KEPT = 200


class LinkMonitor:
    """Feeds each closed bin to the part of the instrument it belongs to."""

    def __init__(self, threshold_percent, baseline_seconds, iso):
        self.iso = iso
        self.baseline = Baseline(baseline_seconds)
        self.throttle = ThrottleDetector(threshold_percent)
        self.outages = ev.OutageTracker(iso)
        self.congestion = ev.CongestionTracker(iso)
        self.other_events = []  # outage, congestion and burst events
        self._first = None  # the first measured bin
        self._seen_bytes = False
        self._start = None  # the first bin with bytes: where a burst starts
        self.refill = None  # the one early drop's RefillCheck
        self._burst = None  # its event

    # -- what the session reads ---------------------------------------------
    @property
    def events(self):
        """Throttle events only (`throttle_events` in the file)."""
        return self.throttle.events

    @property
    def all_events(self):
        """Every event of every kind, by start."""
        return sorted(self.throttle.events + self.other_events, key=lambda e: e["start"])

    @property
    def open_event(self):
        return self.throttle.open_event

    @property
    def baseline_bps(self):
        return self.baseline.value

    @property
    def outage_open(self):
        return self.outages.event is not None

    def set_threshold(self, threshold_percent):
        self.throttle.set_threshold(threshold_percent)

    @property
    def rest_wanted(self):
        """Seconds the session should rest the line now, for the refill check; else None."""
        return self.refill.rest_s if self.refill is not None and self.refill.state == "wanted" else None

    def resting(self):
        """The session has begun the rest; the next restart bin ends it."""
        self.refill.state = "resting"

    # -- feeding -------------------------------------------------------------
    def feed(self, b, iso=None):
        """Consider one closed bin."""
        if b.restart:
            self.baseline.start_warmup()
            if self.refill is not None:
                self.refill.rested()
        if b.bytes < ev.SILENT_BYTES:
            if self._seen_bytes:
                self._add(self.outages.silent_bin(b))
            return
        if not self._seen_bytes:
            self._seen_bytes, self._start = True, b
        closed, run = self.outages.bytes_back(b)
        if closed is not None:
            self.baseline.start_warmup()  # the streams reconnect: slow start again
            self.congestion.restart_after(b.wall_start)
        for s in run:
            self._measure(s)
        self._measure(b)

    def _add(self, event):
        if event is not None:
            self.other_events.append(event)
            del self.other_events[:-EVENTS_KEPT]

    def _measure(self, b):
        if not b.usable:
            return
        warming = self.baseline.warming_up(b)
        if self.refill is not None and self.refill.state != "done":
            if self.refill.state in ("watching", "draining"):
                self._check_refill(b, warming)
            return  # until the rest begins, seconds say nothing new
        if warming:
            return
        if self._first is None:
            self._first = b
        base = self.baseline.value
        if base is None:
            self.baseline.add(b)
            self.throttle.observe(b)
            return
        if self.throttle.open_event is not None:
            self.throttle.feed(b, base, False, self.iso)
            if self.throttle.open_event is None:  # it just closed: the recovery is ordinary again
                for x in self.throttle.recovered_bins():
                    self.baseline.add(x)
            return
        cand = self.throttle.feed(b, base, self.congestion.congested, self.iso, self.congestion.band_low)
        early = self._early(cand) if cand is not None else None
        if early == "check":  # a shaper's level: a boost's sustained rate, or a volume throttle
            self.refill = RefillCheck(cand)
            self._burst = ev.burst_event(self._start, cand, self.iso, self.refill.text())
            self._add(self._burst)
        elif early == "burst":  # a level that wanders: a fast start on a swinging link
            self._add(ev.burst_event(self._start, cand, self.iso, ev.burst_text(cand)))
            self._take_as_normal(cand.plateau)
        elif cand is None or not cand.ripe:
            self.baseline.add(b, hold=self.throttle.dropping)
            self._add(self.congestion.feed(b, self.baseline.value))
        else:
            self.baseline.claim(cand.index)
            self.throttle.open(cand, b.wall_start + 1, self.iso)
            self.congestion.restart_after(cand.onset)

    def _early(self, cand):
        """How to take a plateau early in the test, not far below the start: "check" when it is one level
        (rest, and see whether the fast rate comes back), "burst" when it wanders, else None."""
        if self.throttle.events or self.refill is not None or any(e["kind"] == "burst" for e in self.other_events):
            return None
        if (cand.index - self._first.index > BURST_MAX_S or cand.at_bytes > BURST_MAX_BYTES
                or cand.baseline_bps > BURST_MAX_FACTOR * cand.low_bps):
            return None
        return "check" if one_level(cand.plateau[1:]) else "burst"

    # -- the refill check ----------------------------------------------------
    def finish(self):
        """The test ends: a refill check under way says it could not tell."""
        r = self.refill
        if r is not None and r.state in ("wanted", "resting", "watching"):
            r.state = "done"
            self._burst["text"] = (ev.burst_text(r.cand) + "; the test ended before a rest could tell a speed boost "
                                   "from a throttle")

    def _check_refill(self, b, warming):
        r = self.refill
        if r.state == "watching":
            verdict = r.watch(b, warming)
            if verdict == "throttle":
                self._volume_throttle(b)
            elif verdict == "boost":
                self._burst.update(text=r.text(), rest_s=r.rest_s, came_back=True)
            elif verdict == "unsure":  # neither back nor at the same level: a burst, as before the check
                self._burst.update(text=ev.burst_text(r.cand), rest_s=r.rest_s)
                self._take_as_normal(r.cand.plateau + r.seen)
        elif not warming and r.drain(b):
            self._after_boost()

    def _volume_throttle(self, b):
        """The fast rate did not come back: a throttle from the change point, and the seconds since the rest are its."""
        r = self.refill
        if self._burst in self.other_events:
            self.other_events.remove(self._burst)
        self.baseline.claim(r.cand.index)
        self.throttle.open(r.cand, b.wall_start + 1, self.iso)
        self.throttle.events[-1].update(text=r.text(), rest_s=r.rest_s, from_start=True)
        for x in r.seen:
            self.throttle.feed(x, self.baseline.value, False, self.iso)
        self.congestion.restart_after(r.cand.onset)

    def _after_boost(self):
        """The refilled bucket is empty again: the sustained seconds are the link's normal speed (or, if the
        fast rate stayed, the seconds since the rest are)."""
        r = self.refill
        self._take_as_normal(r.seen if r.came_back_for_good() else r.cand.plateau)

    def _take_as_normal(self, bins):
        """These seconds are the link's normal speed: the baseline's, and where change points are searched."""
        self.baseline.reset_to(bins)
        self.throttle.restart_from(bins)
        self.congestion.restart_after(bins[-1].wall_start + 1)
