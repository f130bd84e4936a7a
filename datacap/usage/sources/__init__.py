"""Counter sources: this machine's interfaces, and a router's WAN counters (SNMP, UPnP IGD).

build(specs) turns the router sources to poll (lines.router_specs) into (local counts?, routers): whether
this machine's interfaces count toward their line, and the router sources, each knowing the line it
counts toward (`line`, None for one only shown). The network stacks (pysnmp, async-upnp-client) are
imported only when a source needs them.
"""

def router_source(spec, line, clock):
    """The source for a spec, counting toward `line` (None: shown only)."""
    if spec["type"] == "snmp":
        from datacap.usage.sources.snmp import SnmpSource
        s = SnmpSource(spec, counts=line is not None, clock=clock)
    elif spec.get("url") is None:  # found by SSDP first
        from datacap.usage.sources.gateway import GatewaySearch
        s = GatewaySearch(spec, line is not None)
    else:
        from datacap.usage.sources.upnp import UpnpSource
        s = UpnpSource(spec, counts=line is not None, clock=clock)
    s.line = line
    return s


def build(specs, clock, promoted=None, auto_line=None):
    """(local counts?, [router sources]) for [(spec, line or None)]; for "auto" (the one line `auto_line`),
    `promoted` is the gateway found and counted before ({"url": ...}), else a search for one."""
    if specs == "auto":
        if promoted:
            return False, [router_source({"type": "upnp", "url": promoted["url"]}, auto_line, clock)]
        return True, [router_source({"type": "upnp"}, None, clock)]
    return True, [router_source(spec, line, clock) for spec, line in specs]
