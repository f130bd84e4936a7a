"""Counter sources: this machine's interfaces, and a router's WAN counters (SNMP, UPnP IGD).

build(setting) turns the `sources` setting into (counts_local, routers): whether this machine's
interfaces count toward the cap, and the router sources to poll (each knows whether it counts).
"""
from datacap.usage.sources import settings


def build(setting, clock):
    """(local counts?, [router sources]) for a valid `sources` setting."""
    if setting == "auto":  # count a UPnP gateway once it answers with plausible counters (see collector)
        from datacap.usage.sources.upnp import UpnpSource
        return True, [UpnpSource({}, counts=False, clock=clock)]
    counting = settings.counting(setting)
    local_counts, routers = False, []
    for i, spec in enumerate(setting):
        if spec["type"] == "local":
            local_counts = i == counting
        elif spec["type"] == "snmp":
            from datacap.usage.sources.snmp import SnmpSource
            routers.append(SnmpSource(spec, counts=i == counting, clock=clock))
        else:
            from datacap.usage.sources.upnp import UpnpSource
            routers.append(UpnpSource(spec, counts=i == counting, clock=clock))
    return local_counts, routers
