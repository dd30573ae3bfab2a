"""compose.yaml and the Dockerfile, checked without a container engine (issue 12 item 6).

No image can be built on the development machines or in CI (no Docker engine), so this test
checks what a build or `docker compose up` would otherwise find late: the services and their
order (PostgreSQL healthy, then one migration, then the API replicas and the worker), every
`HUB_` variable is a real setting with a valid value, the database URL names the PostgreSQL
service with its user, password and database, the ports agree with HUB_PORT and the image's
EXPOSE, the commands are real `opshub` commands and roles, the config file is mounted where
HUB_CONFIG says, and the Dockerfile's HEALTHCHECK probes /readyz on HUB_PORT with examples/
in the image (and not excluded by .dockerignore).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.settings import Role, Settings

ROOT = Path(__file__).resolve().parents[1]
HUB_SERVICES = ("migrate", "api", "worker")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set in the environment: the default."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


def test_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *HUB_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"].get("deploy", {}).get("replicas", 1) == 1
    for name in HUB_SERVICES:
        assert "build" in services[name] and services[name]["image"] == services["api"]["image"]


def test_commands_are_real_commands_and_roles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["opshub", "migrate"]
    for name, role in (("api", Role.api), ("worker", Role.worker)):
        command = services[name]["command"]
        assert command[:2] == ["opshub", "serve"]
        assert command[command.index("--role") + 1] == role.value
    serve_help = CliRunner().invoke(cli, ["serve", "--help"])
    assert serve_help.exit_code == 0 and "--role" in serve_help.output
    assert CliRunner().invoke(cli, ["migrate", "--help"]).exit_code == 0


def test_environment_is_settings(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    known = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    for name in HUB_SERVICES:
        env = environment(compose["services"][name])
        unknown = {key for key in env if key.startswith("HUB_")} - known
        assert not unknown, f"{name}: not settings of hub/settings.py: {unknown}"
        for key in list(known):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]  # every value must validate
        assert settings.migrate_on_start is False, f"{name}: only the migrate service migrates"


def test_database_url_names_the_postgres_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = environment(services["postgres"])
    for name in HUB_SERVICES:
        url = make_url(environment(services[name])["HUB_DATABASE_URL"])
        assert url.get_backend_name() == "postgresql"
        assert url.host == "postgres" and (url.port or 5432) == 5432
        assert url.username == postgres["POSTGRES_USER"]
        assert url.password == postgres["POSTGRES_PASSWORD"]
        assert url.database == postgres["POSTGRES_DB"]
    # The same variable feeds both sides, so setting POSTGRES_PASSWORD changes both.
    raw = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert "${POSTGRES_PASSWORD" in raw["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "${POSTGRES_PASSWORD" in raw["api"]["environment"]["HUB_DATABASE_URL"]


def test_ports_agree_with_hub_port_and_the_image(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    exposed = {int(p) for p in re.findall(r"^EXPOSE\s+(\d+)", dockerfile, flags=re.MULTILINE)}
    services = compose["services"]
    for name in ("api", "worker"):
        port = int(environment(services[name]).get("HUB_PORT", Settings.model_fields["port"].default))
        assert port in exposed
        published = [str(p).rsplit(":", 1)[-1] for p in services[name].get("ports", [])]
        container_ports = {int(p) for p in published} | {int(p) for p in services[name].get("expose", [])}
        assert container_ports == {port}, f"{name}: container ports {container_ports} != HUB_PORT {port}"
    # Two replicas cannot publish one host port: one host port per replica.
    host_side = str(services["api"]["ports"][0]).rsplit(":", 1)[0]
    first, _, last = host_side.partition("-")
    assert last and int(last) - int(first) + 1 >= services["api"]["deploy"]["replicas"]


def test_config_is_mounted_where_hub_config_points(compose: dict[str, Any]) -> None:
    for name in HUB_SERVICES:
        service = compose["services"][name]
        target = environment(service)["HUB_CONFIG"]
        mounts = [str(v).split(":") for v in service.get("volumes", [])]
        assert any(parts[1] == target for parts in mounts if len(parts) >= 2), f"{name}: nothing mounted at {target}"


def test_dockerfile_healthcheck_and_examples() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", dockerfile, flags=re.MULTILINE | re.DOTALL)
    assert healthcheck is not None
    assert "/readyz" in healthcheck.group(1) and "HUB_PORT" in healthcheck.group(1)
    copied = re.search(r"^COPY examples (\S+)$", dockerfile, flags=re.MULTILINE)
    assert copied is not None
    workdirs = re.findall(r"^WORKDIR (\S+)$", dockerfile, flags=re.MULTILINE)
    assert copied.group(1).rstrip("/") == f"{workdirs[-1]}/examples"  # `opshub import examples/...` works
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "examples" not in ignored and "examples/" not in ignored  # else the COPY fails at build
    assert (ROOT / "examples" / "items.jsonl").exists()
