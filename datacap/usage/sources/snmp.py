"""A router's WAN counters over SNMP (IF-MIB), the interface found by name, reboots from sysUpTime."""
from pysnmp.hlapi.v3arch.asyncio import (CommunityData, ContextData, ObjectIdentity, ObjectType, SnmpEngine,
                                         UdpTransportTarget, UsmUserData, get_cmd, walk_cmd)

from datacap.usage.sources.router import RouterSource

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
HC_IN, HC_OUT = "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.31.1.1.1.10"  # ifHCInOctets, ifHCOutOctets (64-bit)
IN, OUT = "1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.2.2.1.16"  # ifInOctets, ifOutOctets (32-bit)
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"  # ifHighSpeed, Mbit/s


class SnmpError(Exception):
    pass


class SnmpSource(RouterSource):
    kind = "snmp"

    def __init__(self, spec, counts, **kw):
        super().__init__(spec, counts, **kw)
        self.target = f"{spec['host']}/{spec['interface']}"
        self._engine = self._transport = None
        self._index = None  # the interface's ifIndex: looked up by name, again after any failure

    def label(self):
        return f"Router {self.spec['host']} (SNMP, {self.spec['interface']})"

    def _auth(self):
        s = self.spec
        if "community" in s:
            return CommunityData(s["community"], mpModel=1)
        return UsmUserData(s["user"], authKey=s.get("auth_key"), privKey=s.get("priv_key"))

    async def _connect(self):
        if self._engine is None:
            self._engine = SnmpEngine()
        if self._transport is None:
            self._transport = await UdpTransportTarget.create((self.spec["host"], self.spec.get("port", 161)),
                                                              timeout=1.5, retries=1)

    async def _find_index(self):
        wanted = self.spec["interface"]
        for column in (IF_NAME, IF_DESCR):
            async for err, status, _, binds in walk_cmd(self._engine, self._auth(), self._transport, ContextData(),
                                                        ObjectType(ObjectIdentity(column)), lexicographicMode=False):
                if err or status:
                    raise SnmpError(str(err or status.prettyPrint()))
                for oid, value in binds:
                    if value.prettyPrint() == wanted:
                        return int(str(oid).rsplit(".", 1)[1])
        raise SnmpError(f"the router has no interface named {wanted!r} (ifName or ifDescr)")

    async def _get(self, *oids):
        err, status, _, binds = await get_cmd(self._engine, self._auth(), self._transport, ContextData(),
                                              *(ObjectType(ObjectIdentity(o)) for o in oids))
        if err or status:
            raise SnmpError(str(err or status.prettyPrint()))
        return [None if type(v).__name__ in ("NoSuchInstance", "NoSuchObject", "EndOfMibView") else int(v)
                for _, v in binds]

    async def read(self):
        await self._connect()
        try:
            if self._index is None:
                self._index = await self._find_index()
            i = self._index
            rx, tx, rx32, tx32, uptime, mbit = await self._get(f"{HC_IN}.{i}", f"{HC_OUT}.{i}", f"{IN}.{i}",
                                                               f"{OUT}.{i}", SYS_UPTIME, f"{HIGH_SPEED}.{i}")
        except Exception:
            self._index = None  # a replugged modem gets a new ifIndex: look the name up again
            raise
        link = mbit * 1e6 / 8 * 1.5 if mbit else None
        if rx is None or tx is None:  # no IF-MIB 64-bit counters: the 32-bit ones, which wrap at 4 GiB
            if rx32 is None or tx32 is None:
                self._index = None
                raise SnmpError("the interface has no octet counters")
            return rx32, tx32, False, seconds(uptime), link
        return rx, tx, True, seconds(uptime), link


def seconds(ticks):
    """sysUpTime is in hundredths of a second."""
    return None if ticks is None else ticks / 100
