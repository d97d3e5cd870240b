"""The deployment files against the real programs, without containers or a cluster (part of
`make test`; `make containers` runs the images themselves).

- The image's build tree: exactly the files deploy/docker/Dockerfile.dockerignore lets into
  the build context configure with the Dockerfile's cmake command (it once failed with "No
  SOURCES given to target: s3_driver": drivers under tests/ were referenced).
"""
import os
import pathlib
import shutil
import subprocess

from conftest import ROOT
import dockerignore

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def tracked_files():
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [f.decode() for f in out.split(b"\0") if f and (ROOT / f.decode()).is_file()]


def dockerfile_cmake_configure():
    """The `cmake -S ... -B ...` configure command of the Dockerfile's build stage, as argv."""
    for line in DOCKERFILE.read_text().splitlines():
        line = line.strip()
        if line.startswith("RUN cmake -S"):
            return [a for a in line.removeprefix("RUN ").split("&&")[0].split() if a != "\\"]
    raise AssertionError("no `RUN cmake -S` line in the Dockerfile")


def test_image_build_context_configures(tmp_path):
    ctx = tmp_path / "src"
    files = dockerignore.context_files(tracked_files(), ROOT / "deploy" / "docker" / "Dockerfile.dockerignore")
    assert "CMakeLists.txt" in files and any(f.startswith("services/resource/") for f in files)
    for f in files:
        (ctx / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, ctx / f)
    argv = dockerfile_cmake_configure()
    assert "-DFERMATA_BUILD_TESTS=OFF" in argv
    r = subprocess.run(argv, cwd=ctx, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(argv)} in the image's build context failed:\n{r.stdout}\n{r.stderr}"
