"""The workbook's small CD map drawn with Pillow: what it shows, and the same bytes each time."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from districting.outputs.raster import START, STOP, WIDTH_PX, MapData, map_png


def square_with_hole() -> MapData:
    outer = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]], dtype=float)  # ccw
    hole = np.array([[40, 40], [40, 60], [60, 60], [60, 40], [40, 40]], dtype=float)  # cw
    route = np.array([[10.0, 10.0], [90.0, 10.0]])
    return MapData(rings=[outer, hole], route=route, labels=[(10.0, 10.0, "1"), (90.0, 10.0, "2")],
                   first=(10.0, 10.0), idle=np.zeros((0, 2)), bounds=(0.0, 0.0, 100.0, 100.0),
                   spacing=80.0)


def pixel_of(image: Image.Image, x: float, y: float, data: MapData) -> tuple[int, ...]:
    """The colour at a point in metres, with the map's own fit (see ``map_png``)."""
    minx, miny, maxx, maxy = data.bounds
    pad = 0.04 * max(maxx - minx, maxy - miny)
    left, right, bottom, top = minx - pad, maxx + pad, miny - 2.5 * pad, maxy + pad
    scale = min(0.96 * image.width / (right - left), 0.96 * image.height / (top - bottom))
    x0 = (image.width - (right - left) * scale) / 2 - left * scale
    y0 = (image.height + (top - bottom) * scale) / 2 + bottom * scale
    return image.getpixel((round(x0 + x * scale), round(y0 - y * scale)))


def test_the_map_shows_the_shape_its_hole_the_stops_and_the_start() -> None:
    data = square_with_hole()
    png = map_png(data, bar_m=20.0, bar_label="20 m")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width == WIDTH_PX and image.height == WIDTH_PX
    assert pixel_of(image, 25, 75, data) == (255, 244, 214)  # inside the district
    assert pixel_of(image, 50, 50, data) == (255, 255, 255)  # its hole stays blank
    assert pixel_of(image, 90, 10, data) == STOP  # the second stop
    assert pixel_of(image, 10, 10, data) == START  # the start covers the first stop
    label_area = np.asarray(image)[:, :, :3]
    assert (label_area.sum(axis=2) < 60).sum() > 50  # black text: labels and scale bar


def test_the_same_map_gives_the_same_bytes_without_stamps() -> None:
    first = map_png(square_with_hole(), bar_m=20.0, bar_label="20 м")
    assert first == map_png(square_with_hole(), bar_m=20.0, bar_label="20 м")
    assert first.startswith(b"\x89PNG") and b"tIME" not in first and b"Software" not in first


def test_a_flat_district_gets_a_flat_map() -> None:
    flat = MapData(rings=[], route=np.array([[0.0, 0.0], [1000.0, 50.0]]), labels=[],
                   first=(0.0, 0.0), idle=np.array([[500.0, 20.0]]),
                   bounds=(0.0, 0.0, 1000.0, 50.0), spacing=None)
    image = Image.open(io.BytesIO(map_png(flat, bar_m=200.0, bar_label="200 m")))
    assert image.height == round(WIDTH_PX * 0.4)
