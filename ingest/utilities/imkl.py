"""Dutch IMKL GML: KLIC deliveries (IMKL 2.0, also whole delivery ZIPs) and IMKL2015.

A KLIC delivery (``GI_gebiedsinformatielevering_*.xml``, alone or inside the
delivery ZIP, which is read without unpacking) describes each owner's
networks (``Utiliteitsnet``: theme and type), the owners (``Beheerder``, linked
to their networks by ``Belanghebbende``), the cables and pipes (whose
geometry is the ``UtilityLink`` they refer to by ``net:link``), the
appurtenances, extra geometries, precaution zones
(``AanduidingEisVoorzorgsmaatregel``) and the dig polygon (``Graafpolygoon``).

Why not GDAL: its GML driver drops the ``xlink:href`` references, so every
cable loses its network (theme, owner) and its link (geometry). The file is
read with :mod:`ingest.utilities.gml`; because references point anywhere in
the document, its features are held as flat records (about 1 KB each, 10
MB for the 14 MB sample delivery) until the references are resolved.

Mapping:

- ``owner``: the network's ``Beheerder`` organisation name (via
  ``Belanghebbende``), else the ``Beheerder`` whose ``bronhoudercode`` prefixes
  the id (``nl.imkl-KL1031.``), else ``--owner`` (IMKL2015 files name no
  owner), else the file is refused naming the record;
- ``utility_type``/``subtype`` from the network's ``thema`` (``laagspanning``
  electricity/low_voltage, ``gasHogeDruk`` gas/high_pressure,
  ``rioolVrijverval`` sewer/gravity, ``datatransport`` telecom,
  ``buisleidingGevaarlijkeInhoud`` oil_chemicals...), else its
  ``utilityNetworkType``; a sewer's ``sewerWaterType`` refines the subtype;
- ``hazard_class`` is data (``very_dangerous``) for networks with a
  precaution requirement (an ``AanduidingEisVoorzorgsmaatregel`` in the
  network) or hazardous contents, else the model's rule;
- ``accuracy_class`` from ``nauwkeurigheidXY`` (30cm, 50cm, 100cm,
  onbekend) where given, else NULL; ``depth_m`` is NULL for links (IMKL
  gives depth as separate ``DiepteTovMaaiveld`` points, loaded as
  ``depth_marker`` points with their depth and reference); the network's
  ``standaardDieptelegging`` is kept as ``standard_depth_m`` in attributes,
  never used as a depth;
- lines: every feature with ``net:link`` (cables, pipes, ducts, sleeves,
  cable beds); points: appurtenances, cabinets, masts, manholes, technical
  buildings, depth markers, extra detail info; areas: extra geometries and
  precaution zones (with their precaution attachment's text);
- not loaded, counted in the report's warnings: drawing aids (``Annotatie``,
  ``Maatvoering``, ``EigenTopografie``) and attachments (PDFs, the map
  image);
- the dig polygon goes to ``utilities_dig_areas`` with the KLIC number,
  reference, requester and request date.

Coordinates are RD New (EPSG:28992); the loader reprojects them and refuses
coordinates that cannot be RD (IMKL2015's lon/lat links), naming the records.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import shapely
from shapely.geometry import MultiLineString

from ingest.loader import Part
from ingest.utilities import model
from ingest.utilities.frames import FileCrs, Seen, chunks, unit_scale
from ingest.utilities.gml import Feature, iter_features
from layers.errors import InvalidInput

THEMES = {
    "laagspanning": ("electricity", "low_voltage"), "middenspanning": ("electricity", "medium_voltage"),
    "hoogspanning": ("electricity", "high_voltage"),
    "landelijkhoogspanningsnet": ("electricity", "high_voltage"),
    "gaslagedruk": ("gas", "low_pressure"), "gashogedruk": ("gas", "high_pressure"),
    "water": ("water", None), "rioolvrijverval": ("sewer", "gravity"),
    "rioolonderoverofonderdruk": ("sewer", "pressure"), "datatransport": ("telecom", None),
    "warmte": ("district_heating", None), "buisleidinggevaarlijkeinhoud": ("oil_chemicals", None),
    "petrochemie": ("oil_chemicals", None), "overig": ("other", None), "wees": ("other", None),
}  # fmt: skip
NETWORK_TYPES = {"electricity": "electricity", "oilgaschemical": "oil_chemicals",
                 "sewer": "sewer", "telecommunications": "telecom", "thermal": "district_heating",
                 "water": "water", "crosstheme": "other"}  # fmt: skip
HAZARDOUS_THEMES = {"buisleidinggevaarlijkeinhoud", "petrochemie"}
LINE_KINDS = {"Elektriciteitskabel": "cable", "Telecommunicatiekabel": "cable", "Mantelbuis": "sleeve",
              "Kabelbed": "cable_bed", "Duct": "duct"}  # fmt: skip
POINT_KINDS = {"Kast": "cabinet", "Mast": "mast", "Mangat": "manhole", "Put": "manhole",
               "TechnischGebouw": "technical_building", "Toren": "tower",
               "DiepteTovMaaiveld": "depth_marker", "DiepteNAP": "depth_marker",
               "ExtraDetailinfo": "extra_detail_info"}  # fmt: skip
APPURTENANCE_KINDS = {"mof": "joint", "geulmof": "joint", "afsluiter": "valve",
                      "firehydrant": "hydrant", "brandkraan": "hydrant", "kolk": "gully",
                      "eindkap": "end_cap", "aftakzadel": "tapping_saddle", "tstuk": "tee",
                      "verloopstuk": "reducer", "diameterovergang": "reducer",
                      "overgangsstuk": "adapter", "materiaalovergang": "adapter",
                      "gasstopper": "gas_stopper", "meetpunt": "measuring_point",
                      "kbmeetpunt": "measuring_point", "sifon": "siphon", "overig": "other",
                      "onbekend": None}  # fmt: skip
SEWER_WATER = {"combined": "combined", "sanitary": "foul", "storm": "storm", "reclaimed": "foul",
               "industrial": "foul"}  # fmt: skip
DRAWING_AIDS = {"Annotatie", "Maatvoering", "EigenTopografie"}
METADATA = {"GebiedsinformatieLevering", "GebiedsinformatieAanvraag", "Belanghebbende", "Belang",
            "Beheerder", "Utiliteitsnet", "Bijlage", "EisVoorzorgsmaatregelBijlage", "UtilityLink",
            "Graafpolygoon", "UtilityNetwork"}  # fmt: skip
_MEASURES = ("pipeDiameter", "pressure", "nominalVoltage", "operatingVoltage", "dieptePeil")
_DROP = {*_MEASURES, *(f"{m}_uom" for m in _MEASURES)}
_OWNER_CODE = re.compile(r"^nl\.imkl-([A-Za-z0-9]+)\.")
_DEPTH_POINTS = {"bovenkant": "top", "onderkant": "bottom", "midden": "centre"}


def sniff(head: bytes) -> bool:
    """Whether the start of a file is IMKL GML."""
    return b"geostandaarden.nl/imkl" in head


#: Largest GML member of a KLIC ZIP read, after inflation. The delivery of a whole
#: street holds a 14 MB GI document; 1 GiB is far beyond a real one and refuses a zip
#: bomb (a few MB that inflate to tens of GB) before it is inflated.
MAX_MEMBER_BYTES = 1 << 30
#: Most members a KLIC ZIP may hold (a delivery has its GI document, a PDF per owner
#: and some images: tens to hundreds); more is not a delivery and costs memory to list.
MAX_MEMBERS = 10_000


def open_archive(path: Path) -> zipfile.ZipFile:
    """A ZIP checked for the hazards of untrusted archives, before anything is inflated.

    Raises
    ------
    InvalidInput
        A broken ZIP, more than :data:`MAX_MEMBERS` members, or a member name that
        is absolute or climbs out of the archive (``../../etc/x``, zip-slip); geoby
        never extracts members to disk, but such a name marks a hostile archive.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"{path.name} is not a readable ZIP: {exc}", record=path.name) from exc
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        archive.close()
        raise InvalidInput(f"{path.name} holds {len(infos):,} members, more than the "
                           f"{MAX_MEMBERS:,} a KLIC delivery may have", record=path.name)  # fmt: skip
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or ".." in name.split("/") or re.match(r"^[A-Za-z]:", name):
            archive.close()
            raise InvalidInput(f"{path.name}: member name {info.filename[:200]!r} is absolute or "
                               "leaves the archive; refusing the ZIP", record=path.name)  # fmt: skip
    return archive


