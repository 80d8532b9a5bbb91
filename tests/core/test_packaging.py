"""What an install carries: every package under core/ and gui/ is listed in pyproject.toml
(a missing one once left the experiments out of a non-editable install), and resources/ is
installed as the package ``batchscope_resources`` with all its files."""

from __future__ import annotations

import fnmatch
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (the test extra)
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def _setuptools() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def _glob_match(path: str, pattern: str) -> bool:
    """setuptools' package-data globbing: ``*`` stays within one folder."""
    parts, pats = path.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(map(fnmatch.fnmatchcase, parts, pats))


def test_every_package_is_listed():
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("core", "gui")
        for p in (REPO / top).rglob("__init__.py")
    }
    listed = set(_setuptools()["packages"])
    assert on_disk <= listed, f"not in pyproject's packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == {"batchscope_resources", "batchscope_resources.presets"}


def test_every_resource_file_is_package_data():
    cfg = _setuptools()
    assert cfg["package-dir"]["batchscope_resources"] == "resources"
    data = cfg["package-data"]
    files = [
        p.relative_to(REPO / "resources").as_posix()
        for p in (REPO / "resources").rglob("*")
        if p.is_file()
    ]
    assert {"help.md", "tour.md", "icon.svg"} <= set(files)
    assert not _glob_match("presets/extra.md", "*.md")  # the helper globs as setuptools

    def shipped(f: str) -> bool:
        folder, _, name = f.rpartition("/")
        package = ".".join(["batchscope_resources", *filter(None, folder.split("/"))])
        return any(_glob_match(name, pat) for pat in data.get(package, []))

    missed = [f for f in files if not shipped(f)]
    assert not missed, f"resources an install would leave out: {missed}"
