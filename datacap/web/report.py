"""GET /report/<id>: one printable evidence page for a kept test (static/report.html + report.js).

The page is static; its script reads /api/history/<id> (the numbers) and /api/system (the
connection), so the report shows exactly what the API keeps, and prints from any browser.
"""
from flask import Blueprint, abort, send_file

from datacap.config import ROOT
from datacap.measure import baseline, events, monitor, refill, throttle  # the owners of the rules method() states
from datacap.web.views import views

bp = Blueprint("report", __name__)


@bp.get("/report/<test_id>")
def report(test_id):
    if views().history.get(test_id) is None:
        abort(404, description=f"no kept test with id {test_id!r}")
    return send_file(ROOT / "static" / "report.html", max_age=0)


def method(test):
    """How datacap measured this test, in plain words, from the detector's own constants."""
    urls = test["urls"] or []
    threshold = test["threshold_percent"]
    drop = f"{threshold:g} %" if threshold is not None else "the configured share"
    return [
        f"Downloaded from {len(urls)} test server{'s' if len(urls) != 1 else ''} over {test['streams'] or '?'} "
        f"parallel HTTP streams: {', '.join(urls) or 'none recorded'}. The bytes were counted and thrown away.",
        "Every second, the bytes of all streams together make one speed sample (Mbit/s, 10^6 bit/s).",
        f"Seconds while the connections were still speeding up (TCP slow start, up to {baseline.WARMUP_MAX_S} s "
        "after the start, a resume or an outage) and seconds in which half the streams or more were "
        "reconnecting after an error are not counted as measurements of the ISP.",
        f"The baseline is the link's normal speed: the median of the last {baseline.WINDOW_S} ordinary seconds.",
        f"A throttle is a drop of {drop} or more below the baseline that stays low and flat for at least "
        f"{throttle.PLATEAU_S} s ({throttle.SHALLOW_PLATEAU_S} s for a drop just past the line, "
        f"{throttle.LONG_PLATEAU_S} s if the speed was swinging before, unless the drop is deeper than any swing: "
        f"to a tenth of the baseline or below half the low edge of the swings). Its onset is the change point, to a "
        "fraction of a second; it ends when the speed is back halfway between that line and the baseline. A "
        "further step down while throttled (a second tier) ends it and is an event of its own.",
        f"An outage is {events.OUTAGE_S} or more seconds in a row without any bytes; it is never counted as a "
        f"throttle. A low, level plateau found within the first {monitor.BURST_MAX_S} s and "
        f"{monitor.BURST_MAX_BYTES / 1e6:.0f} MB, no lower than 1/{monitor.BURST_MAX_FACTOR:g} of the start speed, "
        f"may be a speed boost running out: datacap rests the line ({refill.REST_MIN_S}-{refill.REST_MAX_S} s, "
        "long enough for a boost's bucket to fill again) and watches: a boost's fast rate comes back (a burst), a "
        "volume throttle's does not (a throttle from the start of the test).",
        "The billing-cycle figures are datacap's own count of this machine's (or the router's) traffic, "
        "corrected by any ISP meter reading you entered.",
    ]
