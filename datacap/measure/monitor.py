"""What the 1-second bins say about the link: baseline, throttles, outages, congestion, a burst.

Each closed bin goes one way:
- silent (no bytes): held; OUTAGE_S of them in a row are an outage (never a throttle), a
  shorter run is measured as seconds of 0 B/s once bytes arrive again;
- a stream was in back-off after an error: not a measurement of the ISP;
- slow start (at the start, after a resume or an outage): not a measurement either;
- otherwise a measurement of the aggregate, fed to the baseline, the throttle detector and the
  congestion tracker. A low plateau found in the first BURST_MAX_S seconds and BURST_MAX_BYTES,
  no more than BURST_MAX_FACTOR below the start, is an initial burst, not a throttle.
"""
from datacap.measure import events as ev
from datacap.measure.baseline import Baseline
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

    # -- feeding -------------------------------------------------------------
    def feed(self, b, iso=None):
        """Consider one closed bin."""
        if b.restart:
            self.baseline.start_warmup()
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
        if not b.usable or self.baseline.warming_up(b):
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
        if cand is not None and self._is_burst(cand):
            self._add(ev.burst_event(self._start, cand, self.iso))
            self.baseline.reset_to(cand.plateau)
            self.throttle.restart_from(cand.plateau)
            self.congestion.restart_after(cand.onset)
        elif cand is None or not cand.ripe:
            self.baseline.add(b, hold=self.throttle.dropping)
            self._add(self.congestion.feed(b, self.baseline.value))
        else:
            self.baseline.claim(cand.index)
            self.throttle.open(cand, b.wall_start + 1, self.iso)
            self.congestion.restart_after(cand.onset)

    def _is_burst(self, cand):
        """A plateau early in the session, not far below the start: the ISP's speed boost ran out."""
        if self.throttle.events or any(e["kind"] == "burst" for e in self.other_events):
            return False
        return (cand.index - self._first.index <= BURST_MAX_S and cand.at_bytes <= BURST_MAX_BYTES
                and cand.baseline_bps <= BURST_MAX_FACTOR * cand.low_bps)
