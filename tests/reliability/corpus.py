"""A corpus of broken and hostile files for every ingest format, written into a folder.

:func:`build` takes valid files of every family (the generated sample town and the
real KLIC delivery in ``shared/data``) and writes broken variants of them into a
temporary folder: nothing binary is committed. Each :class:`Case` names the family,
the file and the options to load it with; every one of them must be refused with a
:class:`~layers.errors.GeobyError` that names the file, and must leave the
database as it was.

What is broken, per format:

- every format: truncated at 10 %, 50 % and 99 % of its bytes, zero bytes,
  a PNG under the file's name, random bytes;
- GeoTIFF: nodata only, NaN and infinite cells, an absurd geotransform, no CRS,
  one cell;
- LER and IMKL GML: wrong namespace, malformed XML, billion laughs, an external
  entity reading ``/etc/passwd`` (XXE), coordinates of 1e300 and 1e20, NaN and
  Infinity, an empty geometry, a polygon of 10^6 vertices, a bow-tie polygon,
  an unknown ``srsName``;
- KLIC ZIP: a member that inflates to more than 1 GiB, zip-slip member names,
  a nested ZIP, no GML inside, too many members;
- GeoJSON and GeoPackage: latin-1 or UTF-16 bytes where UTF-8 is declared,
  invalid JSON, NaN coordinates, a CRS member that contradicts the coordinates;
- CSV and XLSX tables: UTF-16 text, a wrong delimiter, a missing column, text
  in a numeric column, thousands of columns, dates out of range.
"""

from __future__ import annotations

import io
import json
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KLIC = "klic-imkl2/Levering_22C001967_3.zip"
GI_NAME = "GI_gebiedsinformatielevering_22C001967_3_V2.xml"
TRUNCATIONS = (0.10, 0.50, 0.99)
#: a member larger than this after inflation is a zip bomb (the real delivery: 14 MB)
BOMB_BYTES = (1 << 30) + (1 << 20)
SECRET = "/etc/passwd"
LER_NS = "http://data.gov.dk/schemas/LER/2/gml"
BIG_POLYGON_VERTICES = 1_000_000


@dataclass(frozen=True)
class Case:
    """One broken file and how to load it.

    Parameters
    ----------
    family
        The ingest family (``terrain``, ``climate``, ...).
    name
        What is broken, for messages (``water.gpkg truncated 50%``).
    path
        The broken file.
    extra
        Family options (``--option key=value``).
    owner
        ``--owner`` (utilities).
    """

    family: str
    name: str
    path: Path
    extra: dict[str, str] = field(default_factory=dict)
    owner: str | None = None


