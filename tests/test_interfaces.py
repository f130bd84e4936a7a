"""Which interfaces count toward the cap."""
from datacap.usage import interfaces


def test_auto_counts_default_route_interfaces_minus_tunnels():
    routes = lambda: {"eth0", "wlan0"}  # noqa: E731
    assert interfaces.counted_interfaces("auto", {"eth0": 0, "wlan0": 0, "lo": 0}, routes) == ["eth0", "wlan0"]


def test_tunnels_containers_and_loopback_are_never_auto():
    for name in ("lo", "docker0", "veth12ab", "br-3f2", "virbr0", "tun0", "wg0", "tailscale0", "zt7", "utun3"):
        assert interfaces.excluded(name), name
    for name in ("eth0", "enp3s0", "wlan0", "wlp2s0", "ppp0", "wwan0", "usb0", "en0"):
        assert not interfaces.excluded(name), name


def test_explicit_list_overrides_auto():
    assert interfaces.counted_interfaces(["wg0", "eth1"], {}, lambda: {"eth0"}) == ["wg0", "eth1"]


def test_real_routing_table_is_read():
    names = interfaces.default_route_interfaces()
    assert all(not interfaces.excluded(n) for n in names)
    assert set(names) <= set(interfaces.read_counters())
