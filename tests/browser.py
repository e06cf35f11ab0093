"""A real headless Chromium (Debian's package, /usr/bin/chromium) driven by Playwright's Python
package. Playwright never downloads a browser here: it launches the system one.

`make test` installs chromium with apt-get when it is missing, as it does redis-server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("QTRADER_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# everything the page shows, as the browser rendered it: each element carrying a JSON path
CELLS_JS = """() => Array.from(document.querySelectorAll('[data-key], [data-col]')).map(e => {
  const box = e.getBoundingClientRect();
  const a = {text: e.innerText, visible: box.width > 0 && box.height > 0};
  for (const n of e.getAttributeNames()) if (n.startsWith('data-')) a[n] = e.getAttribute(n);
  return a;
})"""


@dataclass
class Opened:
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    title: str = ""
    cells: list[dict] = field(default_factory=list)
    chart_png: bytes = b""
    page_png: bytes = b""


def chromium_or_skip() -> str:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        message = f"{CHROMIUM} is not installed (`make test` installs chromium from Debian)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def open_in_browser(
    page_file: Path, width: int = 1100, full_page_png: Path | None = None
) -> Opened:
    """Open a local file in headless Chromium with a fresh profile; record every request,
    failed request, console error and page error; read the rendered cells; screenshot."""
    from playwright.sync_api import sync_playwright

    seen = Opened()
    profile = tempfile.mkdtemp(prefix="qtrader-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=chromium_or_skip(),
                headless=True,
                args=FLAGS,
                viewport={"width": width, "height": 900},
                offline=True,
            )
            try:
                page = context.new_page()
                page.on("request", lambda r: seen.requests.append(r.url))
                page.on("requestfailed", lambda r: seen.failed.append(r.url))
                page.on(
                    "console",
                    lambda m: seen.errors.append(m.text) if m.type == "error" else None,
                )
                page.on("pageerror", lambda e: seen.errors.append(str(e)))
                page.goto(page_file.resolve().as_uri(), wait_until="load")
                page.wait_for_load_state("networkidle")
                seen.title = page.title()
                seen.cells = page.evaluate(CELLS_JS)
                chart = page.query_selector("#chart")
                seen.chart_png = chart.screenshot() if chart else b""
                seen.page_png = page.screenshot(full_page=True)
                if full_page_png is not None:
                    full_page_png.write_bytes(seen.page_png)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return seen


def pixel_counts(png: bytes) -> dict[str, int]:
    """How many pixels are not background, and how many are of each chart colour."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    counts = {"total": image.width * image.height, "ink": 0, "blue": 0, "red": 0, "green": 0}
    for (r, g, b), n in _colours(image):
        if min(r, g, b) < 235:
            counts["ink"] += n
        if b > 150 and r < 80 and 90 < g < 150:  # #1f77b4, the equity line
            counts["blue"] += n
        if (r > 180 and g < 110 and b < 110) or (r > 220 and 150 < g < 200 and 150 < b < 200):
            counts["red"] += n  # #d62728 and its 35 % fill
        if g > 130 and r < 80 and b < 80:  # #2ca02c
            counts["green"] += n
    return counts


def _colours(image):
    return [(colour, n) for n, colour in image.getcolors(maxcolors=1 << 24)]
