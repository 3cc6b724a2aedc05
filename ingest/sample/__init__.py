"""The fictional sample municipality: a Danish coastal town, generated.

:func:`generate` writes Egevig, a seeded, internally consistent but entirely
fictional coastal town in EPSG:25832 (heights DVR90), as real files in real
formats, for the demo and the tests to load through geoby's ingestion.

What is in it (4 km x 4 km south-west corner at E 720000, N 6170000)
--------------------------------------------------------------------
* ``terrain/``: the DEM as 16 DHM-style 1 km GeoTIFF tiles (4 m, 1.6 m or
  0.5 m by size) plus one tile as ASCII grid and one as XYZ at 10 m.
* ``buildings.gpkg``, ``roads.gpkg`` (family ``base``): about 1,800
  footprints with use, floor area, storeys, year, heating and address; a
  noded, connected road network.
* ``water.gpkg`` (family ``water``): streams, lakes, coastline, sewer pipes
  and manholes.
* ``utilities/``: one GeoPackage and one LER 2 GML answer per owner (seven
  fictional owners).
* ``climate/``: IDF table, climate factors, sea-level scenarios, a rain gauge
  with a year of 10-minute rain and its events.
* ``energy/``: hourly temperature and hourly electricity and heat per
  building for the year (gzip CSV).
* ``waste/``: bins, recycling stations, depot and disposal sites, fleet, 90
  days of fill-level readings and the collections.
* ``manifest.json``: town, seed, size, extent, CRS, resolution, designed
  features, owners, sensor defects and every file with family, format,
  layers, counts, size and SHA-256. Families are ``terrain``, ``climate``,
  ``water``, ``energy``, ``waste``, ``utilities`` and ``base`` (buildings
  and roads, which every family's analyses join to).

What is realistic
-----------------
Sea to the east with a beach and a low coastal zone (0.5-2.5 m) that sea
levels of +1 to +3 m flood; a polder behind a 3.8 m ring dike that only a
connected-flooding model keeps dry; a rectilinear harbour with 2 m quays; two
stream valleys draining to the sea; hills to about 35 m inland; six groups of
designed urban bluespots (0.35-1.8 m deep, radius 28-140 m, nested and
adjacent ones that merge as they fill) with houses in and around them. The
DEM is a pure function of position plus seeded value noise, so tiles mosaic
without seams and every size shows the same town. Roads are noded with
shared end points and form one component; buildings never overlap each other
or a road surface; sewers fall towards the treatment plant or an outfall with
at least 1.2 m cover; utilities carry owner, type, hazard class, accuracy
class and a depth that is unknown for about a quarter of the assets.

What is simplified or illustrative
----------------------------------
Roads and buildings are not burned into the DEM. Manhole rims are the
terrain function at the manhole, not the raster cell. Motorway junctions are
at grade. Sewer pumping stations are placed where a pipe would lie deeper
than 6 m; pressure mains are not modelled. Network lines are offset copies
of street centre lines, so they do not join exactly at junctions. IDF
values, climate factors, sea-level scenarios, energy intensities, bin fill
rates, hazard classes per network and heating shares are illustrative, of
Danish magnitude, not official figures. See each module for its own notes,
and :mod:`ingest.sample.ler_gml` for how the GML departs from LER.

Determinism
-----------
Every random draw comes from a generator keyed by the seed and the part's
name (:mod:`ingest.sample.seeding`); identifiers are UUIDs drawn from it.
GeoPackages are written with GDAL's clock pinned, gzip without timestamp,
GeoTIFFs without date tags, and the manifest holds no time, so the same seed
and size give byte-identical files on the same software stack.
"""

from ingest.sample.generator import (
    SIZES,
    SampleError,
    SampleExistsError,
    SampleSizeError,
    generate,
)
from ingest.sample.manifest import read_manifest

__all__ = [
    "SIZES", "SampleError", "SampleExistsError", "SampleSizeError", "generate", "read_manifest",
]  # fmt: skip
