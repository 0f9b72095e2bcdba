"""The HTML report in a real browser: headless Chromium (Debian's
``chromium``) opens the file offline and takes a screenshot, and each chart's
bar colours are counted in it, so a chart that does not render fails.

Under CI a missing chromium fails the run instead of skipping it. The
README's picture is this screenshot, cropped to the calls and their reasons:
RECGUARD_REPORT_SCREENSHOT=docs/report.png makes it anew."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

from PIL import Image

from asterisk_recguard.commands.report import notice_words
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.report import gather, render_html
from asterisk_recguard.report.page import DAY_COLOURS, DELETION_COLOURS, REASON_COLOUR

from ..unit.report_support import fill_month, policy
from .conftest import _unavailable

NOW = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
# Enough pixels of a colour to be a bar, not a legend swatch (10 x 10) or a rule.
BAR_PIXELS = 1500


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        _unavailable("the report's screenshot test needs chromium (apt-get install chromium)")
    assert found
    return found


def screenshot(page: Path, png: Path, *, width: int = 1000, height: int = 2400) -> Image.Image:
    """``page`` as headless Chromium shows it, offline, with no profile of its own left behind."""
    profile = png.parent / "chromium-profile"
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={width},{height}",
         f"--screenshot={png}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    shutil.rmtree(profile, ignore_errors=True)
    return Image.open(png).convert("RGB")


def colour_counts(image: Image.Image) -> dict[str, int]:
    colours = image.getcolors(maxcolors=image.width * image.height) or []
    return {"#%02x%02x%02x" % rgb: count for count, rgb in colours}


# The README's picture: the headline figures, the calls per day and the reasons.
README_CROP = (0, 0, 1000, 1300)


def save_for_readme(png: Path) -> None:
    target = os.environ.get("RECGUARD_REPORT_SCREENSHOT")
    if target:
        picture = Image.open(png).convert("RGB").crop(README_CROP)
        picture.quantize(colors=64).save(target, optimize=True)


def report_page(tmp_path: Path, name: str, fill: bool) -> Path:
    with Ledger.create(tmp_path / f"{name}.sqlite3", recordings_dir=None,
                       seal_secret="the-seal-secret") as ledger:
        if fill:
            fill_month(ledger, policy())
        figures = gather(ledger, policy(), date(2026, 11, 1), date(2026, 11, 30), now=NOW,
                         read_words=notice_words(policy()))
    page = tmp_path / f"{name}.html"
    page.write_text(render_html(figures), encoding="utf-8")
    return page


def test_the_charts_render_in_chromium(tmp_path: Path) -> None:
    full = colour_counts(screenshot(report_page(tmp_path, "month", True), tmp_path / "month.png"))
    save_for_readme(tmp_path / "month.png")
    empty = colour_counts(screenshot(report_page(tmp_path, "empty", False), tmp_path / "empty.png"))
    bars = {
        "calls per day": list(DAY_COLOURS.values()),
        "reasons for not recording": [REASON_COLOUR],
        # The month's deletions: consent_withdrawn, no_transaction, retention_expired.
        "deletions per day": list(DELETION_COLOURS[:3]),
    }
    for chart, colours in bars.items():
        for colour in colours:
            # An empty month draws no bars, only legends: the difference is the bars.
            bars_drawn = full.get(colour, 0) - empty.get(colour, 0)
            assert bars_drawn >= BAR_PIXELS, f"{chart}: {bars_drawn} pixels of {colour}"
