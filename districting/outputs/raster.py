"""Draw a counting district's small map as a PNG for its workbook sheet, with Pillow.

The map shows the district's shape, the walking route through the units to visit, the
units not on it, the starting point, the visits' numbers and a scale bar. It is drawn
at twice the size and halved, which smooths the edges, so a national plan's tens of
thousands of maps take milliseconds each (matplotlib needs tens of milliseconds for
the same picture). The same data always give the same bytes.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Width of the map in pixels; its height follows the district's shape (0.4–1.4 × width).
WIDTH_PX = 480
#: Drawing happens at this multiple of the final size, then is scaled down.
SUPERSAMPLE = 2
#: Pixels per typographic point at the final size (96 dpi).
PX_PER_PT = 96 / 72

SHAPE_FILL, SHAPE_EDGE = (255, 244, 214), (138, 109, 31)
ROUTE = (31, 78, 154, 204)
STOP, START, IDLE_EDGE = (198, 40, 40), (46, 125, 50), (85, 85, 85)


@dataclass(frozen=True)
class MapData:
    """A CD's map in its own metres: shape rings, route, labelled places."""

    rings: list[np.ndarray]  # closed rings; exteriors counter-clockwise, holes clockwise
    route: np.ndarray  # (k, 2) visited units in route order
    labels: list[tuple[float, float, str]]  # one label per place of visited units
    first: tuple[float, float] | None
    idle: np.ndarray  # (m, 2) units not visited
    bounds: tuple[float, float, float, float]
    spacing: float | None  # median distance from a labelled place to its nearest one, m


@lru_cache(maxsize=16)
def _font(size_px: int, *, bold: bool) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's own fonts, so every machine draws the same glyphs."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name),
                              size_px)


def map_png(data: MapData, *, bar_m: float, bar_label: str) -> bytes:
    """The map as PNG bytes; ``bar_m`` is the scale bar's length, ``bar_label`` its text."""
    minx, miny, maxx, maxy = data.bounds
    dx, dy = max(maxx - minx, 1.0), max(maxy - miny, 1.0)
    aspect = min(max(dy / dx, 0.4), 1.4)
    width, height = WIDTH_PX, round(WIDTH_PX * aspect)
    s = SUPERSAMPLE
    pad = 0.04 * max(dx, dy)
    # The drawing area (96% of the picture) holds the view at one scale in x and y.
    left, right, bottom, top = minx - pad, maxx + pad, miny - 2.5 * pad, maxy + pad
    scale = min(0.96 * width / (right - left), 0.96 * height / (top - bottom)) * s
    x0 = (width * s - (right - left) * scale) / 2 - left * scale
    y0 = (height * s + (top - bottom) * scale) / 2 + bottom * scale

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        return list(zip((x0 + points[:, 0] * scale).tolist(),
                        (y0 - points[:, 1] * scale).tolist(), strict=True))

    image = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(image, "RGBA")
    line = max(1, round(1.2 * PX_PER_PT * s))
    for ring in data.rings:  # holes (clockwise) are cut back out in white
        draw.polygon(px(ring), fill=SHAPE_FILL if _counter_clockwise(ring) else "white")
    for ring in data.rings:
        draw.line(px(ring), fill=SHAPE_EDGE, width=line, joint="curve")
    if len(data.route) > 1:
        draw.line(px(data.route), fill=ROUTE, width=max(1, round(PX_PER_PT * s)), joint="curve")
    _dots(draw, px(data.idle), diameter_pt=math.sqrt(12), fill="white", edge=IDLE_EDGE, s=s)
    _dots(draw, px(data.route), diameter_pt=math.sqrt(14), fill=STOP, edge=None, s=s)
    if data.first is not None:
        _dots(draw, px(np.array(data.first)), diameter_pt=6.0, fill=START, edge="white", s=s)
    points_per_m = scale / s / PX_PER_PT
    gap = math.inf if data.spacing is None else data.spacing * points_per_m
    font = _font(round(min(max(0.5 * gap, 5.0), 7.0) * PX_PER_PT * s), bold=True)
    beside = 2.5 * PX_PER_PT * s
    for (x, y), (_, _, label) in zip(px(np.array([(a, b) for a, b, _ in data.labels])),
                                     data.labels, strict=True):
        draw.text((x + beside, y - beside), label, fill="black", font=font, anchor="ls")
    bar_y = miny - 1.8 * pad
    (bx0, by), (bx1, _) = px(np.array([[minx, bar_y], [minx + bar_m, bar_y]]))
    draw.line([(bx0, by), (bx1, by)], fill="black", width=max(1, round(1.5 * PX_PER_PT * s)))
    draw.text((bx1, by), f"  {bar_label}", fill="black", anchor="lm",
              font=_font(round(7 * PX_PER_PT * s), bold=False))
    buffer = io.BytesIO()
    image.reduce(s).save(buffer, format="PNG", compress_level=1)  # fast; exact colours
    return buffer.getvalue()


def _counter_clockwise(ring: np.ndarray) -> bool:
    """Whether a closed ring turns counter-clockwise (an exterior, once oriented)."""
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) >= 0


def _dots(draw: ImageDraw.ImageDraw, centres: list[tuple[float, float]], *, diameter_pt: float,
          fill: str | tuple[int, int, int], edge: str | tuple[int, int, int] | None,
          s: int) -> None:
    """Round markers of ``diameter_pt`` points, with a thin edge if ``edge`` is given."""
    r = diameter_pt * PX_PER_PT * s / 2
    rim = max(1, round(0.7 * PX_PER_PT * s)) if edge is not None else 0
    for x, y in centres:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=edge, width=rim)
