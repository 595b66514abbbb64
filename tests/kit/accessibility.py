"""axe-core on a page or a frame, and the page at 200 % zoom: the accessibility check the
browser tests run on every state they reach."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Frame, Page

AXE = Axe()


# Every rule axe runs by default (WCAG 2.0-2.2 A and AA, and its best practices).
AXE_OPTIONS = {"resultTypes": ["violations"], "iframes": False}


def audit(target: Page | Frame, state: str, within: str | None = None) -> None:
    """axe-core on `target` (only the part `within`, when given) in light and in dark: no
    violation at all."""
    page = target if isinstance(target, Page) else target.page
    found = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        results = AXE.run(target, context={"include": [within]} if within else None,
                          options=AXE_OPTIONS).response
        for violation in results["violations"]:
            nodes = "; ".join(f"{', '.join(map(str, node['target']))}: "
                              f"{node.get('failureSummary', '')}"
                              for node in violation["nodes"][:5])
            found.append(f"{state} ({scheme}): {violation['id']} - {violation['help']}: {nodes}")
    page.emulate_media(color_scheme="light")
    assert not found, "\n".join(found)


def fits_at_200_percent(page: Page, state: str) -> None:
    """The customer's larger text (200%) at a 320 px wide screen: nothing scrolls sideways."""
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    # CSSOM from a script, not a style attribute: the page's CSP allows no inline style.
    page.evaluate("document.documentElement.style.fontSize = '200%'")
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
            ".right > 321 && e.offsetParent !== null).slice(0, 3).map(e => e.outerHTML"
            ".slice(0, 120))")
        assert width <= 320, (state, width, wide)
    finally:
        page.evaluate("document.documentElement.style.fontSize = ''")
        if size:
            page.set_viewport_size(size)


def check(page: Page, state: str) -> None:
    audit(page, state)
    fits_at_200_percent(page, state)