class _Bounded(io.RawIOBase):
    """A member's stream that refuses to give more than ``limit`` bytes (a lying header)."""

    def __init__(self, stream, limit: int, name: str) -> None:
        self.stream, self.left, self.name = stream, limit, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.stream.read(min(len(buffer), self.left + 1))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InvalidInput(f"{self.name}: the ZIP member is corrupt: {exc}",
                               record=self.name) from exc  # fmt: skip
        self.left -= len(data)
        if self.left < 0:
            raise InvalidInput(f"{self.name} inflates to more than {MAX_MEMBER_BYTES:,} bytes; "
                               "refusing it as a zip bomb", record=self.name)  # fmt: skip
        buffer[: len(data)] = data
        return len(data)


def documents(path: Path) -> Iterator[tuple[str, object]]:
    """``(name, binary stream)`` of each IMKL document: the file, or the GI XML in a KLIC ZIP.

    Raises
    ------
    InvalidInput
        A ZIP refused by :func:`open_archive`, without a delivery, or whose delivery
        inflates to more than :data:`MAX_MEMBER_BYTES`.
    """
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as stream:
            yield path.name, stream
        return
    with open_archive(path) as archive:
        infos = [i for i in archive.infolist() if i.filename.lower().endswith((".xml", ".gml"))
                 and "gebiedsinformatielevering" in Path(i.filename).name.lower()]  # fmt: skip
        if not infos:
            raise InvalidInput(f"{path.name}: this ZIP holds no KLIC delivery "
                               "(GI_gebiedsinformatielevering_*.xml)", record=path.name)  # fmt: skip
        for info in infos:
            name = f"{path.name}:{Path(info.filename).name}"
            if info.file_size > MAX_MEMBER_BYTES:
                raise InvalidInput(f"{name} inflates to {info.file_size:,} bytes, more than the "
                                   f"{MAX_MEMBER_BYTES:,} allowed; refusing it as a zip bomb",
                                   record=name)  # fmt: skip
            with archive.open(info) as member:
                yield name, io.BufferedReader(_Bounded(member, MAX_MEMBER_BYTES, name))


