"""Two lines on the dashboard in a real Chromium: a card each, the answer per line, Start's line picker; light, dark,
360 px (screenshots in docs/)."""
import pytest

from conftest import ROOT
from harness import wait_for
from test_browser import chromium  # noqa: F401  (the real-browser fixture)

LINES = [{"name": "Starlink", "source": {"type": "local", "interfaces": ["dc-none-1"]}, "data_cap_gb": 1000,
          "billing_day": 3},
         {"name": "Hotspot", "source": {"type": "local", "interfaces": ["dc-none-2"]}, "data_cap_gb": 20,
          "billing_day": 12}]


@pytest.mark.parametrize("width, scheme", [(1280, "light"), (1280, "dark"), (360, "light"), (360, "dark")])
def test_two_lines_each_with_its_card_answer_and_start_choice(server, chromium, width, scheme):  # noqa: F811
    s = server(lines=LINES, sources="auto", interfaces="auto")
    for line, gb in (("Starlink", 412), ("Hotspot", 18.5)):  # an ISP reading each, so the cards have figures
        assert s.post("/api/usage/adjust", json={"used_gb": gb, "line": line}).status_code == 201
    ctx = chromium.new_context(viewport={"width": width, "height": 900 if width > 400 else 780}, color_scheme=scheme,
                               is_mobile=width < 400, has_touch=width < 400)
    p = ctx.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    try:
        p.goto(s.url + "/")
        cards = p.get_by_test_id("line-cards")
        cards.wait_for(state="visible", timeout=15_000)
        wait_for(lambda: "412.0 GB of 1000.0 GB" in cards.inner_text() and "18.50 GB of 20.00 GB" in cards.inner_text(),
                 15, "both lines' figures on their cards")
        answer = p.get_by_test_id("answer-cap").inner_text()
        assert answer.startswith("Starlink: 41.2% used") and "\nHotspot: 92.5% used" in answer
        picker = p.get_by_label("The line to test over")
        assert picker.is_visible() and picker.locator("option").all_inner_texts() == ["over Starlink", "over Hotspot"]
        p.locator('.line-card[data-line="Hotspot"] button').click()
        wait_for(lambda: p.text_content("#h-cap").startswith("Hotspot:"), 10, "the cap panel showing the chosen line")
        assert picker.input_value() == "Hotspot" and p.inner_text("#cap-used") == "18.50 GB of 20.00 GB"
        overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px of horizontal overflow at {width}px"
        p.evaluate("window.scrollTo(0, 0)")
        p.wait_for_timeout(600)  # the bars' width transition
        p.screenshot(path=str(ROOT / "docs" / f"lines-{'phone' if width < 400 else 'desktop'}-{scheme}.png"))
        assert errors == []
    finally:
        ctx.close()
