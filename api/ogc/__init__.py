"""The OGC APIs (Features, Tiles, Records, Processes, Coverages) at ``/ogc``.

pygeoapi's API core, configured from the layer catalog, with geoby's own
PostGIS data path: exact bbox in any CRS, CQL2 through pygeofilter with bound
parameters, GeoJSON and vector tiles built in PostGIS.
"""
