"""The renderers of a dig answer: LER-structured GML and the PDF/PNG map sheet.

Pure functions of an :class:`~dig_coordination.model.Answer`, so no database:
the answer is built here the way ``answers.load_answer`` builds it, around a
60 x 40 m dig at (720000, 6170000) in EPSG:25832 with three owners.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import shapely
from lxml import etree
from matplotlib.collections import LineCollection
from PIL import Image
from shapely.geometry import LineString, MultiLineString, Point, box

from dig_coordination import render_gml, render_map
from dig_coordination.model import Action, Answer, Conflict, DigRequest, OwnerState
from ingest.pipelines import IngestOptions
from ingest.utilities import detect, ler
from ingest.utilities.frames import Seen
from layers.errors import InvalidInput

X0, Y0 = 720000.0, 6170000.0
NOW = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
NS = {
    "dig": render_gml.NS_DIG,
    "ler": render_gml.NS_LER,
    "gml": render_gml.NS_GML,
    "xlink": render_gml.NS_XLINK,
    "xsi": render_gml.NS_XSI,
}
RADIUS, HOFOR, TDC = "Radius Elnet A/S", "HOFOR Vand København", "TDC Net"
MARK = Action(
    "on_site_marking",
    "Radius marks the 10 kV cable on site before digging",
    True,
    notice_working_days=2,
    rule_id=11,
)
HAND = Action("hand_dig", "Hand dig within 1 m of the cable", False, rule_id=12)
CONTACT = Action("contact_owner", "Call HOFOR 3 working days ahead", False, 3, 21)


def _line(*xy: tuple[float, float]) -> LineString:
    return LineString([(X0 + x, Y0 + y) for x, y in xy])


def _conflict(
    fid: int,
    owner: str,
    utility: str,
    geometry,
    *,
    layer: str = "utilities_lines",
    hazard: str = "not_dangerous",
    depth: float | None = 1.0,
    accuracy: str | None = "0.5",
    kind: str = "pipe",
    subtype: str | None = None,
    distance: float = 0.0,
    actions: list[Action] | None = None,
    **measures: float,
) -> Conflict:
    return Conflict(
        layer=layer,
        asset_fid=fid,
        asset_id=f"{utility}-{fid:03d}",
        owner=owner,
        utility_type=utility,
        subtype=subtype,
        asset_kind=kind,
        hazard_class=hazard,
        status="in_service",
        depth_m=depth,
        depth_reference="ground level to top of line" if depth is not None else None,
        accuracy_class=accuracy,
        diameter_mm=measures.get("diameter_mm"),
        voltage_kv=measures.get("voltage_kv"),
        pressure_bar=measures.get("pressure_bar"),
        distance_m=distance,
        geometry=geometry,
        actions=actions or [],
    )


def _request(**kw) -> DigRequest:
    doc = {
        "id": "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
        "reference": "DR-2025-000042",
        "organisation": "Graveskov Entreprise ApS",
        "kind": "normal",
        "status": "answered",
        "geometry": box(X0, Y0, X0 + 60, Y0 + 40),
        "start_date": date(2025, 3, 10),
        "end_date": date(2025, 3, 21),
        "work_types": ["machine_excavation", "hand_digging"],
        "depth_m": 1.2,
        "description": "Service trench for a new house connection",
        "contact": {"name": "Jens Graver", "phone": "+45 12 34 56 78"},
        "buffer_m": 5.0,
        "created_at": NOW,
        "valid_until": datetime(2025, 4, 21, tzinfo=UTC),
    }
    return DigRequest(**(doc | kw))


def _conflicts() -> list[Conflict]:
    return [
        _conflict(
            1,
            RADIUS,
            "electricity",
            _line((-5, 20), (65, 20)),
            hazard="very_dangerous",
            kind="cable",
            subtype="medium_voltage",
            depth=0.9,
            voltage_kv=10.0,
            actions=[MARK, HAND],
        ),
        # a lighting cable of unknown depth, clipped by the answer area into two parts
        _conflict(
            2,
            RADIUS,
            "electricity",
            MultiLineString(
                [[(X0 + 10, Y0 - 5), (X0 + 10, Y0 + 12)], [(X0 + 10, Y0 + 28), (X0 + 10, Y0 + 45)]]
            ),
            kind="cable",
            subtype="street_lighting",
            depth=None,
            accuracy=None,
            actions=[HAND],
        ),
        _conflict(
            3,
            HOFOR,
            "water",
            _line((-5, 5), (65, 8)),
            diameter_mm=110.0,
            depth=1.5,
            accuracy="0.25",
            actions=[CONTACT],
        ),
        _conflict(
            4, HOFOR, "sewer", _line((30, -5), (31, 45)), subtype="foul", depth=2.4, accuracy="1"
        ),
        _conflict(
            5,
            HOFOR,
            "district_heating",
            _line((62, -5), (63, 45)),
            hazard="dangerous",
            subtype="distribution",
            depth=0.8,
            distance=2.0,
            accuracy="2",
        ),
        _conflict(
            6,
            HOFOR,
            "water",
            Point(X0 + 40, Y0 + 12),
            layer="utilities_points",
            kind="valve",
            depth=1.1,
        ),
        _conflict(
            7,
            HOFOR,
            "sewer",
            box(X0 + 48, Y0 + 30, X0 + 52, Y0 + 34),
            layer="utilities_areas",
            kind="pumping_station",
            depth=None,
        ),
        _conflict(
            8,
            TDC,
            "telecom",
            _line((-4, 35), (64, 36)),
            kind="cable",
            subtype="fibre",
            depth=0.4,
            accuracy=">2",
        ),
        _conflict(9, TDC, "telecom", _line((-4, 37), (64, 38)), kind="duct", depth=None),
    ]


def _owners() -> list[OwnerState]:
    return [
        OwnerState(HOFOR, "automatic", "answered", 5, answered_at=NOW),
        OwnerState(
            RADIUS,
            "manual",
            "pending",
            2,
            due_at=datetime(2025, 3, 3, 11, 30, tzinfo=UTC),
            notified_at=NOW,
        ),
        OwnerState(TDC, "automatic", "answered", 2, answered_at=NOW, marking_required=True),
    ]


@pytest.fixture
def answer() -> Answer:
    return Answer(_request(), _conflicts(), _owners(), [], NOW)


def _xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _features(root: etree._Element) -> list[etree._Element]:
    return root.xpath("ler:ledningMember/* | ler:ledningskomponentMember/*", namespaces=NS)


def _text(elem: etree._Element, path: str) -> str | None:
    found = elem.find(path, NS)
    return None if found is None else found.text


# -- GML ------------------------------------------------------------------------------


def test_gml_namespaces_counts_and_ids(answer):
    root = _xml(render_gml.render_gml(answer))
    assert root.tag == f"{{{render_gml.NS_DIG}}}AnswerPackage"
    assert root.nsmap["ler"] == "http://data.gov.dk/schemas/LER/2/gml"
    assert root.nsmap["gml"] == "http://www.opengis.net/gml/3.2"
    features = _features(root)
    assert len(features) == len(answer.conflicts) == 9
    assert len(root.findall("ler:ledningMember", NS)) == 7
    assert len(root.findall("ler:ledningskomponentMember", NS)) == 2
    assert {_text(f, "ler:id") for f in features} == {c.asset_id for c in answer.conflicts}
    gml_ids = root.xpath("//@gml:id", namespaces=NS)
    assert len(gml_ids) == len(set(gml_ids)), "gml:id values must be unique"
    assert all(re.fullmatch(r"[A-Za-z_][\w.\-]*", i) for i in gml_ids)


def test_gml_feature_types_follow_ler_names(answer):
    root = _xml(render_gml.render_gml(answer))
    kinds = {_text(f, "ler:id"): etree.QName(f).localname for f in _features(root)}
    assert kinds == {
        "electricity-001": "Elledning",
        "electricity-002": "Elledning",
        "water-003": "Vandledning",
        "sewer-004": "Afloebsledning",
        "district_heating-005": "TermiskLedning",
        "water-006": "Vandkomponent",
        "sewer-007": "Afloebskomponent",
        "telecom-008": "Telekommunikationsledning",
        "telecom-009": "Foeringsroer",
    }
    duct = root.xpath("//ler:Foeringsroer", namespaces=NS)[0]
    assert _text(duct, "ler:forsyningsart") == "telekommunikation"


def test_gml_owner_packages_link_their_assets(answer):
    root = _xml(render_gml.render_gml(answer))
    packages = {
        p.get(f"{{{render_gml.NS_GML}}}id"): p
        for p in root.findall("dig:ownerPackage/dig:OwnerPackage", NS)
    }
    owners = {_text(p, "dig:owner"): p for p in packages.values()}
    assert set(owners) == {RADIUS, HOFOR, TDC}
    assert _text(owners[HOFOR], "dig:assetCount") == "5"
    assert _text(owners[HOFOR], "dig:depthUnknownCount") == "1"
    assert _text(owners[RADIUS], "dig:answerType") == "udtaget til manuel behandling"
    assert _text(owners[RADIUS], "dig:blockingCount") == "1"
    assert _text(owners[TDC], "dig:answerType") == (
        "udtaget til påvisning - ledningsoplysninger udleveret"
    )
    assert _text(owners[HOFOR], "dig:answerType") == "ledningsoplysninger udleveret"
    for f in _features(root):
        href = f.find("dig:ownerPackage", NS).get(f"{{{render_gml.NS_XLINK}}}href")
        assert _text(packages[href.lstrip("#")], "dig:owner") == _text(f, "dig:ledningsejer")


def test_gml_request_has_reference_period_and_polygon(answer):
    root = _xml(render_gml.render_gml(answer))
    request = root.find("dig:request/dig:DigRequest", NS)
    assert _text(request, "dig:reference") == "DR-2025-000042"
    assert _text(request, "dig:period/gml:TimePeriod/gml:beginPosition") == "2025-03-10"
    assert _text(request, "dig:period/gml:TimePeriod/gml:endPosition") == "2025-03-21"
    assert [w.text for w in request.findall("dig:workType", NS)] == [
        "machine_excavation",
        "hand_digging",
    ]
    polygon = request.find("dig:digArea/gml:Polygon", NS)
    assert polygon.get("srsName") == "http://www.opengis.net/def/crs/EPSG/0/25832"
    xy = [float(v) for v in _text(polygon, ".//gml:posList").split()]
    ring = shapely.Polygon(list(zip(xy[::2], xy[1::2], strict=True)))
    assert ring.equals(answer.request.geometry)
    buffered = request.find("dig:answerArea/gml:Polygon", NS)
    assert buffered is not None


def test_gml_geometries_are_in_epsg_25832(answer):
    root = _xml(render_gml.render_gml(answer))
    geometries = root.xpath(
        "//ler:geometri/* | //dig:digArea/* | //dig:answerArea/* | //gml:Envelope", namespaces=NS
    )
    assert len(geometries) == 9 + 3
    assert {g.get("srsName") for g in geometries} == {render_gml.SRS_NAME}
    assert render_gml.SRS_NAME == "http://www.opengis.net/def/crs/EPSG/0/25832"
    split = root.xpath(
        "//ler:Elledning[ler:id='electricity-002']/ler:geometri/gml:MultiCurve", namespaces=NS
    )
    assert len(split) == 1 and len(split[0].findall("gml:curveMember", NS)) == 2


def test_gml_unknown_depth_is_left_out_never_invented(answer):
    root = _xml(render_gml.render_gml(answer))
    by_id = {_text(f, "ler:id"): f for f in _features(root)}
    for c in answer.conflicts:
        f = by_id[c.asset_id]
        depth = f.find("ler:vejledendeDybde", NS)
        if c.depth_m is None:
            assert depth is None, c.asset_id
            assert _text(f, "dig:depthKnown") == "false"
        else:
            assert depth.get("uom") == "mm"
            assert int(depth.text) == round(c.depth_m * 1000)
            assert _text(f, "dig:depthKnown") == "true"
    assert b"-99" not in render_gml.render_gml(answer)


def test_gml_hazard_accuracy_and_precautions_use_ler_vocabulary(answer):
    root = _xml(render_gml.render_gml(answer))
    by_id = {_text(f, "ler:id"): f for f in _features(root)}
    cable = by_id["electricity-001"]
    assert _text(cable, "ler:fareklasse") == "meget farlig"
    assert _text(cable, "ler:noejagtighedsklasse") == "<= 0.50 m"
    assert _text(cable, "ler:spaendingsniveau") == "10"
    assert MARK.text in _text(cable, "ler:sikkerhedshensyn")
    assert HAND.text in _text(cable, "ler:sikkerhedshensyn")
    actions = cable.findall("dig:requiredAction/dig:RequiredAction", NS)
    assert [(_text(a, "dig:action"), _text(a, "dig:blocks")) for a in actions] == [
        ("on_site_marking", "true"),
        ("hand_dig", "false"),
    ]
    assert _text(actions[0], "dig:noticeWorkingDays") == "2"
    assert _text(cable, "dig:blocksReadyToDig") == "true"
    assert _text(by_id["district_heating-005"], "ler:fareklasse") == "farlig"
    assert _text(by_id["water-003"], "ler:fareklasse") == "ikke farlig"
    assert _text(by_id["telecom-008"], "ler:noejagtighedsklasse") == "> 2.00 m"
    unknown = by_id["electricity-002"].find("ler:noejagtighedsklasse", NS)
    assert unknown.get(f"{{{render_gml.NS_XSI}}}nil") == "true"
    assert unknown.get("nilReason") == "unknown" and unknown.text is None
    heating = by_id["district_heating-005"]
    assert _text(heating, "dig:distance") == "2"
    assert _text(heating, "dig:leastDistance") == "0"  # 2 m less its 2 m accuracy


def test_gml_ler_elements_in_schema_order(answer):
    root = _xml(render_gml.render_gml(answer))
    order = [
        "driftsstatus",
        "etableringstidspunkt",
        "fareklasse",
        "id",
        "noejagtighedsklasse",
        "sikkerhedshensyn",
        "vejledendeDybde",
        "geometri",
        "udvendigDiameter",
        "type",
        "spaendingsniveau",
    ]
    for f in _features(root):
        names = [
            etree.QName(e).localname for e in f if etree.QName(e).namespace == render_gml.NS_LER
        ]
        known = [n for n in names if n in order]
        assert known == sorted(known, key=order.index), names
        first_dig = next(
            i for i, e in enumerate(f) if etree.QName(e).namespace == render_gml.NS_DIG
        )
        assert all(etree.QName(e).namespace == render_gml.NS_DIG for e in f[first_dig:])


def test_gml_owner_package_alone(answer):
    root = _xml(render_gml.render_gml(answer, owner=TDC))
    features = _features(root)
    assert {_text(f, "dig:ledningsejer") for f in features} == {TDC}
    assert len(features) == 2
    assert [_text(p, "dig:owner") for p in root.findall(".//dig:OwnerPackage", NS)] == [TDC]
    assert _text(root, "dig:request/dig:DigRequest/dig:reference") == "DR-2025-000042"


def test_gml_without_assets_still_carries_the_request():
    empty = Answer(_request(), [], [], [], NOW)
    root = _xml(render_gml.render_gml(empty))
    assert _features(root) == []
    assert root.find("dig:request/dig:DigRequest", NS) is not None
    assert root.findall(".//dig:OwnerPackage", NS) == []
    assert render_gml.answer_type(OwnerState("X", "automatic", "answered", 0), 0) == (
        "ingen ledninger i graveområde"
    )


def test_gml_reads_back_through_the_ler_reader(answer, tmp_path):
    path = tmp_path / "answer.gml"
    path.write_bytes(render_gml.render_gml(answer))
    assert detect(path) == "ler"
    seen = Seen()
    layers = {}
    for part in ler.parts(path, IngestOptions(show_progress=False), seen):
        layers[part.spec.layer.id] = [f for f in part.chunks if len(f)]
    assert seen.owners == {RADIUS, HOFOR, TDC}
    counts = {name: sum(len(f) for f in frames) for name, frames in layers.items()}
    assert counts == {"utilities_lines": 7, "utilities_points": 1, "utilities_areas": 1}
    rows = pd.concat([f for frames in layers.values() for f in frames]).set_index("asset_id")
    assert len(rows) == len(answer.conflicts)  # the request and owner packages are no assets
    for c in answer.conflicts:
        row = rows.loc[c.asset_id].map(lambda v: None if v is None or v is pd.NA or v != v else v)
        assert row["owner"] == c.owner
        assert row["hazard_class"] == c.hazard_class
        assert row["accuracy_class"] == c.accuracy_class
        if c.depth_m is None:
            assert row["depth_m"] is None
        else:
            assert row["depth_m"] == pytest.approx(c.depth_m)
        assert row.geometry.equals_exact(c.geometry, 1e-3)
        if c.asset_kind != "duct":  # the reader takes a Foeringsroer's type as "other"
            assert row["utility_type"] == c.utility_type
    assert rows.loc["electricity-001", "voltage_kv"] == pytest.approx(10.0)
    assert rows.loc["water-003", "diameter_mm"] == pytest.approx(110.0)
    assert rows.loc["telecom-008", "subtype"] == "fibre"
    assert rows.loc["sewer-004", "subtype"] == "foul"
    assert rows.loc["telecom-009", "asset_kind"] == "duct"
    assert rows.loc["water-006", "asset_kind"] == "valve"


# -- map ------------------------------------------------------------------------------


def _texts(fig) -> list:
    return list(fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_gid")))


def _by_gid(fig, gid: str):
    return [a for a in fig.findobj(lambda a: a.get_gid() == gid)]


def test_pdf_has_one_page(answer):
    pdf = render_map.render_map(answer, "pdf")
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf)) == 1


def test_png_is_a4_landscape(answer):
    png = render_map.render_map(answer, "png")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    width, height = image.size
    assert abs(width - 297 / 25.4 * render_map.PNG_DPI) <= 1
    assert abs(height - 210 / 25.4 * render_map.PNG_DPI) <= 1


def test_legend_lists_exactly_the_utility_types_present(answer):
    expected = ["Electricity", "Water", "Sewer", "District heating", "Telecom"]
    assert render_map.legend_labels(answer) == expected
    fig = render_map.build_figure(answer)
    (legend,) = _by_gid(fig, "utility-legend")
    assert [t.get_text() for t in legend.get_texts()] == expected
    assert legend.get_title().get_text() == "Utility type"
    assert render_map.legend_labels(answer, owner=HOFOR) == ["Water", "Sewer", "District heating"]


def test_scale_bar_north_arrow_and_crs_label(answer):
    fig = render_map.build_figure(answer)
    (label,) = _by_gid(fig, "scale-bar-label")
    match = re.fullmatch(r"([125])(0*) m", label.get_text())
    assert match, label.get_text()
    length = float(match.group(1) + match.group(2))
    ax = label.axes
    fig.canvas.draw()  # the limits as drawn, after the equal aspect is applied
    width = ax.get_xlim()[1] - ax.get_xlim()[0]
    assert width / 10 < length <= width / 4
    (north,) = _by_gid(fig, "north-arrow")
    assert north.get_text() == "N"
    assert any("EPSG:25832" in t.get_text() for t in _texts(fig))
    assert "EPSG:25832" in ax.get_xlabel()


@pytest.mark.parametrize(
    ("width", "length"),
    [(90.0, 20.0), (4.0, 1.0), (1000.0, 200.0), (2500.0, 500.0), (41.0, 10.0), (79.0, 10.0)],
)
def test_scale_bar_lengths_are_round(width, length):
    assert render_map.scale_bar_length(width) == length


def test_title_block_says_request_owners_and_unknown_depths(answer):
    lines = render_map.title_lines(answer)
    text = "\n".join(lines)
    assert "Reference: DR-2025-000042" in text
    assert "Period: 2025-03-10 to 2025-03-21" in text
    assert "Kind: normal" in text
    assert "Work: machine excavation, hand digging" in text
    assert "Package: all owners" in text
    assert "Generated: 2025-03-03T09:30+00:00" in text
    assert "Assets: 9 (depth unknown: 3)" in text
    per_owner = lines[lines.index("Per owner:") + 1 :][:6]
    assert [line.strip() for line in per_owner] == [
        HOFOR, "answered, 5 assets, 1 depth unknown",
        RADIUS, "pending, 2 assets, 1 depth unknown",
        TDC, "answered, 2 assets, 1 depth unknown",
    ]  # fmt: skip
    fig_text = "\n".join(t.get_text() for t in _texts(render_map.build_figure(answer)))
    assert "Assets: 9 (depth unknown: 3)" in fig_text


def _line_collections(fig) -> list[LineCollection]:
    return [c for c in fig.findobj(LineCollection) if c.axes is not None and c.get_segments()]


def test_assets_coloured_by_type_and_styled_by_hazard_and_depth(answer):
    fig = render_map.build_figure(answer)
    collections = _line_collections(fig)
    segments = sum(len(c.get_segments()) for c in collections)
    assert segments == 8  # seven lines, one of them in two parts
    widths = {float(c.get_linewidths()[0]) for c in collections}
    assert widths == {1.0, 2.0, 3.0}  # not dangerous, dangerous, very dangerous
    cased = [c for c in collections if c.get_path_effects()]
    assert len(cased) == 1 and float(cased[0].get_linewidths()[0]) == 3.0
    dashed = sum(
        1 for c in collections for offset, dashes in c.get_linestyles() if dashes is not None
    )
    assert dashed == 3  # the lighting cable's two parts and the duct: depth unknown
    red = [
        c
        for c in collections
        if (c.get_colors()[:, :3] == (0xD7 / 255, 0x19 / 255, 0x1C / 255)).all(axis=1).any()
    ]
    assert red, "electricity is drawn red"


def test_owner_map_shows_only_that_owner(answer):
    fig = render_map.build_figure(answer, owner=TDC)
    (legend,) = _by_gid(fig, "utility-legend")
    assert [t.get_text() for t in legend.get_texts()] == ["Telecom"]
    assert sum(len(c.get_segments()) for c in _line_collections(fig)) == 2
    text = "\n".join(t.get_text() for t in _texts(fig))
    assert f"Package: {TDC}" in text
    assert HOFOR not in text and RADIUS not in text
    png = render_map.render_map(answer, "png", owner=TDC)
    assert (
        Image.open(io.BytesIO(png)).size
        == Image.open(io.BytesIO(render_map.render_map(answer, "png"))).size
    )


def test_map_without_assets_says_so():
    empty = Answer(_request(), [], [], [], NOW)
    fig = render_map.build_figure(empty)
    texts = [t.get_text() for t in _texts(fig)]
    assert render_map.NO_ASSETS in texts
    assert _by_gid(fig, "utility-legend") == []
    assert render_map.legend_labels(empty) == []
    assert render_map.render_map(empty, "pdf").startswith(b"%PDF")


def test_many_assets_draw_as_a_few_collections():
    conflicts = [
        _conflict(
            i,
            f"Owner {i % 7}",
            ("electricity", "water", "telecom", "gas")[i % 4],
            _line((i % 60, -5), (i % 60 + 0.5, 45)),
            hazard=("not_dangerous", "dangerous", "very_dangerous")[i % 3],
            depth=None if i % 5 == 0 else 1.0,
        )
        for i in range(500)
    ]
    fig = render_map.build_figure(Answer(_request(), conflicts, [], [], NOW))
    collections = _line_collections(fig)
    assert len(collections) <= 4
    assert sum(len(c.get_segments()) for c in collections) == 500


def test_unknown_map_format_is_refused(answer):
    with pytest.raises(InvalidInput, match="svg"):
        render_map.render_map(answer, "svg")
