"""The SolaraViz dashboard: rendered in-process, and driven in a real browser
(Debian's chromium through Playwright) against ``crossmargin dashboard``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# ------------------------------------------------------------------ in-process


@pytest.fixture
def rendered():
    import solara
    from crossmargin.analysis import app

    @solara.component
    def Page():
        with solara.AppLayout():
            app.make_page()

    _box, rc = solara.render(Page(), handle_error=False)
    return rc


def _images(rc):
    import ipywidgets as w

    return [bytes(i.value) for i in rc.find(w.Image).widgets]


def _status(rc) -> str:
    import solara.widgets

    return next(
        h.widget.unsafe_innerHTML
        for h in rc.find(solara.widgets.HTML)
        if "conservation error" in (h.widget.unsafe_innerHTML or "")
    )


def test_render_step_and_components_update(rendered):
    import ipyvuetify as v

    rc = rendered
    before = _images(rc)
    assert len(before) >= 6  # prices, order book, margin, pools, leverage, cascade
    step = rc.find(v.Btn, children=["Step"])
    for _ in range(3):
        step.widget.click()
    after = _images(rc)
    assert sum(a != b for a, b in zip(before, after, strict=True)) >= 4
    assert "xm-step'>3<" in _status(rc)


def test_slider_and_reset_rebuild_the_model(rendered):
    import ipyvuetify as v

    rc = rendered
    rc.find(v.Btn, children=["Step"]).widget.click()
    slider = next(s for s in rc.find(v.Slider).widgets if s.label == "Leveraged traders")
    slider.v_model = 120
    rc.find(v.Btn, children=["Reset"]).widget.click()
    status = _status(rc)
    assert "xm-traders'>120<" in status and "xm-step'>0<" in status


# --------------------------------------------------------------------- browser


def _ensure_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, timeout=1200
        )
    if not Path(CHROMIUM).exists():
        if CI:
            pytest.fail("chromium could not be installed; the browser test must run under CI")
        pytest.skip("chromium not installed (needs root for apt-get)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossmargin.experiments.cli", "dashboard", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"dashboard did not start: {(tmp_path / 'dashboard.log').read_text()[-2000:]}")
    yield url
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_dashboard_in_a_real_browser(server, tmp_path):
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.locator(".xm-step").wait_for(timeout=90_000)
        page.wait_for_function(
            "document.querySelectorAll('main img, .v-main img, img').length >= 6", timeout=60_000
        )
        for label in (
            "Margin mode",
            "Leverage cap (×)",
            "Mark-price rule",
            "Collateral price source",
            "Makers' replenishment rate",
            "Leveraged traders",
            "Seed",
            "Shock size (index_jump)",
        ):
            assert page.get_by_text(label, exact=True).count() >= 1, label
        for name in ("BTC", "ETH", "SOL", "ALT"):  # the order book's market picker
            assert page.get_by_role("button", name=name).count() >= 1
        page.wait_for_timeout(500)
        shot0 = page.screenshot(path=str(tmp_path / "0-loaded.png"), full_page=True)
        srcs0 = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
        for k in range(1, 4):
            page.get_by_role("button", name="Step").click()
            page.wait_for_function(
                f"document.querySelector('.xm-step').textContent === '{k}'", timeout=30_000
            )
        page.wait_for_timeout(800)
        shot1 = page.screenshot(path=str(tmp_path / "1-stepped.png"), full_page=True)
        srcs1 = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
        assert shot0 != shot1
        assert sum(a != b for a, b in zip(srcs0, srcs1, strict=False)) >= 4  # the charts changed
        # A slider change plus Reset rebuilds the model with the new value.
        row = page.locator(".v-input").filter(has_text="Leveraged traders")
        thumb = row.locator(".v-slider__thumb-container, [role=slider]").first
        thumb.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.get_by_role("button", name="Reset").click()
        page.wait_for_function(
            "document.querySelector('.xm-step').textContent === '0'", timeout=30_000
        )
        page.wait_for_function(
            "document.querySelector('.xm-traders').textContent === '360'", timeout=30_000
        )
        page.screenshot(path=str(tmp_path / "2-reset.png"), full_page=True)
        browser.close()
    assert errors == []
