"""A fake gateway kernel for device-counting scenarios: nftables set counters, the table's handle, the neighbour
table, what the pause sets hold. Counter values are the bytes the line's counter would see (link headers in)."""
import itertools

_handles = itertools.count(7)


class FakeKernel:
    def __init__(self):
        self.elements = {}  # "up4 10.0.0.5 wan" -> bytes
        self.handle = None  # None: no table yet
        self.neigh = {}  # address -> MAC
        self.paused = ([], [], [])
        self.installs, self.removed, self.reads = [], 0, 0

    def install(self, lan):
        self.installs.append(tuple(lan))
        if self.handle is None:
            self.handle = next(_handles)
            self.paused = ([], [], [])

    def flush_ruleset(self):
        """Someone reloaded the firewall with `flush ruleset`: our table and its counters are gone."""
        self.handle, self.elements, self.paused = None, {}, ([], [], [])

    def remove(self):
        self.removed += 1
        self.flush_ruleset()

    def read(self):
        self.reads += 1
        return (dict(self.elements), self.handle) if self.handle is not None else ({}, None)

    def pause(self, macs, v4, v6):
        self.paused = (list(macs), list(v4), list(v6))

    def neighbours(self):
        return dict(self.neigh)

    def netns(self):
        return 4026531993

    def add(self, element, nbytes):
        """Traffic: an element's counter grows (made when new, as the kernel's dynamic set does)."""
        self.elements[element] = self.elements.get(element, 0) + nbytes

    @property
    def address_of(self):
        return {e: None if e.startswith("own_") else e.split(" ")[1] for e in self.elements}
