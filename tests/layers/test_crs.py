import pytest

from layers.crs import CRS84, OUTPUT_EPSG, crs_uri, epsg_from_uri, transformer
from layers.errors import CRSMismatch


@pytest.mark.parametrize("epsg", OUTPUT_EPSG)
def test_uri_round_trip(epsg):
    assert epsg_from_uri(crs_uri(epsg)) == epsg


@pytest.mark.parametrize(
    ("text", "epsg"),
    [(CRS84, 0), ("EPSG:25832", 25832), ("[EPSG:3857]", 3857), ("epsg:4326", 4326)],
)
def test_accepted_spellings(text, epsg):
    assert epsg_from_uri(text) == epsg


@pytest.mark.parametrize(
    "uri", ["http://www.opengis.net/def/crs/EPSG/0/28992", "EPSG:abc", "urn:ogc:def:crs:xyz"]
)
def test_unsupported_or_malformed_crs_is_named(uri):
    with pytest.raises(CRSMismatch) as info:
        epsg_from_uri(uri)
    assert info.value.field == "crs"


def test_transformer_is_cached_and_xy_ordered():
    t = transformer(4326, 25832)
    assert transformer(4326, 25832) is t
    # Copenhagen City Hall: lon 12.5683, lat 55.6761 -> about E 724 600, N 6 175 800
    x, y = t.transform(12.5683, 55.6761)
    assert 724_000 < x < 725_500
    assert 6_175_000 < y < 6_176_500
    lon, lat = transformer(25832, 0).transform(x, y)
    assert lon == pytest.approx(12.5683, abs=1e-7)
    assert lat == pytest.approx(55.6761, abs=1e-7)
