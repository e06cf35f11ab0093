"""Regenerate docs/img/report.png: run `qtrader demo` into a temporary folder, open its
report.html in headless Chromium (tests/browser.py) and keep the top of the page.

    make docs-screenshot        # or: .venv/bin/python scripts/report_screenshot.py
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser import open_in_browser  # noqa: E402

OUT = ROOT / "docs" / "img" / "report.png"
HEIGHT = 1350  # the title, the charts and the statistics


def main() -> int:
    from PIL import Image

    # a relative --out inside the checkout (git-ignored), so the title shows a short path
    (ROOT / "data" / "demo-runs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "data" / "demo-runs") as tmp:
        out = Path(tmp).relative_to(ROOT)
        subprocess.run(
            [sys.executable, "-m", "qtrader", "demo", "--out", str(out)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        (page,) = Path(tmp).glob("demo-*/report.html")
        seen = open_in_browser(page)
        shutil.rmtree(tmp, ignore_errors=True)
    if seen.requests != [page.resolve().as_uri()] or seen.errors:
        print(f"the report fetched {seen.requests} or erred {seen.errors}", file=sys.stderr)
        return 1
    image = Image.open(io.BytesIO(seen.page_png))
    image.crop((0, 0, image.width, min(HEIGHT, image.height))).save(OUT, optimize=True)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
