# The geoby API image: the FastAPI app with pygeoapi, served by uvicorn.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GEOBY_API_HOST=0.0.0.0 \
    GEOBY_API_PORT=8000 \
    GEOBY_DATA_DIR=/var/lib/geoby

RUN useradd --system --create-home --home-dir /var/lib/geoby geoby

WORKDIR /app
COPY pyproject.toml README.md ./
COPY layers ./layers
COPY ingest ./ingest
COPY api ./api
COPY dig_coordination ./dig_coordination
COPY flood ./flood
COPY waste ./waste
RUN pip install .

USER geoby
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["geoby", "serve"]
