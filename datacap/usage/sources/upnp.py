"""A router's WAN counters over UPnP IGD (WANCommonInterfaceConfig), with async-upnp-client.

Found at its description URL (sources/gateway.py finds it for "sources": "auto"). 64-bit counters
are used where the router offers them (AVM's GetAddonInfos); otherwise GetTotalBytesReceived/Sent,
32-bit by the standard (they wrap at 4 GiB; some routers send them signed). The connection's uptime
(WANIPConnection/WANPPPConnection GetStatusInfo) tells a reboot from a wrap.
"""
from urllib.parse import urlparse

from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.profiles.igd import IgdDevice

from datacap.usage.sources.router import RouterSource

WANCIC = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"


class UpnpError(Exception):
    pass


class UpnpSource(RouterSource):
    kind = "upnp"

    def __init__(self, spec, counts, **kw):
        super().__init__(spec, counts, **kw)
        self.url = spec["url"]
        self.target = urlparse(self.url).hostname
        self._service = self._igd = None

    def label(self):
        return f"Router {self.target} (UPnP)"

    async def _connect(self):
        device = await UpnpFactory(AiohttpRequester(timeout=3)).async_create_device(self.url)
        service = device.find_service(WANCIC)
        if service is None:
            raise UpnpError(f"{self.url} offers no WANCommonInterfaceConfig service")
        self._service, self._igd = service, IgdDevice(device, None)

    async def read(self):
        if self._service is None:
            await self._connect()
        try:
            return await self._counters()
        except Exception:
            self._service = None  # reconnect (the description may have changed after a reboot)
            raise

    async def _uptime(self):
        """Seconds the WAN connection has been up, None when the router does not say."""
        try:
            info = await self._igd.async_get_status_info()
        except Exception:  # noqa: BLE001 - an optional action some routers get wrong: no uptime
            return None
        return int(info.uptime) if info is not None and info.uptime is not None else None

    async def _counters(self):
        svc, uptime = self._service, await self._uptime()
        if svc.has_action("GetAddonInfos"):
            info = await svc.action("GetAddonInfos").async_call()
            rx, tx = info.get("NewX_AVM_DE_TotalBytesReceived64"), info.get("NewX_AVM_DE_TotalBytesSent64")
            if rx is not None and tx is not None:
                return int(rx), int(tx), True, uptime, None
        rx = (await svc.action("GetTotalBytesReceived").async_call()).get("NewTotalBytesReceived")
        tx = (await svc.action("GetTotalBytesSent").async_call()).get("NewTotalBytesSent")
        if rx is None or tx is None:
            raise UpnpError("the gateway answered without byte counters")
        return int(rx), int(tx), False, uptime, None
