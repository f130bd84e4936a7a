"""The Devices panel in a real Chromium (issue 26): datacap on a real gateway (tests/gateway.py) with three devices,
one paused at its budget; top devices with bars, budget progress, the paused one and its "Let through"; light, dark,
1280 and 360 px, screenshots in docs/. Chromium runs in the gateway's namespace, where datacap listens."""
import shutil
import time

import pytest

import gateway
from conftest import ROOT, have_root_networking, need
from harness import wait_for
from test_devices_gateway import GatewayServer

MB = 10 ** 6


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    need(have_root_networking(), "needs root and iproute2 for the gateway, client and internet namespaces")
    for tool in ("dnsmasq", "udhcpc", "nginx", "nft"):
        need(shutil.which(tool) is not None, f"needs Debian's {tool}")
    with gateway.home(tmp_path_factory.mktemp("devices-browser") / "home", n_clients=3) as h:
        h.lan_up(["laptop", "tv", "phone"])
        s = GatewayServer(h, devices={"budgets": {h.macs[1]: {"gb": 0.04, "per": "day"}, h.macs[2]: {"gb": 5, "per": "cycle"}}})
        s.start()
        try:
            for p in [h.download(1, 320 * MB), h.download(3, 120 * MB)]:
                assert p.wait(60) == 0
            h.keep_downloading(2, rate=2 * 10 ** 7)
            wait_for(lambda: s.device(h.macs[1]).get("paused"), 20, "the tv paused at its budget")
            time.sleep(2.5)
            yield h, s
        finally:
            s.stop()


@pytest.fixture(scope="module")
def chromium(home):
    """Chromium started inside the gateway's namespace (a wrapper Playwright launches), so 127.0.0.1 is datacap's."""
    import browser as browsermod
    ok, reason = browsermod.available()
    need(ok, reason)
    h, _ = home
    wrapper = h.folder / "chromium-in-gateway"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {h.gateway} {browsermod.CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(wrapper), headless=True, args=browsermod.ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("width, scheme", [(1280, "light"), (1280, "dark"), (360, "light"), (360, "dark")])
def test_the_devices_panel_shows_who_used_it_with_a_paused_device_and_lets_it_through(home, chromium, width, scheme):
    h, s = home
    ctx = chromium.new_context(viewport={"width": width, "height": 900 if width > 400 else 780}, color_scheme=scheme,
                               is_mobile=width < 400, has_touch=width < 400)
    p = ctx.new_page()
    errors, outside = [], []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("request", lambda r: None if r.url.startswith(f"http://127.0.0.1:{s.port}/") else outside.append(r.url))
    try:
        p.goto(f"http://127.0.0.1:{s.port}/")
        panel = p.get_by_test_id("devices")
        panel.wait_for(state="visible", timeout=15_000)
        rows = p.locator("#device-list > li")
        wait_for(lambda: rows.count() == 3, 10, "three devices listed")
        names = [x.strip() for x in p.locator("#device-list .device-name").all_inner_texts()]
        assert names == ["laptop", "phone", "tv"]  # most used first
        tv = p.locator(f'#device-list li[data-mac="{h.macs[1]}"]')
        assert "paused until" in tv.inner_text() and "Budget: 0.0" in tv.inner_text()
        assert tv.get_by_role("button", name="Let through").is_visible()
        laptop_bar = p.locator(f'#device-list li[data-mac="{h.macs[0]}"] [role=progressbar]').first
        assert laptop_bar.get_attribute("aria-valuenow") == "100"
        assert "not from any device" in p.inner_text("#devices-lines")
        overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px of horizontal overflow at {width}px"
        panel.scroll_into_view_if_needed()
        p.wait_for_timeout(500)  # the bars' width transition
        panel.screenshot(path=str(ROOT / "docs" / f"devices-{'phone' if width < 400 else 'desktop'}-{scheme}.png"))
        if (width, scheme) == (360, "dark"):  # the last one: let the tv through from the dashboard
            tv.get_by_role("button", name="Let through").click()
            wait_for(lambda: not s.device(h.macs[1])["paused"], 5, "the tv let through")
            wait_for(lambda: tv.get_by_role("button", name="Pause").is_visible(), 10, "the panel showing it")
        assert errors == [] and outside == []
    finally:
        ctx.close()
