"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

No engine runs here, so the file is parsed and checked against the keys the
Compose Specification documents for services, and against what the stack
needs: PostGIS with a health check, the API migrated and pointed at it with
real secrets, the broker, nothing published beyond loopback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Service keys documented by the Compose Specification (services top-level element).
SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "driver_opts", "entrypoint",
    "env_file", "environment", "expose", "extends", "external_links", "extra_hosts",
    "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation",
    "labels", "label_file", "links", "logging", "mac_address", "mem_limit",
    "mem_reservation", "mem_swappiness", "memswap_limit", "network_mode", "networks",
    "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
    "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy",
    "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs",
    "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes",
    "volumes_from", "working_dir",
}  # fmt: skip
TOP_KEYS = {"version", "name", "services", "networks", "volumes", "configs", "secrets",
            "include", "models"}  # fmt: skip
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_top_level_and_service_keys_are_documented(compose):
    assert set(compose) <= TOP_KEYS
    for name, service in compose["services"].items():
        unknown = set(service) - SERVICE_KEYS
        assert not unknown, f"service {name} has undocumented keys {unknown}"
        assert "image" in service or "build" in service, name
        assert service.get("restart", "no") in RESTART, name


def test_dependencies_exist_and_use_valid_conditions(compose):
    services = compose["services"]
    for name, service in services.items():
        deps = service.get("depends_on", {})
        for dep, spec in deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps):
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec:
                assert spec["condition"] in DEPENDS_CONDITIONS
                if spec["condition"] == "service_healthy":
                    assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_named_volumes_and_networks_are_declared(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: volume {source} undeclared"
            else:
                assert (ROOT / source).exists(), f"{name}: bind source {source} missing"
        for network in service.get("networks", []):
            assert network in compose["networks"]


def test_stack_has_postgis_api_and_broker(compose):
    services = compose["services"]
    assert services["db"]["image"].startswith("postgis/postgis:15-3")
    assert services["broker"]["image"].startswith("eclipse-mosquitto:")
    env = services["api"]["environment"]
    assert env["GEOBY_ENVIRONMENT"] == "production"
    assert env["GEOBY_DATABASE_URL"].endswith("@db:5432/geoby")
    for role in ("READ", "INGEST", "ADMIN"):
        # required from .env, never a default in the file
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", env[f"GEOBY_DATABASE_{role}_PASSWORD"])
    assert services["migrate"]["command"] == ["geoby", "db", "up"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_ports_are_published_on_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_dockerfile_builds_the_packages_and_serves():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11" in dockerfile
    for package in ("layers", "ingest", "api", "dig_coordination", "flood", "waste"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'CMD ["geoby", "serve"]' in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE), "the API must not run as root"
