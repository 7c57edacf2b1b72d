"""Write docker/constraints.txt: the exact versions of kfp-mlops[serving]'s runtime closure.

Run with the interpreter of an environment where ``pip install -e '.[serving]'`` (or
``.[test]``) was done and the tests passed: it walks kfp-mlops' requirements (base and
the ``serving`` extra) through the installed distributions' metadata, evaluating
environment markers for this interpreter, and pins each to the installed version. Test
and dev tools are not in the closure, so they are not pinned.

    .venv/bin/python docker/freeze_constraints.py

The Dockerfile installs with ``-c docker/constraints.txt``, so rebuilding the image
cannot move scikit-learn (or anything else) under models already trained with it. A
constraints file only pins what it lists, so the build then runs

    python docker/freeze_constraints.py --check

which fails, naming each package, when the installed closure differs from the file: a
dependency the file does not pin (a new requirement since it was frozen) or one at
another version. The image then holds exactly the versions the tests passed with.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path


def canonicalize_name(name: str) -> str:
    """PEP 503's normalized name (packaging's rule; ``--pins`` runs before pip installs it)."""
    return re.sub(r"[-_.]+", "-", name).lower()


OUT = Path(__file__).with_name("constraints.txt")


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Installed version of every distribution ``root[extras]`` needs, by name."""
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            sys.exit(f"{name} is required but not installed here; install .[serving] first")
        if canonicalize_name(name) != canonicalize_name(root):
            pins[canonicalize_name(dist.metadata["Name"])] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, tuple(sorted(req.extras))))
    return pins


def read_pins(path: Path = OUT) -> dict[str, str]:
    """``name == version`` lines of a constraints file, by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def differences(installed: dict[str, str], pinned: dict[str, str]) -> list[str]:
    """How the installed closure differs from the pins, one line a package (empty: none)."""
    found = []
    for name in sorted(installed.keys() | pinned.keys()):
        have, want = installed.get(name), pinned.get(name)
        if want is None:
            found.append(f"{name} {have} is installed but not pinned")
        elif have is None:
            found.append(f"{name}=={want} is pinned but not in the installed closure")
        elif have != want:
            found.append(f"{name} {have} is installed, {want} is pinned")
    return found


# The pins only an optional estimator extra needs: left out of an image whose EXTRAS do
# not name the extra (the Dockerfile's EXTRAS build argument).
OPTIONAL_PINS = {"xgboost": ("xgboost-cpu",), "lightgbm": ("lightgbm",)}


def pins_for(extras: str) -> dict[str, str]:
    """The pins an image built with ``EXTRAS=extras`` (comma-separated) installs."""
    wanted = {e.strip() for e in extras.split(",") if e.strip()}
    unknown = wanted - {"serving", *OPTIONAL_PINS}
    if unknown:
        sys.exit(f"unknown extra(s) {sorted(unknown)} in EXTRAS={extras!r}; the image takes "
                 f"serving and any of {sorted(OPTIONAL_PINS)}, e.g. serving,xgboost")
    skip = {canonicalize_name(p) for extra, names in OPTIONAL_PINS.items()
            if extra not in wanted for p in names}
    return {name: v for name, v in read_pins().items() if name not in skip}


def check(extras: str = "serving") -> None:
    """Exit 1 unless the installed closure of kfp-mlops[extras] is exactly the pins."""
    names = tuple(sorted({e.strip() for e in extras.split(",") if e.strip()}))
    found = differences(closure("kfp-mlops", names), pins_for(extras))
    if found:
        sys.exit(
            f"the installed packages differ from {OUT.name}:\n  " + "\n  ".join(found)
            + "\nRegenerate it deliberately (python docker/freeze_constraints.py in an "
            "environment where the tests passed) or fix the requirement that moved."
        )
    print(f"installed closure matches all {len(pins_for(extras))} pins of {OUT.name} "
          f"for {extras}")


def main() -> None:
    """Write docker/constraints.txt for kfp-mlops[serving,xgboost,lightgbm].

    The estimator extras are pinned too: an image built with ``--build-arg
    EXTRAS=serving,xgboost`` must not move XGBoost under the models it trained (the
    loader refuses another version).
    """
    pins = closure("kfp-mlops", ("serving", "xgboost", "lightgbm"))
    version = ".".join(map(str, sys.version_info[:3]))
    lines = [
        "# Exact versions for the kfp-mlops image (pip install -c docker/constraints.txt).",
        f"# Generated by docker/freeze_constraints.py on Python {version} ({sys.platform})",
        "# from the environment the test suite passed in. Regenerate deliberately: a new",
        "# scikit-learn here means models trained by older images are refused by newer ones.",
    ]
    lines += [f"{name}=={pins[name]}" for name in sorted(pins)]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(pins)} pins to {OUT}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:  # --check [EXTRAS]: the installed closure is the pins
        check(*sys.argv[2:3])
        sys.exit(0)
    if sys.argv[1:2] == ["--pins"]:  # --pins EXTRAS: the pins that image installs
        print("\n".join(f"{n}=={v}" for n, v in sorted(pins_for(sys.argv[2]).items())))
        sys.exit(0)
    if not re.match(r"3\.11\.", sys.version):
        print("note: the image is python:3.11-slim; markers were evaluated for "
              f"{sys.version.split()[0]}", file=sys.stderr)
    main()