def _png() -> bytes:
    """A valid 1x1 PNG: the wrong magic for every format geoby reads."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))  # fmt: skip


class Writer:
    """Writes the cases of one family into ``out/<family>/``."""

    def __init__(self, out: Path, family: str, rng: random.Random) -> None:
        self.dir = out / family
        self.dir.mkdir(parents=True, exist_ok=True)
        self.family = family
        self.rng = rng
        self.cases: list[Case] = []

    def add(self, name: str, filename: str, data: bytes | None = None, **kw) -> Path:
        """Write ``data`` to a fresh sub-folder (so names may repeat) and add the case."""
        folder = self.dir / f"{len(self.cases):03d}"
        folder.mkdir()
        path = folder / filename
        if data is not None:
            path.write_bytes(data)
        self.cases.append(Case(self.family, name, path, **kw))
        return path

    def generic(self, base: Path, *, rows: bool = False, **kw) -> None:
        """Truncated, zero-byte, PNG and random-bytes variants of a valid file.

        For a delimited table (``rows``) the cut is moved to one byte into the next
        row: a table cut exactly between rows is well-formed and cannot be told
        from a shorter file (there is no length or checksum in CSV), so the test
        cuts where a reader can see it, in the middle of a record.
        """
        data = base.read_bytes()
        for fraction in TRUNCATIONS:
            at = int(len(data) * fraction)
            if rows:
                after = data.find(b"\n", at, len(data) - 2)
                at = (after if after >= 0 else data.rindex(b"\n", 0, at)) + 2
            cut = data[:at]
            self.add(f"{base.name} truncated at {fraction:.0%}", base.name, cut, **kw)
        self.add(f"{base.name} zero bytes", base.name, b"", **kw)
        self.add(f"{base.name} is a PNG", base.name, _png(), **kw)
        noise = self.rng.randbytes(min(max(len(data) // 10, 4096), 1 << 20))
        self.add(f"{base.name} random bytes", base.name, noise, **kw)


# -- terrain ----------------------------------------------------------------------------


def _write_tif(path: Path, values: np.ndarray, *, transform, crs, nodata=-9999.0) -> None:
    import rasterio

    profile = {"driver": "GTiff", "width": values.shape[1], "height": values.shape[0],
               "count": 1, "dtype": "float32", "transform": transform, "nodata": nodata}  # fmt: skip
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype("float32"), 1)


def terrain(w: Writer, town: Path) -> None:
    import rasterio
    from rasterio.transform import Affine

    tif = sorted((town / "terrain").glob("*.tif"))[0]
    w.generic(tif)
    w.generic(town / "terrain" / "DTM_1km_6172_722_10m.xyz")
    with rasterio.open(tif) as src:
        values, transform, crs = src.read(1), src.transform, src.crs
    variants: dict[str, Callable[[Path], None]] = {
        "nodata only": lambda p: _write_tif(
            p, np.full(values.shape, -9999.0), transform=transform, crs=crs),
        "NaN and infinite cells": lambda p: _write_tif(
            p, np.where(np.indices(values.shape)[0] % 2 == 0, np.nan, np.inf),
            transform=transform, crs=crs, nodata=None),
        "absurd geotransform (origin 1e20, 1e-9 m cells)": lambda p: _write_tif(
            p, values, transform=Affine(1e-9, 0, 1e20, 0, -1e-9, 1e20), crs=crs),
        "absurd geotransform (1e300 m cells)": lambda p: _write_tif(
            p, values, transform=Affine(1e300, 0, 0, 0, -1e300, 0), crs=crs),
        "no CRS": lambda p: _write_tif(p, values, transform=transform, crs=None),
        "1x1 nodata cell": lambda p: _write_tif(
            p, np.full((1, 1), -9999.0), transform=transform, crs=crs),
        "1x1 NaN cell without nodata": lambda p: _write_tif(
            p, np.full((1, 1), np.nan), transform=transform, crs=crs, nodata=None),
    }  # fmt: skip
    for name, write in variants.items():
        write(w.add(f"GeoTIFF {name}", tif.name))
    text = (town / "terrain" / "DTM_1km_6172_722_10m.xyz").read_text().splitlines()
    xyz = {
        "NaN heights": [re.sub(r"\S+$", "NaN", line) for line in text],
        "coordinates of 1e300": [f"1e300 1e300 {i}.0" for i in range(100)],
        "text in a column": [*text[:50], "722000 6172000 high", *text[50:]],
    }
    for name, lines in xyz.items():
        w.add(f"XYZ {name}", "DTM_bad.xyz", ("\n".join(lines) + "\n").encode())


# -- tables (climate, waste) ---------------------------------------------------------------


def tables(w: Writer, base: Path, numeric: str, date: str | None, required: str | None = None,
           **kw) -> None:  # fmt: skip
    """Broken variants of a valid CSV table; ``numeric``, ``date`` and ``required`` name
    the columns to spoil (``required``, default ``numeric``, is the one left out)."""
    w.generic(base, rows=True, **kw)
    text = base.read_text(encoding="utf-8")
    lines = text.splitlines()
    header = lines[0].split(",")
    w.add(f"{base.name} as UTF-16", base.name, text.encode("utf-16"), **kw)
    w.add(f"{base.name} with a latin-1 byte in a value", base.name,
          text.replace(lines[1], lines[1] + "\xe6", 1).encode("latin-1", "replace"), **kw)  # fmt: skip
    w.add(f"{base.name} delimited by |", base.name, text.replace(",", "|").encode(), **kw)
    gone = header.index(required or numeric)
    dropped = [",".join(c for i, c in enumerate(line.split(",")) if i != gone) for line in lines]
    w.add(f"{base.name} without column {header[gone]}", base.name, "\n".join(dropped).encode(),
          **kw)  # fmt: skip
    k = header.index(numeric)
    spoiled = [lines[0]] + [",".join("lots" if i == k and n == 3 else c
                                     for i, c in enumerate(line.split(",")))
                            for n, line in enumerate(lines[1:], start=1)]  # fmt: skip
    w.add(f"{base.name} with text in {numeric}", base.name, "\n".join(spoiled).encode(), **kw)
    # Not here: a row missing its trailing fields. pandas reads them as empty, so it
    # loads where those fields are optional (see the report of issue 10).
    ragged = [lines[0], *lines[1:3], lines[3] + ",1,2,3", *lines[4:]]
    w.add(f"{base.name} with a row of extra fields", base.name, "\n".join(ragged).encode(), **kw)
    wide = ",".join([lines[0], *(f"extra_{i}" for i in range(20_000))])
    w.add(f"{base.name} with 20000 extra columns", base.name,
          "\n".join([wide, *(line + "," * 20_000 for line in lines[1:20])]).encode(), **kw)  # fmt: skip
    if date:
        d = header.index(date)
        for bad in ("9999-99-99T99:99:99Z", "0000-01-01T00:00:00Z", "99999-01-01T00:00:00Z"):
            rows = [lines[0]] + [",".join(bad if i == d and n == 2 else c
                                          for i, c in enumerate(line.split(",")))
                                 for n, line in enumerate(lines[1:], start=1)]  # fmt: skip
            w.add(f"{base.name} with date {bad}", base.name, "\n".join(rows).encode(), **kw)


def workbook(w: Writer, base: Path, numeric: str, **kw) -> None:
    """An XLSX of a valid CSV, truncated and with text in a numeric column."""
    import pandas as pd

    frame = pd.read_csv(base, dtype=str)
    good = w.dir / f"{base.stem}-valid.xlsx"
    frame.to_excel(good, index=False)
    w.generic(good, **kw)
    frame.loc[2, numeric] = "lots"
    frame.to_excel(w.add(f"{base.stem}.xlsx with text in {numeric}", good.name, **kw), index=False)


# -- vectors (water, energy, waste, utilities) ------------------------------------------


def _feature_collection(features: list[dict], crs: str | None = None) -> dict:
    doc: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return doc


def vectors(w: Writer, gpkg: Path, **kw) -> None:
    """Broken GeoPackage and GeoJSON variants of a valid GeoPackage's first layer."""
    import geopandas as gpd
    import pyogrio

    w.generic(gpkg, **kw)
    layer = pyogrio.list_layers(gpkg)[0][0]
    frame = gpd.read_file(gpkg, layer=layer, max_features=40)
    geojson = json.loads(frame.to_crs(4326).to_json(drop_id=True))
    name = f"{gpkg.stem}.geojson"
    text = json.dumps(geojson, ensure_ascii=False)
    w.add(f"{name} invalid JSON", name, text[: len(text) // 2].encode() + b"}}]", **kw)
    # a string property with a latin-1 byte: declared (RFC 8259) UTF-8, it is not
    first = geojson["features"][0]
    key = next((k for k, v in first["properties"].items() if isinstance(v, str)), None)
    if key:
        spoiled = json.loads(text)
        spoiled["features"][0]["properties"][key] = "@@LATIN1@@"
        body = json.dumps(spoiled).encode().replace(b"@@LATIN1@@", b"K\xf8ge \xe6bler")
        w.add(f"{name} with latin-1 bytes in a UTF-8 string", name, body, **kw)
    w.add(f"{name} in UTF-16", name, text.encode("utf-16"), **kw)
    w.add(f"{name} with a BOM and invalid JSON", name, b"\xef\xbb\xbf" + text.encode()[:-3], **kw)
    nan = json.loads(text)
    nan["features"][0]["geometry"] = {"type": "Point", "coordinates": ["NaN", "NaN"]}
    body = json.dumps(nan).replace('["NaN", "NaN"]', "[NaN, NaN]")
    w.add(f"{name} with NaN coordinates", name, body.encode(), **kw)
    inf = json.loads(text)
    coords = inf["features"][1]["geometry"]["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    coords[0] = 1e300
    w.add(f"{name} with a coordinate of 1e300", name, json.dumps(inf).encode(), **kw)
    utm = json.loads(frame.to_json(drop_id=True))
    w.add(f"{name} declaring EPSG:4326 around UTM coordinates", name,
          json.dumps(_feature_collection(utm["features"], "urn:ogc:def:crs:EPSG::4326")).encode(),
          **kw)  # fmt: skip
    w.add(f"{name} declaring an unknown CRS", name,
          json.dumps(_feature_collection(utm["features"], "EPSG:999999")).encode(), **kw)  # fmt: skip
    empty = json.loads(text)
    empty["features"][0]["geometry"] = {"type": "Polygon", "coordinates": []}
    w.add(f"{name} with an empty geometry", name, json.dumps(empty).encode(), **kw)
    # a GeoPackage whose features are in another CRS than its layer declares
    moved = frame.copy().set_crs(4326, allow_override=True)
    path = w.add(f"{gpkg.name} declaring EPSG:4326 around UTM coordinates", gpkg.name, **kw)
    moved.to_file(path, layer=layer, driver="GPKG")


def big_polygon_geojson(w: Writer, name: str, **kw) -> None:
    """One valid polygon of 10^6 vertices (a circle) in UTM 32N."""
    angles = np.linspace(0, 2 * np.pi, BIG_POLYGON_VERTICES, endpoint=False)
    ring = np.column_stack([721_500 + 400 * np.cos(angles), 6_171_500 + 400 * np.sin(angles)])
    ring = np.vstack([ring, ring[:1]]).round(3).tolist()
    doc = _feature_collection([{"type": "Feature", "properties": {"name": "huge"},
                                "geometry": {"type": "Polygon", "coordinates": [ring]}}],
                              "urn:ogc:def:crs:EPSG::25832")  # fmt: skip
    w.add(f"{name} polygon of 10^6 vertices", name, json.dumps(doc).encode(), **kw)


# -- LER GML ------------------------------------------------------------------------------


def _ler_line(n: int, geometry: str) -> str:
    return (f'<ler:ledningMember><ler:Gasledning gml:id="L-h3-{n}"><ler:driftsstatus>i drift'
            f"</ler:driftsstatus><ler:fareklasse>farlig</ler:fareklasse><ler:id>h3-{n}</ler:id>"
            f"<ler:navn>&NAME;</ler:navn><ler:geometri>{geometry}</ler:geometri>"
            "<ler:medietype>naturgas</ler:medietype></ler:Gasledning></ler:ledningMember>\n")  # fmt: skip


def _line(coords: str, srs: str = "http://www.opengis.net/def/crs/EPSG/0/25832") -> str:
    return f'<gml:LineString srsName="{srs}"><gml:posList>{coords}</gml:posList></gml:LineString>'


def _polygon(coords: str) -> str:
    return ('<gml:Polygon srsName="http://www.opengis.net/def/crs/EPSG/0/25832"><gml:exterior>'
            f"<gml:LinearRing><gml:posList>{coords}</gml:posList></gml:LinearRing></gml:exterior>"
            "</gml:Polygon>")  # fmt: skip


def _laughs(prefix: str) -> str:
    """Ten entities, each ten of the one before: 10^10 copies of "lol" if expanded."""
    return "".join(
        f'<!ENTITY {prefix}{i} "{(f"&{prefix}{i - 1};") * 10 if i else "lol"}">' for i in range(10)
    )


def ler_doc(features: list[str], *, doctype: str = "", ns: str = LER_NS) -> bytes:
    """A LER answer holding ``features`` (and a valid first line), with a DOCTYPE."""
    entity = doctype or '<!DOCTYPE ler:Graveforespoergselssvar [<!ENTITY NAME "gas">]>'
    good = _ler_line(0, _line("721500.0 6171600.0 721560.0 6171690.0"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + entity + "\n"
        f'<ler:Graveforespoergselssvar xmlns:ler="{ns}" '
        'xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="svar-h3" schemaVersion="2.1">\n'
        "<ler:id>h3</ler:id>\n" + good + "".join(features) + "</ler:Graveforespoergselssvar>\n"
    ).encode()


def ler(w: Writer, town: Path) -> None:
    base = town / "utilities" / "ostkyst-gas.gml"
    w.generic(base)
    ok = "721500.0 6171700.0 721600.0 6171800.0"
    line = _ler_line
    cases = {
        "wrong namespace": ler_doc([line(1, _line(ok))], ns="http://example.com/not-ler/2/gml"),
        "malformed XML": ler_doc([line(1, _line(ok)).replace("</ler:geometri>", "")]),
        "billion laughs": ler_doc([line(1, _line(ok))], doctype=(
            f'<!DOCTYPE x [{_laughs("lol")}<!ENTITY NAME "&lol9;">]>')),
        "external entity (XXE) reading /etc/passwd": ler_doc([line(1, _line(ok))], doctype=(
            f'<!DOCTYPE x [<!ENTITY NAME SYSTEM "file://{SECRET}">]>')),
        "external parameter entity (XXE)": ler_doc([line(1, _line(ok))], doctype=(
            f'<!DOCTYPE x [<!ENTITY % p SYSTEM "file://{SECRET}"> %p; <!ENTITY NAME "x">]>')),
        "coordinates of 1e300": ler_doc([line(1, _line("1e300 1e300 721600.0 6171800.0"))]),
        "coordinates of 1e20": ler_doc([line(1, _line("1e20 6171700.0 721600.0 6171800.0"))]),
        "NaN coordinates": ler_doc([line(1, _line("NaN NaN 721600.0 6171800.0"))]),
        "Infinity coordinates": ler_doc([line(1, _line("721500.0 Infinity 721600.0 -inf"))]),
        "text coordinates": ler_doc([line(1, _line("721500.0 north 721600.0 6171800.0"))]),
        "odd number of ordinates": ler_doc([line(1, _line("721500.0 6171700.0 721600.0"))]),
        "an empty geometry": ler_doc([line(1, _line(""))]),
        "a geometry without elements": ler_doc([line(1, "<gml:LineString/>")]),
        "a one-point line": ler_doc([line(1, _line("721500.0 6171700.0"))]),
        "a bow-tie polygon": ler_doc([line(1, _polygon(
            "721500 6171700 721600 6171800 721600 6171700 721500 6171800 721500 6171700"))]),
        "an unknown srsName": ler_doc([line(1, _line(ok, "urn:ogc:def:crs:EPSG::999999"))]),
        "an srsName that is not a CRS": ler_doc([line(1, _line(ok, "EPSG:4326'; DROP TABLE x"))]),
        "lon/lat in a UTM srsName": ler_doc([line(1, _line("10.5 55.7 10.6 55.8"))]),
    }  # fmt: skip
    for name, data in cases.items():
        w.add(f"LER GML {name}", "h3-ler.gml", data)
    angles = np.linspace(0, 2 * np.pi, BIG_POLYGON_VERTICES, endpoint=False)
    xy = np.column_stack([721_500 + 300 * np.cos(angles), 6_171_500 + 300 * np.sin(angles)])
    coords = " ".join(f"{x:.2f} {y:.2f}" for x, y in np.vstack([xy, xy[:1]]))
    w.add("LER GML polygon of 10^6 vertices", "h3-ler.gml", ler_doc([line(1, _polygon(coords))]))


# -- IMKL GML and KLIC ZIP ----------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _bomb(path: Path, size: int) -> None:
    """A ZIP whose delivery member inflates to ``size`` zero bytes (about 1 MB on disk)."""
    zero = bytes(1 << 24)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"22C001967_3/{GI_NAME}", "w", force_zip64=True) as member:
            member.write(b'<?xml version="1.0"?><gml:FeatureCollection xmlns:gml="x"><!--')
            left = size
            while left > 0:
                member.write(zero[: min(left, len(zero))])
                left -= len(zero)


def imkl(w: Writer, shared: Path, *, bomb: bool = True) -> None:
    klic = shared / KLIC
    with zipfile.ZipFile(klic) as archive:
        gi = archive.read(f"22C001967_3/{GI_NAME}")
    text = gi.decode("utf-8")
    first = re.search(r"<gml:posList[^>]*>([^<]+)</gml:posList>", text)
    assert first, "the KLIC delivery has a posList"

    def coords(value: str) -> bytes:
        return (text[: first.start(1)] + value + text[first.end(1) :]).encode()

    head = text.index("<gml:FeatureCollection")
    xxe = text[:head] + f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{SECRET}">]>' + text[head:]
    xxe = xxe.replace("<imkl:leveringsvolgnummer>3<", "<imkl:leveringsvolgnummer>&xxe;<", 1)
    bombed = (text[:head] + f"<!DOCTYPE x [{_laughs('l')}]>" + text[head:]).replace(
        "<imkl:leveringsvolgnummer>3<", "<imkl:leveringsvolgnummer>&l9;<", 1
    )
    n = len(first.group(1).split())
    nan = " ".join(["NaN"] * n)
    gml = {
        "truncated at 50%": gi[: len(gi) // 2],
        # Not here: IMKL under another namespace. It is then plain GML, which the
        # utilities family reads with GDAL by design (--owner names the owner).
        "malformed XML": text.replace("</gml:featureMember>", "</gml:featureMembr>", 3).encode(),
        "XXE reading /etc/passwd": xxe.encode(),
        "billion laughs": bombed.encode(),
        "coordinates of 1e300": coords(" ".join(["1e300"] * n)),
        "NaN coordinates": coords(nan),
        "an empty posList": coords(""),
        "an unknown srsName": text.replace("EPSG::28992", "EPSG::999999").encode(),
    }
    for name, data in gml.items():
        w.add(f"IMKL GML {name}", GI_NAME, data)
    w.generic(klic)
    root = "22C001967_3/"
    members = {
        "zip-slip member names": {f"../../{GI_NAME}": gi, "../../../etc/h3-slip": b"x"},
        "an absolute member name": {f"/tmp/{GI_NAME}": gi},
        "a nested ZIP": {root + "inner.zip": _zip({root + GI_NAME: gi})},
        "no GML inside": {root + "LI_22C001967_3.pdf": b"%PDF-1.4\n%%EOF\n"},
        "a delivery that is not XML": {root + GI_NAME: b"\x00\x01" * 1000},
        "too many members": {
            root + GI_NAME: gi, **{f"{root}bronnen/{i:06d}.pdf": b"" for i in range(20_001)}},
    }  # fmt: skip
    for name, content in members.items():
        w.add(f"KLIC ZIP with {name}", klic.name, _zip(content))
    if bomb:
        _bomb(w.add("KLIC ZIP bomb (a member inflating to 1 GiB)", klic.name), BOMB_BYTES)


# -- NGSI-LD --------------------------------------------------------------------------------


def ngsi(w: Writer) -> None:
    def entity(i: int, **over) -> dict:
        e = {"id": f"urn:ngsi-ld:WasteContainer:h3:{i}", "type": "WasteContainer",
             "location": {"type": "GeoProperty",
                          "value": {"type": "Point", "coordinates": [10.5, 55.7]}},
             "fillingLevel": {"type": "Property", "value": 0.5,
                              "observedAt": "2024-03-01T10:00:00Z"}}  # fmt: skip
        e.update(over)
        return e

    def point(coords) -> dict:
        return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coords}}

    cases = {
        "invalid JSON": json.dumps([entity(1)])[:-10].encode(),
        "NaN coordinates": json.dumps([entity(1, location=point(["@", "@"]))])
        .replace('["@", "@"]', "[NaN, NaN]").encode(),
        "coordinates of 1e300": json.dumps([entity(1, location=point([1e300, 1e300]))]).encode(),
        "a location that is not a geometry": json.dumps(
            [entity(1, location=point("here"))]).encode(),
        "a filling level that is text": json.dumps([entity(1, fillingLevel={
            "type": "Property", "value": "full", "observedAt": "2024-03-01T10:00:00Z"})]).encode(),
        "a time out of range": json.dumps([entity(1, fillingLevel={
            "type": "Property", "value": 0.5, "observedAt": "99999-01-01T00:00:00Z"})]).encode(),
        "UTF-16": json.dumps([entity(1)]).encode("utf-16"),
        "latin-1 bytes in an id": json.dumps([entity(1, id="@@")]).encode().replace(
            b"@@", b"urn:ngsi-ld:WasteContainer:K\xf8ge"),
        "an entity that is a list of lists": b"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
        "deeply nested JSON": b"[" * 100_000 + b"]" * 100_000,
    }  # fmt: skip
    for name, data in cases.items():
        w.add(f"NGSI-LD {name}", "containers.json", data)


# -- the corpus ------------------------------------------------------------------------------


def build(out: Path, town: Path, shared: Path, *, full: bool, seed: int = 7) -> list[Case]:
    """Write the broken files of every family under ``out``; return the cases.

    Parameters
    ----------
    out
        An empty folder (a pytest ``tmp_path``).
    town
        The generated sample town (valid files of every family).
    shared
        ``shared/data`` (the real KLIC delivery).
    full
        Also the costly cases (the 1 GiB zip bomb, the 10^6-vertex polygons).
    """
    rng = random.Random(seed)
    cases: list[Case] = []

    def family(name: str) -> Writer:
        writer = Writer(out, name, rng)
        return writer

    w = family("terrain")
    terrain(w, town)
    cases += w.cases
    w = family("climate")
    tables(w, town / "climate" / "idf_table.csv", "depth_mm", None, required="duration_min")
    tables(w, town / "climate" / "rain_events.csv", "depth_mm", "start", required="start")
    workbook(w, town / "climate" / "idf_table.csv", "depth_mm")
    cases += w.cases
    w = family("water")
    vectors(w, town / "water.gpkg")
    if full:
        big_polygon_geojson(w, "lakes.geojson")
    cases += w.cases
    w = family("energy")
    vectors(w, town / "buildings.gpkg")
    cases += w.cases
    w = family("waste")
    tables(w, town / "waste" / "collections.csv", "weight_kg", "time", required="bin_id")
    workbook(w, town / "waste" / "fleet.csv", "capacity_kg")
    vectors(w, town / "waste" / "bins.gpkg")
    ngsi(w)
    cases += w.cases
    w = family("utilities")
    ler(w, town)
    vectors(w, town / "utilities" / "nordfiber.gpkg", owner="Nordfiber A/S")
    imkl(w, shared, bomb=full)
    cases += w.cases
    return cases
