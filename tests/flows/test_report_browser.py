"""The dashboard opened in a real browser: headless Chromium (Debian's `chromium`)."""

import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from tests.transforms.test_report import (
    GENERATED_AT,
    HOSTILE_NAME,
    realistic_report_data,
    with_hostile_names,
)
from transforms.report import FUNNEL_COLOUR, SEGMENT_COLOURS, SOURCE_COLOURS, render_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
# Bars every chart paints: weekly leads (top source), funnel, RFM (champions).
CHART_COLOURS = {"weekly leads": SOURCE_COLOURS[0], "funnel": FUNNEL_COLOUR,
                 "RFM": SEGMENT_COLOURS[0]}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]


@pytest.fixture
def report_url(tmp_path) -> str:
    report = tmp_path / "report.html"
    data = with_hostile_names(realistic_report_data())
    report.write_text(render_report(data, generated_at=GENERATED_AT), encoding="utf-8")
    return report.as_uri()


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def png_pixels(data: bytes) -> list[bytes]:
    """Every pixel of an 8-bit RGB/RGBA PNG (what Chromium writes), as bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks: dict[bytes, list[bytes]] = {}
    position = 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunks.setdefault(kind, []).append(data[position + 8:position + 8 + length])
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB",
                                                                       chunks[b"IHDR"][0])
    assert (depth, colour_type in (2, 6), interlace) == (8, True, 0), "unexpected PNG layout"
    channels = 3 if colour_type == 2 else 4
    rows = unfilter(zlib.decompress(b"".join(chunks[b"IDAT"])), width * channels, height,
                    channels)
    return [bytes(row[i:i + 3]) for row in rows for i in range(0, len(row), channels)]


def unfilter(raw: bytes, stride: int, height: int, step: int) -> list[bytearray]:
    """Undo the PNG scanline filters (None, Sub, Up, Average, Paeth)."""
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 2:
            line = bytearray((value + up) & 255 for value, up in zip(line, previous, strict=True))
        elif kind:
            unfilter_line(kind, line, previous, step)
        rows.append(line)
        previous = line
    return rows


def unfilter_line(kind: int, line: bytearray, previous: bytearray, step: int) -> None:
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + ((left + up) >> 1)) & 255
        else:
            up_left = previous[i - step] if i >= step else 0
            line[i] = (line[i] + paeth(left, up, up_left)) & 255


def paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
    return (left, up, up_left)[distances.index(min(distances))]


def test_the_dashboard_paints_its_charts_without_script_errors(tmp_path, report_url):
    screenshot = tmp_path / "report.png"
    result = run_chromium(tmp_path, "--enable-logging=stderr", "--v=0",
                          f"--screenshot={screenshot}", "--window-size=1280,2000", report_url)
    colours = Counter(png_pixels(screenshot.read_bytes()))
    # A blank or unstyled page has a handful of colours; text and bars give hundreds.
    assert len(colours) > 200
    for chart, colour in CHART_COLOURS.items():
        assert colours[bytes.fromhex(colour.lstrip("#"))] > 1000, f"{chart} chart not painted"
    assert "Uncaught" not in result.stderr
    assert "Failed to load resource" not in result.stderr


def test_every_chart_is_in_the_rendered_page_and_names_stay_text(tmp_path, report_url):
    dom = run_chromium(tmp_path, "--dump-dom", report_url).stdout
    for chart in ("weekly-leads", "funnel", "rfm", "products"):
        assert f'<svg class="chart" data-chart="{chart}"' in dom
    assert "<script" not in dom and "<img" not in dom
    assert HOSTILE_NAME.replace("<", "&lt;").replace(">", "&gt;") in dom
