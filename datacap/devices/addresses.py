"""Who has which address: a device is its MAC, whatever addresses it uses (DHCP renewals, IPv6 privacy addresses).

Sources, the later winning: what devices.db remembers, the DHCP leases (leases.py), the kernel's neighbour
table (the MAC that actually uses an address now). An address no source knows yet is counted as "?address"
until one does. The neighbour table is asked when an unknown address carries traffic, when the leases change,
and every NEIGHBOURS_S anyway (an address handed to another device).
"""
NEIGHBOURS_S = 30.0


class AddressBook:
    def __init__(self, remembered, leases, neighbours, clock):
        self.of = dict(remembered)  # address -> MAC
        self.leases, self.neighbours, self.clock = leases, neighbours, clock
        self.changed = {}  # address -> MAC, since the last flush
        self._asked_at = None
        self._by_mac = None  # MAC -> [addresses], made again when `of` changes

    def mac(self, address):
        return self.of.get(address) or f"?{address}"

    def resolve(self, addresses):
        """Look up the addresses not known yet among `addresses` (those carrying traffic now), and everyone's now
        and then; True when any mapping changed. `neighbours` gives the LAN's only (not the ISP's router)."""
        moved = False
        if self.leases.refresh():
            moved |= self._merge(self.leases.by_address)
        now = self.clock()
        due = self._asked_at is None or now - self._asked_at >= NEIGHBOURS_S or self.leases.changed
        if due or any(a not in self.of for a in addresses):
            self.leases.changed = False
            self._asked_at = now
            try:
                found = self.neighbours()
            except OSError:
                return moved  # the leases and what we remember still name most addresses
            moved |= self._merge(found)
        return moved

    def _merge(self, found):
        moved = False
        for address, mac in found.items():
            if address.startswith("fe80:"):
                continue  # link-local: never forwarded, never counted, no use to show
            if self.of.get(address) != mac:
                self.of[address] = self.changed[address] = mac
                moved = True
        if moved:
            self._by_mac = None
        return moved

    def of_mac(self, mac):
        if self._by_mac is None:
            by_mac = {}
            for address, m in self.of.items():
                by_mac.setdefault(m, []).append(address)
            self._by_mac = {m: sorted(a, key=lambda x: (":" in x, x)) for m, a in by_mac.items()}
        return self._by_mac.get(mac, [])

    def taken(self):
        out, self.changed = self.changed, {}
        return out
