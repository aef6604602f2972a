"""Every file the toolkit reads, read here.

Registers, OpenStreetMap extracts, graph files, plans and Stage-2 records:
:mod:`~districting.io.register` reads a Stage-1 register in any of its formats,
:mod:`~districting.io.osm` turns an OpenStreetMap extract into a register, and
:mod:`~districting.io.graphs` reads a districting graph file. Writing stays in
:mod:`districting.outputs`.

This package is the lowest layer: it imports :mod:`districting.errors` and third-party
libraries, with two exceptions for now: the OSM importer shares the register layout and
writer of :mod:`districting.synth`, and a polygon graph file gets its rook adjacency
from :func:`districting.graph.polygon_contiguity`. Nothing is imported here, so
importing ``districting.io`` costs nothing.
"""
