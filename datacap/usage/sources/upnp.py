"""A router's WAN counters over UPnP IGD (WANCommonInterfaceConfig), with async-upnp-client.

The gateway is found by SSDP on the LAN, or at its description URL. 64-bit counters are used where
the router offers them (AVM's GetAddonInfos); otherwise GetTotalBytesReceived/Sent, 32-bit by the
standard (they wrap at 4 GiB; some routers send them signed).
"""
from urllib.parse import urlparse

from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.profiles.igd import IgdDevice

from datacap.usage.interfaces import default_gateways
from datacap.usage.sources.router import RouterSource

WANCIC = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"
SEARCH_S = 3
SEARCH_AGAIN_S = 600.0


class UpnpError(Exception):
    pass


async def discover(timeout=SEARCH_S, gateways=default_gateways):
    """(ours, others): description URLs of the Internet Gateway Devices that answer an SSDP search,
    those at our default gateway and the rest (a mesh node, a second router: not what we count).
    With no IPv4 default route to tell them apart, every answer is ours."""
    answers = await IgdDevice.async_search(timeout=timeout)
    found = sorted({d["location"] for d in answers if d.get("location")})
    via = gateways()
    ours = [url for url in found if not via or urlparse(url).hostname in via]
    return ours, [url for url in found if url not in ours]


class UpnpSource(RouterSource):
    kind = "upnp"

    def __init__(self, spec, counts, **kw):
        super().__init__(spec, counts, **kw)
        self.url = spec.get("url")
        self._service = None
        self._heard = False  # some device answered the last search, though not at our gateway

    @property
    def target(self):
        return urlparse(self.url).hostname if self.url else "gateway"

    def retry_s(self):
        """A search nobody answered is repeated every 10 minutes, not every minute."""
        return SEARCH_AGAIN_S if self.url is None and self.failures and not self._heard else super().retry_s()

    def status(self):
        out = super().status()
        if self.url is None and self.failures and not self._heard:
            out["status"] = "not_found"  # no gateway on this LAN: nothing is wrong, this computer counts
        return out

    def label(self):
        return f"Router {self.target} (UPnP)" if self.url else "Router (UPnP, searching)"

    async def _connect(self):
        if self.url is None:
            ours, others = await discover()
            self._heard = bool(others)
            if not ours:
                if others:
                    raise UpnpError(f"UPnP gateways answered at {', '.join(others)}, but the default route "
                                    "goes elsewhere: set the router's URL in sources to count one of them")
                raise UpnpError("no UPnP Internet Gateway Device answered on the LAN")
            self.url = ours[0]
        device = await UpnpFactory(AiohttpRequester(timeout=3)).async_create_device(self.url)
        service = device.find_service(WANCIC)
        if service is None:
            raise UpnpError(f"{self.url} offers no WANCommonInterfaceConfig service")
        self._service = service

    async def read(self):
        if self._service is None:
            await self._connect()
        try:
            return await self._counters()
        except Exception:
            self._service = None  # reconnect (the description may have changed after a reboot)
            raise

    async def _counters(self):
        svc = self._service
        if svc.has_action("GetAddonInfos"):
            info = await svc.action("GetAddonInfos").async_call()
            rx, tx = info.get("NewX_AVM_DE_TotalBytesReceived64"), info.get("NewX_AVM_DE_TotalBytesSent64")
            if rx is not None and tx is not None:
                return int(rx), int(tx), True, None, None
        rx = (await svc.action("GetTotalBytesReceived").async_call()).get("NewTotalBytesReceived")
        tx = (await svc.action("GetTotalBytesSent").async_call()).get("NewTotalBytesSent")
        if rx is None or tx is None:
            raise UpnpError("the gateway answered without byte counters")
        return int(rx), int(tx), False, None, None
