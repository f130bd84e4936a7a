"""The fleet dashboard's queries (deploy/fleet/grafana-dashboard.json) run as Grafana runs them, against a central."""
import json
import re

from fleet_lab import FLEET

# Series a site exports only when it counts LAN devices (every site of tests/fleet_lab.py does; a site that does
# not shows no top devices).
DEVICE_SERIES = {"datacap_device_cycle_bytes"}

def dashboard_queries():
    """[(panel title, PromQL)] of deploy/fleet/grafana-dashboard.json, the site variable's query first."""
    dash = json.loads((FLEET / "grafana-dashboard.json").read_text())
    site = next(v for v in dash["templating"]["list"] if v["name"] == "site")
    return [("$site", site["definition"])] + [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def dashboard_answer(fl, query, site=".+", rate_interval="1m"):
    """What Grafana would get from the central for one query: {site label: values}. `$site` and
    `$__rate_interval` are filled in as Grafana fills them; label_values() is the label values API."""
    found = re.fullmatch(r'label_values\((.+), (\w+)\)', query)
    if found:
        return {v: [v] for v in fl.get(f"/api/v1/label/{found[2]}/values", **{"match[]": found[1]})}
    q = query.replace("$site", site).replace("$__rate_interval", rate_interval)
    out = {}
    for labels, value in fl.query(q):
        out.setdefault(labels.get("site"), []).append(value)
    return out
