"""Offline installs: a wheelhouse for an environment that already provides torch, installed with the
package index disabled into a scratch venv."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

from helpers import ROOT, scaled
from tools.wheelhouse import only_needed_by, target_flags

OFFLINE = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def item(name, requires=(), requested=False):
    return {"metadata": {"name": name, "version": "1", "requires_dist": list(requires)}, "requested": requested}


def test_without_torch_leaves_out_only_what_torch_alone_needs():
    items = [item("torch", ["sympy", "numpy", "cuda-toolkit[cufft]; platform_system == 'Linux'"], True),
             item("torchvision", ["torch", "numpy", "pillow"], True),
             item("timm", ["torch", "torchvision", "pyyaml"], True), item("pandas", ["numpy"], True),
             item("cuda-toolkit", ["nvidia-cufft; extra == 'cufft'", "nvidia-curand; extra == 'curand'"]),
             item("nvidia-cufft"), item("nvidia-curand"), item("sympy", ["mpmath"]), item("mpmath"),
             item("numpy"), item("pillow"), item("pyyaml")]
    assert only_needed_by(["torch", "torchvision"], items) == {"torch", "torchvision", "sympy", "mpmath",
                                                               "cuda-toolkit", "nvidia-cufft", "pillow"}


def test_target_flags_name_every_manylinux_tag_the_glibc_accepts():
    flags = target_flags("3.12", "aarch64", "2.28")
    platforms = [flags[i + 1] for i, f in enumerate(flags) if f == "--platform"]
    assert platforms[0] == "manylinux_2_17_aarch64" and "manylinux_2_28_aarch64" in platforms
    assert "manylinux_2_29_aarch64" not in platforms and flags[flags.index("--python-version") + 1] == "3.12"


def provide(names: list[str], where: Path) -> None:
    """A folder holding these installed distributions (links to this environment's files), as a cluster
    module or vendor image would provide them on the Python path."""
    where.mkdir()
    for name in names:
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        base = Path(dist.locate_file(""))
        for top in tops:
            if not (where / top).exists():
                (where / top).symlink_to(base / top)


@pytest.mark.slow
def test_offline_install_into_an_environment_that_has_torch(tmp_path):
    wheels = tmp_path / "wheelhouse"
    subprocess.run([sys.executable, "-m", "tools.wheelhouse", "--out", str(wheels), "--without-torch"],
                   cwd=ROOT, check=True, capture_output=True, text=True, timeout=scaled(900))
    provided = (wheels / "provided.txt").read_text().split()
    assert {"torch", "torchvision"} <= set(provided) and not list(wheels.glob("torch-*.whl"))
    provide(provided, tmp_path / "module")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    (next((env_dir / "lib").glob("python3*/site-packages")) / "module.pth").write_text(str(tmp_path / "module"))
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                              "mask-classification[postgres]"], cwd=tmp_path, env={**os.environ, **OFFLINE},
                             capture_output=True, text=True, timeout=scaled(900))
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    installed = install.stdout.split("Successfully installed", 1)[1].split()
    assert any(p.startswith("mask-classification-") for p in installed), installed
    assert not [p for p in installed if p.startswith(("torch-", "torchvision-", "nvidia", "triton"))]
    check = subprocess.run([str(python), "-c", "import torch, train, inference, psycopg; print(torch.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=scaled(300))
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.startswith(str(tmp_path / "module"))  # torch came from the environment
    (tmp_path / "sub.csv").write_text("ImageID,ans\na,1\nb,2\n")
    score = subprocess.run([str(env_dir / "bin" / "mask-score"), "sub.csv", "sub.csv"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=scaled(300))
    assert score.returncode == 0 and "1.0000" in score.stdout, score.stdout + score.stderr
