"""Counter sources: this machine's interfaces, and a router's WAN counters (SNMP, UPnP IGD).

build(setting) turns the `sources` setting into (counts_local, routers): whether this machine's
interfaces count toward the cap, and the router sources to poll (each knows whether it counts).
The network stacks (pysnmp, async-upnp-client) are imported only when a source needs them.
"""
from datacap.usage.sources import settings


def router_source(spec, counts, clock):
    if spec["type"] == "snmp":
        from datacap.usage.sources.snmp import SnmpSource
        return SnmpSource(spec, counts=counts, clock=clock)
    if spec.get("url") is None:  # found by SSDP first
        from datacap.usage.sources.gateway import GatewaySearch
        return GatewaySearch(spec, counts)
    from datacap.usage.sources.upnp import UpnpSource
    return UpnpSource(spec, counts=counts, clock=clock)


def build(setting, clock, promoted=None):
    """(local counts?, [router sources]) for a valid `sources` setting; with "auto", `promoted` is the
    gateway found and counted before ({"url": ...}), else a search for one."""
    if setting == "auto":
        if promoted:
            return False, [router_source({"type": "upnp", "url": promoted["url"]}, True, clock)]
        return True, [router_source({"type": "upnp"}, False, clock)]
    counting = settings.counting(setting)
    routers = [router_source(spec, i == counting, clock) for i, spec in enumerate(setting) if spec["type"] != "local"]
    return any(i == counting for i, s in enumerate(setting) if s["type"] == "local"), routers
