"""The headless browser the dashboard's tests and benchmark drive: Debian's chromium,
launched through Playwright (which cannot download its own browser here) with the flags
this machine needs."""

from __future__ import annotations

from typing import Any

__all__ = ["CHROMIUM", "FLAGS", "launch"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Any) -> Any:
    """Debian's chromium, headless, from a started ``sync_playwright()``.

    Examples:
        >>> FLAGS[0], CHROMIUM
        ('--headless', '/usr/bin/chromium')
    """
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
