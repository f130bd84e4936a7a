"""What is news: cap alerts, throttle start and lift, long outages, a child gone FATAL, a device paused at its budget.

Each piece of news has a key that names the event itself (cycle + threshold, session + onset, server
run + restarts), so the notifier can send it once, however often it is found again, across restarts.
"""
from dataclasses import dataclass, field
from datetime import datetime, timezone

from datacap.fleet.settings import site_name
from datacap.measure.probe import file as probe_file
from datacap.supervise.states import State
from datacap.usage import ledger_file, lines


@dataclass(frozen=True)
class News:
    key: str  # stable across restarts: the event, not the moment it was seen
    kind: str  # cap_alert, throttle_start, throttle_end, outage_start, outage_end, process_fatal, device_budget
    title: str
    text: str
    data: dict = field(default_factory=dict, compare=False)
    warning: bool = True  # Apprise's notify type: warning, or info for good news (a lift)


def _parse(iso):
    try:
        t = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _size(n):
    return f"{n / 1e12:g} TB" if n >= 1e12 else f"{n / 1e9:g} GB"


def cap_alerts(usage, cycle_start, site, line=None):
    """The collector's alerts of a line's cycle (it records each threshold once per cycle); `line` names
    the line in the words and the key when there are several."""
    out = []
    for a in (usage or {}).get("alerts", []):
        if a.get("cycle_start") != cycle_start:
            continue
        if line:
            text = (f"{line}: the prepaid bucket has expired ({a['used_bytes'] / 1e9:.2f} GB used)" if a.get("expired")
                    else f"{line}: {a['percent']} % of {_size(a['cap_bytes'])} used "
                    f"({a['used_bytes'] / 1e9:.2f} GB this cycle)")
            text = f"datacap at {site}: {text}"
        else:
            text = (f"datacap at {site}: the prepaid bucket has expired ({a['used_bytes'] / 1e9:.2f} GB used)"
                    if a.get("expired") else f"datacap at {site}: {a['percent']}% of the data cap used "
                    f"({a['used_bytes'] / 1e9:.2f} of {a['cap_bytes'] / 1e9:.0f} GB this cycle)")
        key = f"alert:{a['id']}" if a.get("id") else f"alert:{a['cycle_start']}:{a['percent']}"  # id: a re-armed one
        out.append(News(key if not line else f"alert:{line}:{key[6:]}", "cap_alert",
                        f"{line + ': ' if line else ''}Data cap: {a['percent']}% used", text, {**a, "line": line}))
    return out


def line_alerts(views, site):
    """Every line's cap alerts (a config without lines: its one line, named nowhere)."""
    doc = views.usage.read()
    if not views.cfg.get("lines"):
        return cap_alerts(ledger_file.line_of(doc, ledger_file.FIRST_LINE), views.summary()["start"], site)
    return [n for x in lines.of(views.cfg)
            for n in cap_alerts(ledger_file.line_of(doc, x.name), views.summary(x)["start"], site, x.name)]


def _throttle(sid, ev, site):
    out = [News(f"throttle-start:{sid}:{ev['start']}", "throttle_start", "Throttled",
                f"datacap at {site}: throttled at {ev['at_gb']:.2f} GB, {ev['baseline_mbps']:.1f} -> "
                f"{ev['throttled_mbps']:.1f} Mbit/s since {ev['start']}", ev)]
    if ev.get("end"):
        out.append(News(f"throttle-end:{sid}:{ev['start']}", "throttle_end", "Throttle lifted",
                        f"datacap at {site}: speed recovered at {ev['end']} after throttling since {ev['start']}",
                        ev, warning=False))
    return out


