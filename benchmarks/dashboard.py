"""The dashboard's Play in a real browser: model steps rendered per second.

Starts ``crossmargin dashboard`` on a free loopback port, opens it in Debian's chromium
through Playwright (the flags this machine needs), presses Play with one step per frame,
and reads the step counter the page shows, every second, for ``--seconds``. What counts
is what the browser displays (status and eight charts redrawn each frame), not what the
server computed.

Run: ``.venv/bin/python benchmarks/dashboard.py [--seconds 20] [--width 1400]``
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    from crossmargin.analysis.browser import launch
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "crossmargin.experiments.cli", "dashboard", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": args.width, "height": 1000})
            page.goto(url)
            page.locator(".xm-step").wait_for(timeout=90_000)
            page.wait_for_function(
                "document.querySelectorAll('.xm-chart canvas').length >= 8", timeout=90_000
            )
            steps = int(page.inner_text(".xm-steps"))
            page.get_by_role("button", name="Play").click()
            page.wait_for_timeout(1000)
            samples = []
            t0, s0 = time.perf_counter(), int(page.inner_text(".xm-step"))
            while time.perf_counter() - t0 < args.seconds:
                page.wait_for_timeout(1000)
                s = int(page.inner_text(".xm-step"))
                samples.append((time.perf_counter() - t0, s))
                if s >= steps:
                    break
            t1, s1 = samples[-1]
            rows = page.eval_on_selector_all(".xm-chart", "els => els.map(e => +e.dataset.rows)")
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    rates = [(b - a) / (tb - ta) for (ta, a), (tb, b) in itertools.pairwise(samples)]
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"dashboard scenario, {args.width} px wide, one step per frame, {t1:.1f} s of Play")
    print(f"steps rendered: {s0} -> {s1} of {steps}: {(s1 - s0) / t1:.1f} steps/s")
    if rates:
        print(f"per second: min {min(rates):.1f}, median {sorted(rates)[len(rates) // 2]:.1f}")
    print(f"rows held by the charts at the end: {rows}")


if __name__ == "__main__":
    main()
