"""``python -m api.cli``: the same as the ``geoby`` console script."""

from api.cli import main

main()