def _outage(sid, ev, site, now, min_minutes):
    start, end = _parse(ev.get("start")), _parse(ev.get("end"))
    if start is None or ((end or now) - start).total_seconds() < min_minutes * 60:
        return []
    out = [News(f"outage-start:{sid}:{ev['start']}", "outage_start", "Internet outage",
                f"datacap at {site}: no connection since {ev['start']} (over {min_minutes:g} min)", ev)]
    if end is not None:
        minutes = (end - start).total_seconds() / 60
        out.append(News(f"outage-end:{sid}:{ev['start']}", "outage_end", "Internet back",
                        f"datacap at {site}: connection back at {ev['end']} after {minutes:.0f} min", ev,
                        warning=False))
    return out


def session_events(stats, now, outage_minutes, site):
    """Throttle start/lift and outages longer than `outage_minutes` from downloader.json's events."""
    stats = stats or {}
    sid = stats.get("session_id")
    out, seen = [], set()
    for ev in list(stats.get("throttle_events") or []) + list(stats.get("events") or []):  # all kinds, if given
        if not isinstance(ev, dict) or (ev.get("kind", "throttle"), ev.get("start")) in seen:
            continue
        seen.add((ev.get("kind", "throttle"), ev.get("start")))
        kind = ev.get("kind", "throttle")
        try:
            if kind == "throttle":
                out += _throttle(sid, ev, site)
            elif kind == "outage":
                out += _outage(sid, ev, site, now, outage_minutes)
        except (KeyError, TypeError, ValueError):
            continue  # an event from a newer or damaged file: not news we can word
    return out


def fatal_children(processes, run_id, site):
    """A child the supervisor gave up on; once per server run and restart count."""
    out = []
    for name, p in (processes or {}).items():
        if p.get("state") == State.FATAL.value:
            why = p.get("last_error") or p.get("exit") or "no reason given"
            out.append(News(f"fatal:{name}:{run_id}:{p.get('restarts')}", "process_fatal",
                            f"datacap {name} stopped", f"datacap at {site}: the {name} gave up restarting ({why})",
                            {"process": name, **p}))
    return out


def probe_findings(doc, cycle_start, site):
    """A lasting step down across this cycle's probes, and its lift; keyed by the finding's stable ids."""
    out = []
    for f in (doc or {}).get("findings") or []:
        if f.get("cycle_start") != cycle_start:
            continue
        try:
            out.append(News(f"probe-throttle:{f['id']}", "throttle_start", "Throttled (probes)",
                            f"datacap at {site}: {f['text']}", f))
            if f.get("lifted"):
                out.append(News(f"probe-lift:{f['lifted']['id']}", "throttle_end", "Throttle lifted (probes)",
                                f"datacap at {site}: {f['lifted']['text']}", f, warning=False))
        except (KeyError, TypeError):
            continue  # a finding from a newer or damaged file: not news we can word
    return out


def device_budgets(doc, now, site):
    """A device paused at its budget (devices.json's events): news once per device and period, while it lasts."""
    out = []
    for e in (doc or {}).get("events") or []:
        try:
            until = _parse(e.get("until"))
            if until is not None and until <= now:
                continue  # its pause is over: no longer news
            name = e.get("name") or e["mac"]
            per = "today" if e["per"] == "day" else "this cycle"
            out.append(News(e["key"], "device_budget", f"{name} paused",
                            f"datacap at {site}: {name} reached its budget of {_size(e['budget_bytes'])} {per} "
                            f"({e['used_bytes'] / 1e9:.2f} GB used) and is paused"
                            + (f" until {e['until']}" if e.get("until") else ""), e))
        except (KeyError, TypeError, ValueError):
            continue  # an event from a newer or damaged file: not news we can word
    return out


def news(views, now=None, site=None):
    """Everything that is news now, read through the same Views the API uses."""
    site = site or site_name(views.cfg)
    now = now or datetime.now(timezone.utc)
    cfg = views.cfg
    return (line_alerts(views, site)
            + session_events(views.downloader.read(), now, cfg.get("notify_outage_minutes", 10), site)
            + fatal_children(views.system()["processes"], views.started, site)
            + probe_findings(probe_file.reader(views.data_dir).read(), views.summary()["start"], site)
            + device_budgets(views.devices_live.read(cfg.get("update_interval_seconds", 1))[0], now, site))
