"""Every wheel the project needs, for an offline machine: `python -m tools.wheelhouse --out wheelhouse
[--python-version 3.12] [--arch x86_64] [--glibc 2.35] [--without-torch]`.

Resolves the runtime requirements (and the PostgreSQL extra) for the target Python and platform with
pip, downloads the pinned wheels, builds the project's own wheel, and writes `requirements.lock`. Build
it on any machine with an index (a laptop), copy the folder, then on the server:

    pip install --no-index --find-links wheelhouse "mask-classification[postgres]"

`--without-torch` leaves out torch, torchvision and what only they need (CUDA libraries, triton, ...),
for an environment that already provides them (a cluster module, a vendor image): pip then installs
only what is missing.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence

from utils.cli import as_script, cli_main
from utils.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ("requirements.txt", "requirements-postgres.txt")
PROVIDED = ("torch", "torchvision")  # what --without-torch expects the environment to have


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def target_flags(python_version: str, arch: str, glibc: str) -> list[str]:
    """pip's flags for wheels of another Python/platform: every manylinux tag the glibc accepts."""
    major, minor = (int(x) for x in glibc.split("."))
    if major != 2 or not 17 <= minor <= 60:
        raise UserError(f"--glibc {glibc}: expected 2.17 .. 2.60")
    platforms = [f"manylinux_2_{n}_{arch}" for n in range(17, minor + 1)] + [f"manylinux2014_{arch}"]
    flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for platform in platforms:
        flags += ["--platform", platform]
    return flags


def pip(args: Sequence[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()
        raise UserError(f"pip {args[0]} failed: {lines[-1] if lines else 'exit ' + str(done.returncode)}")


def resolve(flags: Sequence[str], requirements: Iterable[Path]) -> list[dict]:
    """pip's resolution (a dry-run install report) of `requirements` for the target."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        reqs = [arg for path in requirements for arg in ("-r", str(path))]
        pip(["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), "--target",
             str(Path(tmp) / "target"), *flags, *reqs])
        return json.loads(report.read_text())["install"]


def only_needed_by(roots: Sequence[str], items: list[dict]) -> set[str]:
    """Names reachable from `roots` but from no other top-level requirement of the resolution (walking
    the others' requirements without entering `roots`)."""
    from packaging.requirements import Requirement

    plain: dict[str, list] = {}  # name -> its requirements without extras markers
    by_extra: dict[str, dict[str, set[str]]] = {}  # name -> extra -> what that extra adds
    for item in items:
        name = normalize(item["metadata"]["name"])
        plain[name], by_extra[name] = [], {}
        for text in item["metadata"].get("requires_dist", []):
            req = Requirement(text)
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", str(req.marker or ""))
            if extra:
                by_extra[name].setdefault(normalize(extra.group(1)), set()).add(normalize(req.name))
            else:
                plain[name].append(req)
    graph = {name: {normalize(r.name) for r in reqs}
             | {d for r in reqs for e in r.extras for d in by_extra.get(normalize(r.name), {}).get(normalize(e), ())}
             for name, reqs in plain.items()}

    def reach(starts: Iterable[str], stop: frozenset = frozenset()) -> set[str]:
        seen, todo = set(), list(starts)
        while todo:
            name = todo.pop()
            if name in graph and name not in seen and name not in stop:
                seen.add(name)
                todo += graph[name]
        return seen

    requested = {normalize(i["metadata"]["name"]) for i in items if i.get("requested")}
    provided_roots = frozenset(normalize(r) for r in roots)
    return reach(provided_roots) - reach(requested - provided_roots, stop=provided_roots)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m tools.wheelhouse", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("wheelhouse"), help="folder for the wheels")
    parser.add_argument("--python-version", default=f"{sys.version_info.major}.{sys.version_info.minor}",
                        help="the server's Python, e.g. 3.12 (default: this one)")
    parser.add_argument("--arch", default="x86_64", choices=["x86_64", "aarch64"])
    parser.add_argument("--glibc", default="2.35", help="the server's glibc (ldd --version), default 2.35")
    parser.add_argument("--without-torch", action="store_true",
                        help="leave out torch, torchvision and what only they need (already on the server)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d{1,2}", args.python_version):
        raise UserError(f"--python-version {args.python_version!r}: expected e.g. 3.12")
    flags = target_flags(args.python_version, args.arch, args.glibc)
    items = resolve(flags, [ROOT / r for r in REQUIREMENTS])
    left_out = only_needed_by(PROVIDED, items) if args.without_torch else set()
    pins = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in items
                  if normalize(i["metadata"]["name"]) not in left_out)
    args.out.mkdir(parents=True, exist_ok=True)
    pip(["download", "--no-deps", "--quiet", "--dest", str(args.out), *flags, *pins])
    pip(["wheel", "--no-deps", "--quiet", "--wheel-dir", str(args.out), str(ROOT)])
    (args.out / "requirements.lock").write_text("\n".join(pins) + "\n")
    if left_out:  # what the target environment must already have
        (args.out / "provided.txt").write_text("\n".join(sorted(left_out)) + "\n")
    print(f"{args.out}: {len(pins)} wheels for Python {args.python_version} ({args.arch}, glibc {args.glibc})"
          f"{', without ' + ', '.join(sorted(left_out)) if left_out else ''}, plus the project's own; install "
          f"offline with: pip install --no-index --find-links {args.out} \"mask-classification[postgres]\"")
    return args.out


script = as_script(main)

if __name__ == "__main__":
    main()
