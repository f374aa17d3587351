"""Build the project's Dockerfile and run the image with podman, as the container tests need.

Why podman: it builds and runs a Dockerfile without a daemon, as root on a plain Linux machine.
Why a stand-in base image: the Dockerfile's base (python:*-slim-bookworm) comes from Docker Hub,
which the test machines cannot reach. The stand-in is Debian bookworm from the Debian mirror, made
with debootstrap, with python3 and pip: the same Debian release and the same Python minor version as
the real base, so every instruction of the Dockerfile after FROM runs for real. It trusts the
certificate authorities this machine trusts, so a TLS-inspecting proxy between the build and PyPI
works as it does for the machine's own pip.

Storage is a fresh folder per test session (the vfs driver: no kernel overlay support needed); only
the stand-in's root file system is cached, as a tarball keyed by what goes into it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tests.conftest import PROJECT_ROOT, unavailable

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("LYNC_OWA_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates")
BASE_IMAGE = f"localhost/lync-owa-test-python:{DEBIAN_SUITE}"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lync-owa-exporter" / "container"
# Podman raises the open-files and process limits by default; on machines without CAP_SYS_RESOURCE
# that fails, so ask for modest limits the exporter is happy with.
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
INSTALL_HINT = "scripts/test installs Debian's podman, runc, slirp4netns and debootstrap"


def require_tools() -> None:
    """Fail in CI, skip elsewhere, when this machine cannot build and run containers."""
    missing = [tool for tool in ("podman", "runc", "debootstrap", "slirp4netns") if shutil.which(tool) is None]
    problem = f"{', '.join(missing)} not installed ({INSTALL_HINT})" if missing else None
    if problem is None and os.geteuid() != 0:
        problem = "the container tests build images with rootful podman and debootstrap: run them as root"
    if problem:
        unavailable(problem)


class Podman:
    """podman with its own storage folder and the settings that work on a bare machine."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.global_args = [
            "podman", "--root", str(workdir / "storage"), "--runroot", str(workdir / "run"),
            "--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.global_args, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:3])} ... exited {result.returncode}:\n"
                                 f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def reset(self) -> None:
        """Remove the storage folder (vfs layers are plain copies owned by many users)."""
        subprocess.run([*self.global_args, "system", "reset", "--force"], capture_output=True, timeout=300, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _base_key() -> str:
    digest = hashlib.sha256()
    digest.update(f"{DEBIAN_SUITE} {DEBIAN_MIRROR} {' '.join(BASE_PACKAGES)} v1".encode())
    digest.update(HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b"")
    return digest.hexdigest()[:16]


def base_rootfs_tarball() -> Path:
    """The stand-in base's root file system as a tarball, made with debootstrap once and cached."""
    tarball = CACHE_DIR / f"python-{DEBIAN_SUITE}-{_base_key()}.tar"
    if tarball.exists():
        return tarball
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=CACHE_DIR) as scratch:
        rootfs = Path(scratch) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE,
             str(rootfs), DEBIAN_MIRROR],
            capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            raise AssertionError(f"debootstrap {DEBIAN_SUITE} from {DEBIAN_MIRROR} failed:\n{result.stdout[-3000:]}"
                                 f"\n{result.stderr[-3000:]}")
        # What python:*-slim offers and Debian does not: `python`, and pip allowed to install
        # system-wide (the slim images' Python is not Debian's, so it has no PEP 668 marker).
        (rootfs / "usr/bin/python").symlink_to("python3")
        for marker in (rootfs / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        if HOST_CA_BUNDLE.exists():
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as archive:
            # The container engine provides /dev, /proc and /sys; their contents do not belong in a layer.
            archive.add(rootfs, arcname=".", filter=lambda info: None if _is_virtual(info.name) else info)
        partial.rename(tarball)
    return tarball


def _is_virtual(name: str) -> bool:
    return any(name.startswith(f"./{folder}/") for folder in ("dev", "proc", "sys"))


def build_image(podman: Podman, tag: str) -> None:
    """The stand-in base, then the project's Dockerfile on top of it, exactly as committed."""
    podman("import", "--change", 'CMD ["python3"]', str(base_rootfs_tarball()), BASE_IMAGE, timeout=600)
    podman("build", "--format", "docker", "--network", "host", *ULIMITS,
           "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--tag", tag, "--file", str(PROJECT_ROOT / "Dockerfile"),
           str(PROJECT_ROOT), timeout=1200)
