"""The image, built once per test session (building it takes minutes), and containers started from it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.container.engine import ULIMITS, Podman, build_image, require_tools
from tests.container.running import HARDENED, IMAGE, NETWORK, Container


@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    require_tools()
    engine = Podman(tmp_path_factory.mktemp("podman"))
    build_image(engine, IMAGE)
    yield engine
    engine.reset()


@pytest.fixture
def start(podman):
    """Run the image detached with a published port; the container is removed afterwards."""
    started: list[Container] = []

    def run(*args: str, volumes: dict[Path, str] = (), env: dict[str, str] = (), extra: tuple[str, ...] = ()):
        port = free_port()
        name = f"lync-owa-test-{uuid.uuid4().hex[:8]}"
        command = ["run", "--detach", "--name", name, *ULIMITS, *HARDENED, *extra,
                   "--network", NETWORK, "--publish", f"127.0.0.1:{port}:10112"]
        for source, target in dict(volumes).items():
            command += ["--volume", f"{source}:{target}:ro"]
        for key, value in dict(env).items():
            command += ["--env", f"{key}={value}"]
        podman(*command, IMAGE, *args)
        container = Container(podman, port, name)
        started.append(container)
        return container

    yield run
    for container in started:
        podman("rm", "--force", "--time", "0", container.name, check=False)