@dataclass
class Network:
    """A ``Utiliteitsnet`` resolved: what it carries and who owns it."""

    utility_type: str
    subtype: str | None
    theme: str | None
    owner: str | None
    owner_code: str | None
    hazardous: bool
    precautions: list[str] = field(default_factory=list)
    description: str | None = None
    standard_depth_m: float | None = None


class Delivery:
    """The features of one file, read once, resolved into rows per target layer."""

    def __init__(self, path: Path, options, seen: Seen) -> None:
        self.path, self.options, self.seen = path, options, seen
        self.file_crs = FileCrs(path.name, options.crs)

    @cached_property
    def rows(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {
            layer.id: [] for layer in (*model.ASSET_LAYERS, model.DIG_AREAS)
        }
        for name, stream in documents(self.path):
            features = list(iter_features(stream, name=name))
            for layer_id, row in _Document(features, self.path.name, self.options, self.seen,
                                           self.file_crs).rows():  # fmt: skip
                out[layer_id].append(row)
        for kind, count in sorted(self.seen.skipped.items()):
            self.seen.notes.append(f"{self.path.name}: {count:,} {kind} features not loaded "
                                   "(drawing aids, not assets)")  # fmt: skip
        return out

    def chunks(self, layer_id: str, columns) -> Iterator:
        yield from chunks(iter(self.rows[layer_id]), columns, self.file_crs)


def parts(path: Path, options, seen: Seen) -> Iterator[Part]:
    """Lines, points, areas and dig areas of one IMKL file or KLIC ZIP."""
    delivery = Delivery(path, options, seen)
    for layer in (*model.ASSET_LAYERS, model.DIG_AREAS):
        spec = layer.spec(owner=options.owner, licence=options.licence,
                          attribution=options.extra.get("attribution"))  # fmt: skip
        yield Part(spec=spec, chunks=delivery.chunks(layer.id, spec.columns))


class _Document:
    """One IMKL document: indexes of its features and the rows they give."""

    def __init__(self, features: list[Feature], source: str, options, seen: Seen,
                 file_crs: FileCrs) -> None:  # fmt: skip
        self.source, self.options, self.seen, self.file_crs = source, options, seen, file_crs
        self.features = features
        self.by_id = {f.gml_id: f for f in features if f.gml_id}
        ns = next((f.namespace for f in features if "geostandaarden.nl/imkl" in f.namespace), "")
        self.format = "IMKL2015" if "/2015/" in ns else "IMKL2.0"
        self.owners_by_code = {str(f.first("bronhoudercode")): str(f.first("organisatie.naam"))
                               for f in features if f.tag == "Beheerder"
                               and f.first("organisatie.naam")}  # fmt: skip
        self.attachments = {str(f.first("eisVoorzorgsmaatregel")): f.props for f in features
                            if f.tag == "EisVoorzorgsmaatregelBijlage"}  # fmt: skip
        self.networks = self._networks()
        self.outlines: dict[str, list[str]] = {}
        for f in features:
            for ref in f.hrefs.get("extraGeometrie", []):
                self.outlines.setdefault(ref, []).append(f.gml_id or f.tag)

    def _networks(self) -> dict[str, Network]:
        stake: dict[str, str] = {}
        for f in self.features:
            if f.tag == "Belanghebbende" and f.href("netbeheerder"):
                beheerder = self.by_id.get(f.href("netbeheerder"))
                name = beheerder.first("organisatie.naam") if beheerder else None
                for net in f.hrefs.get("utiliteitsnet", []):
                    if name:
                        stake[net] = str(name)
        precautions: dict[str, list[str]] = {}
        for f in self.features:
            if f.tag == "AanduidingEisVoorzorgsmaatregel" and f.href("inNetwork"):
                code = str(f.first("eisVoorzorgsmaatregel") or "unnamed")
                precautions.setdefault(f.href("inNetwork"), []).append(code)
        networks = {}
        for f in self.features:
            if f.tag not in ("Utiliteitsnet", "UtilityNetwork") or not f.gml_id:
                continue
            theme = model.key(f.first("thema") or "")
            utility, sub = THEMES.get(theme, (None, None))
            if utility is None:
                utility = NETWORK_TYPES.get(model.key(f.first("utilityNetworkType") or ""), "other")
            code = self._code(f.gml_id)
            depth = f.first("standaardDieptelegging")
            networks[f.gml_id] = Network(
                utility_type=utility, subtype=sub, theme=f.first("thema"),
                owner=stake.get(f.gml_id) or self.owners_by_code.get(code or ""),
                owner_code=code, hazardous=theme in HAZARDOUS_THEMES,
                precautions=sorted(set(precautions.get(f.gml_id, []))),
                description=f.first("omschrijving"),
                standard_depth_m=model.positive(depth),
            )  # fmt: skip
        return networks

    @staticmethod
    def _code(gml_id: str | None) -> str | None:
        match = _OWNER_CODE.match(gml_id or "")
        return match.group(1) if match else None

    def rows(self) -> Iterator[tuple[str, dict]]:
        for f in self.features:
            if f.tag in DRAWING_AIDS:
                self.seen.skip(f.tag)
                continue
            if f.tag == "Graafpolygoon":
                yield model.DIG_AREAS.id, self._dig_area(f)
                continue
            if f.tag in METADATA or (not f.hrefs.get("link") and f.geometry is None):
                continue
            layer, row = self._asset(f)
            self.seen.owners.add(row["owner"])
            yield layer, row

    def _network(self, f: Feature, record: str) -> Network:
        ref = f.href("inNetwork")
        network = self.networks.get(ref or "")
        if network is None:
            code = self._code(f.gml_id)
            network = Network("other", None, None, self.owners_by_code.get(code or ""), code, False)
        if network.owner is None:
            network.owner = self.options.owner
        if network.owner is None:
            raise InvalidInput(
                f"{self.source}: record {record} (network {ref or 'none'}) has no owner: the file "
                "names no Beheerder for it; give the owning organisation with --owner ORG",
                record=f"record {record}", field="owner",
            )  # fmt: skip
        return network

    def _geometry(self, f: Feature, record: str):
        refs = f.hrefs.get("link", [])
        if not refs:
            return f.geometry, []
        links = []
        for ref in refs:
            link = self.by_id.get(ref)
            if link is None or link.geometry is None:
                raise InvalidInput(f"{self.source}: record {record} refers to utility link {ref}, "
                                   "which the file does not hold (or holds without geometry)",
                                   record=f"record {record}", field="link")  # fmt: skip
            self.file_crs.check(link.srs, record)
            links.append(link)
        geoms = [link.geometry for link in links]
        geom = geoms[0] if len(geoms) == 1 else MultiLineString(
            [g for geom in geoms for g in getattr(geom, "geoms", [geom])])  # fmt: skip
        return geom, links

    def _asset(self, f: Feature) -> tuple[str, dict]:
        record = f.gml_id or f.tag
        network = self._network(f, record)
        geom, links = self._geometry(f, record)
        if not links:
            self.file_crs.check(f.srs, record)
        dimension = int(shapely.get_dimensions(geom)) if geom is not None else 1
        layer = {0: model.POINTS, 1: model.LINES, 2: model.AREAS}[dimension]
        measure = _Measures(f, self.source, record)
        sub = network.subtype
        if network.utility_type == "sewer" and f.first("sewerWaterType"):
            sub = SEWER_WATER.get(model.key(f.first("sewerWaterType")), sub)
        kind = self._kind(f, dimension, network)
        depth, reference = None, None
        if f.tag == "DiepteTovMaaiveld":
            depth = measure.depth("dieptePeil")
            point = _DEPTH_POINTS.get(model.key(f.first("diepteAangrijpingspunt") or ""), "line")
            reference = f"ground level to {point} of the line (IMKL DiepteTovMaaiveld)"
        accuracy = f.first("nauwkeurigheidXY") or next(
            (link.first("nauwkeurigheidXY") for link in links if link.first("nauwkeurigheidXY")),
            None,
        )
        dangerous = network.hazardous or bool(network.precautions) or kind == "precaution_zone"
        attributes = {"feature_type": f.tag, "network": f.href("inNetwork"),
                      "network_theme": network.theme, "network_description": network.description,
                      "owner_code": network.owner_code, "standard_depth_m": network.standard_depth_m,
                      "precautions": network.precautions or None,
                      **{k: v for k, v in f.props.items() if k not in _DROP}}  # fmt: skip
        if links:
            attributes["links"] = [{"id": link.gml_id, **link.props} for link in links]
        if kind == "precaution_zone":
            attributes["precaution"] = self.attachments.get(str(f.first("eisVoorzorgsmaatregel")))
        if f.gml_id in self.outlines:
            attributes["outline_of"] = self.outlines[f.gml_id]
        row = {
            "_record": record, "geometry": geom, "asset_id": f.gml_id or record,
            "owner": network.owner, "utility_type": network.utility_type, "subtype": sub,
            "asset_kind": kind, "hazard_class": "very_dangerous" if dangerous else None,
            "depth_m": depth, "depth_reference": reference if depth is not None else None,
            "accuracy_class": model.accuracy_class(accuracy, source=self.source, record=record,
                                                   field="nauwkeurigheidXY"),
            "status": model.status(f.first("currentStatus")),
            "vertical_position": model.vertical_position(f.first("verticalPosition")),
            "diameter_mm": measure.positive("pipeDiameter", "diameter_mm", "mm"),
            "material": _material(f.first("buismateriaalType")),
            "voltage_kv": measure.positive("nominalVoltage", "voltage_kv", "v")
            or measure.positive("operatingVoltage", "voltage_kv", "v"),
            "pressure_bar": measure.positive("pressure", "pressure_bar", "bar"),
            "installed_year": model.year(f.first("validFrom")),
            "source_format": self.format,
            "attributes": {k: v for k, v in attributes.items() if v is not None},
        }  # fmt: skip
        return layer.id, model.finish(row, source=self.source, record=record)

    @staticmethod
    def _kind(f: Feature, dimension: int, network: Network) -> str | None:
        if f.tag == "AanduidingEisVoorzorgsmaatregel":
            return "precaution_zone"
        if f.tag == "ExtraGeometrie":
            return "extra_geometry"
        if f.tag == "Appurtenance":
            raw = str(f.first("appurtenanceType") or "")
            return APPURTENANCE_KINDS.get(model.key(raw), _snake(raw) or None)
        if f.tag in POINT_KINDS:
            return POINT_KINDS[f.tag]
        if f.tag in LINE_KINDS:
            return LINE_KINDS[f.tag]
        if dimension == 1 and f.hrefs.get("link"):
            return "pipe" if f.tag.endswith("leiding") or "Pijp" in f.tag else "cable"
        return _snake(f.tag)

    def _dig_area(self, f: Feature) -> dict:
        record = f.gml_id or f.tag
        self.file_crs.check(f.srs, record)
        request = next((g for g in self.features if g.tag == "GebiedsinformatieAanvraag"), None)
        delivery = next((g for g in self.features if g.tag == "GebiedsinformatieLevering"), None)
        props = request.props if request else {}
        single = sum(g.tag == "Graafpolygoon" for g in self.features) == 1
        number = props.get("klicMeldnummer")
        parts = [props.get("aanvraagSoort"), props.get("soortWerkzaamheden"),
                 props.get("locatieOmschrijving")]  # fmt: skip
        return {
            "_record": record, "geometry": f.geometry,
            "request_id": f"KLIC {number}" if number and single else f.gml_id,
            "reference": props.get("referentie"),
            "requester": props.get("aanvrager.organisatie.naam"),
            "requested_at": props.get("aanvraagDatum"),
            "description": "; ".join(str(p) for p in parts if p) or None,
            "source_format": self.format,
            "attributes": {"dig_polygon": f.props, "request": props,
                           "delivery": delivery.props if delivery else None},
        }  # fmt: skip


class _Measures:
    """Numeric properties of one feature in the model's units."""

    def __init__(self, f: Feature, source: str, record: str) -> None:
        self.f, self.source, self.record = f, source, record

    def _scale(self, name: str, quantity: str, default: str) -> float:
        return unit_scale(self.f.props.get(f"{name}_uom"), quantity, default, source=self.source,
                          record=self.record, field=name)  # fmt: skip

    def positive(self, name: str, quantity: str, default: str) -> float | None:
        value = self.f.first(name)
        return (
            None
            if value is None
            else model.positive(value, scale=self._scale(name, quantity, default))
        )

    def depth(self, name: str) -> float | None:
        value = self.f.first(name)
        if value is None:
            return None
        return model.depth(value, source=self.source, record=self.record, field=name,
                           scale=self._scale(name, "length_m", "m"))  # fmt: skip


def _material(value: object) -> str | None:
    text = None if model.missing(value) else str(value)
    return None if text is None or model.key(text) == "onbekend" else text


def _snake(text: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()
