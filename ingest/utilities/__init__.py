"""The utilities family: buried cables and pipes of many owners, in one model.

``geoby ingest utilities FILE... [--owner ORG] [--mode insert|upsert|replace]``
loads each file in one transaction into the restricted layers described in
:mod:`ingest.utilities.model` (lines, points, areas, interest areas, dig
areas), every asset with owner, utility type, hazard class, depth and
position accuracy class (unknown stays unknown).

Formats, recognised by content (not by extension):

==============================  ==============================================
format                          reader
==============================  ==============================================
Danish LER 2.x GML              :mod:`ingest.utilities.ler`
Dutch IMKL 2.0 GML, KLIC ZIP,   :mod:`ingest.utilities.imkl`
IMKL2015 GML
Norwegian NVDB GML              :mod:`ingest.utilities.nvdb`
GeoPackage, GeoJSON, Shapefile  :mod:`ingest.utilities.tabular` (documented
and other GDAL vector files     column mapping and overrides)
==============================  ==============================================

After each load, the interest areas of every owner the file named (and of
owners whose rows it replaced) are derived again
(:mod:`ingest.utilities.interest`); ``--option interest_areas=FILE``
uploads an owner's own interest areas, which replace the derived ones.

Decisions (where the issue is silent):

* **Owner.** From the data where it names the organisation, else
  ``--owner``; an asset with neither refuses the file, naming the record.
* **Natural key** ``(owner, asset_id)``: two owners may use the same ids.
  The sample town writes each owner's network twice (GeoPackage and LER
  GML) with the same ids: loading both needs ``--mode upsert``, and an
  ``insert`` of the second is refused naming the key already loaded.
* **Records not loaded.** IMKL drawing aids (dimension lines, labels, own
  topography) and attachments are not assets; NVDB objects registered
  without a position cannot be placed. Both are counted in the report's
  warnings; the NVDB ones are kept in ``geoby.load_rejects`` too.
* **Lon/lat in a projected file** (IMKL2015): the loader refuses the whole
  file naming the records; with ``--skip-invalid`` the rest loads and the
  refused records are kept in ``geoby.load_rejects``.
* **Reprojection** to EPSG:25832 by the shared loader (RD New, UTM 33 and
  the rest); 3D coordinates are kept, LER's -99 heights become NaN.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from psycopg2 import sql

from ingest.loader import LoadReport, load_file
from ingest.source import SourceFile
from ingest.utilities import imkl, interest, ler, model, nvdb, tabular
from ingest.utilities.frames import Seen
from ingest.utilities.interest import derive_interest_areas
from layers.database import Database

log = logging.getLogger(__name__)

__all__ = ["derive_interest_areas", "detect", "ingest"]
HEAD_BYTES = 8192


def detect(path: Path) -> str:
    """The reader for a file: ``ler``, ``imkl``, ``nvdb`` or ``tabular``."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with imkl.open_archive(path) as archive:
            names = " ".join(archive.namelist()).lower()
        return "imkl" if "gebiedsinformatielevering" in names else "tabular"
    with open(path, "rb") as stream:
        head = stream.read(HEAD_BYTES)
    for name, reader in (("ler", ler), ("imkl", imkl), ("nvdb", nvdb)):
        if reader.sniff(head):
            return name
    return "tabular"


def ingest(database: Database, paths: list[Path], options) -> list[LoadReport]:
    """Load utility files, one transaction per file.

    Parameters
    ----------
    database
        Where to load.
    paths
        LER or IMKL GML, KLIC ZIPs, NVDB GML, GeoPackage/GeoJSON/Shapefile.
    options
        :class:`ingest.pipelines.IngestOptions`. ``extra`` may hold
        ``interest_areas`` (a file of the owner's interest areas), the
        column mapping of :mod:`ingest.utilities.tabular` (``map.COLUMN``,
        ``mapping``, ``default.COLUMN``), ``layers``, ``layer_kind`` and
        ``attribution``.

    Returns
    -------
    list of LoadReport
        One per file (the interest-area upload last).

    Raises
    ------
    InvalidInput
        A file, record or field was refused; that file loaded nothing.
    """
    reports = [_load(database, Path(path), options) for path in paths]
    upload = options.extra.get("interest_areas")
    if upload:
        reports.append(_load(database, Path(upload), options, interest_file=True))
    return reports


def _load(database: Database, path: Path, options, *, interest_file: bool = False) -> LoadReport:
    source = SourceFile.open(path)
    kind = "tabular" if interest_file else detect(path)
    seen = Seen()
    if kind == "tabular":
        parts = tabular.parts(path, options, seen, interest=interest_file)
    else:
        parts = {"ler": ler, "imkl": imkl, "nvdb": nvdb}[kind].parts(path, options, seen)
    before = _owners_of(database, source.label)
    report = load_file(database, source, parts, mode=options.mode,
                       skip_invalid=options.skip_invalid, show_progress=options.show_progress)  # fmt: skip
    if report.skipped:
        return report
    report.warnings.extend(seen.notes)
    if model.INTEREST.id in report.layers:
        with database.connection("ingest") as conn:
            replaced = interest.replace_with_uploaded(conn, source.label)
            interest.register(conn, licence=options.licence)
        log.info("%s: uploaded interest areas now stand for %s", path.name, ", ".join(replaced))
    owners = (seen.owners | before) - {None}
    if any(layer.id in report.layers for layer in model.ASSET_LAYERS) or before:
        interest.refresh(database, owners)
    return report


def _owners_of(database: Database, label: str) -> set[str]:
    """Owners with assets from a source label (a replace may remove all of theirs)."""
    owners: set[str] = set()
    with database.connection("ingest") as conn, conn.cursor() as cur:
        for layer in model.ASSET_LAYERS:
            cur.execute("SELECT to_regclass(%s)", (f"{model.SCHEMA}.{layer.id}",))
            if cur.fetchone()[0] is None:
                continue
            cur.execute(sql.SQL("SELECT DISTINCT owner FROM {} WHERE _source = %s").format(
                sql.Identifier(model.SCHEMA, layer.id)), (label,))  # fmt: skip
            owners.update(row[0] for row in cur.fetchall())
    return owners
