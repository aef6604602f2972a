"""Offline web assets for real-browser tests: CDN requests served from local npm packages.

The test machines have no internet. ``make test`` installs the front-end
packages that folium's pages load from CDNs under ``.cache/web/node_modules``
(see ``WEB_PACKAGES`` in the Makefile) and Debian's Chromium at
``/usr/bin/chromium``. :func:`offline_assets` gives a Playwright route handler
that serves each CDN URL from those packages, answers the few assets that have
no local package with an empty body, and aborts everything else (tiles, ...),
recording every URL so a test can assert on what the page asked for::

    assets = offline_assets()
    page.route("**/*", assets.handle)
    ...
    assert assets.aborted == []
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where ``make test`` installs the front-end packages.
NODE_MODULES = REPO_ROOT / ".cache" / "web" / "node_modules"
#: Debian's Chromium (installed by ``make test``).
CHROMIUM = Path("/usr/bin/chromium")
#: Command-line switches for a quiet headless Chromium that never reaches the network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

#: Assets with no local npm package: answered with an empty body of this content type.
#: folium links them on every page, but our maps use none of their features
#: (no awesome-marker icons, no glyphicons, no rotated markers).
STUBBED_ASSETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^https://cdnjs\.cloudflare\.com/ajax/libs/Leaflet\.awesome-markers/"
                r"[^/]+/leaflet\.awesome-markers\.js$"), "application/javascript"),
    (re.compile(r"^https://cdnjs\.cloudflare\.com/ajax/libs/Leaflet\.awesome-markers/"
                r"[^/]+/leaflet\.awesome-markers\.css$"), "text/css"),
    (re.compile(r"^https://netdna\.bootstrapcdn\.com/bootstrap/[^/]+/css/"
                r"bootstrap-glyphicons\.css$"), "text/css"),
    (re.compile(r"^https://cdn\.jsdelivr\.net/gh/python-visualization/folium/"
                r".*leaflet\.awesome\.rotate(\.min)?\.css$"), "text/css"),
)

_JSDELIVR_NPM = re.compile(
    r"^https://cdn\.jsdelivr\.net/npm/(?P<pkg>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<path>.+)$"
)
_JQUERY = re.compile(r"^https://code\.jquery\.com/jquery-(?P<version>[\d.]+)(?P<min>\.min)?\.js$")

CONTENT_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".json": "application/json",
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".eot": "application/vnd.ms-fontobject",
}


@dataclass
class OfflineAssets:
    """A Playwright route handler and the URLs it served, stubbed and aborted.

    Attributes
    ----------
    node_modules
        The folder of local npm packages.
    local
        ``file://`` URLs let through (the page under test and its neighbours).
    served
        CDN URLs answered from a local package.
    stubbed
        CDN URLs with no local package, answered with an empty body.
    aborted
        Every other URL (tiles, missing files, packages at another version).
    """

    node_modules: Path = NODE_MODULES
    local: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    stubbed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)

    def local_file(self, url: str) -> Path | None:
        """The local file that stands for a CDN ``url``, or None."""
        url = url.split("?", 1)[0].split("#", 1)[0]
        match = _JSDELIVR_NPM.match(url)
        if match:
            package, version, path = match["pkg"], match["version"], match["path"]
        else:
            match = _JQUERY.match(url)
            if not match:
                return None
            package, version = "jquery", match["version"]
            path = f"dist/jquery{match['min'] or ''}.js"
        root = self.node_modules / package
        if _package_version(root) != version:
            return None
        candidate = (root / path).resolve()
        if not candidate.is_file() or not candidate.is_relative_to(root.resolve()):
            return None
        return candidate

    def handle(self, route: Any) -> None:
        """Route handler for ``page.route("**/*", ...)``."""
        url: str = route.request.url
        if url.startswith("file://"):
            self.local.append(url)
            route.continue_()
            return
        path = self.local_file(url)
        if path is not None:
            self.served.append(url)
            route.fulfill(
                status=200, body=path.read_bytes(),
                content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                headers={"Access-Control-Allow-Origin": "*"},
            )
            return
        bare = url.split("?", 1)[0].split("#", 1)[0]
        for pattern, content_type in STUBBED_ASSETS:
            if pattern.match(bare):
                self.stubbed.append(url)
                route.fulfill(status=200, body="", content_type=content_type,
                              headers={"Access-Control-Allow-Origin": "*"})
                return
        self.aborted.append(url)
        route.abort()


def offline_assets(node_modules: Path = NODE_MODULES) -> OfflineAssets:
    """A fresh route handler serving CDN assets from ``node_modules`` (see module doc)."""
    return OfflineAssets(node_modules=node_modules)


def _package_version(root: Path) -> str | None:
    try:
        return str(json.loads((root / "package.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def require_browser() -> None:
    """Skip the calling test when Chromium, Playwright or the web packages are missing.

    Under CI (the ``CI`` environment variable is set) a missing prerequisite
    fails the test instead: ``make test`` installs them all, so CI must run it.
    """
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium, or `make test`)")
    if not NODE_MODULES.is_dir():
        missing.append(f"{NODE_MODULES} (`make .cache/web/node_modules/.installed`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not missing:
        return
    reason = "browser test prerequisites missing: " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def save_artifact(source: Path, name: str) -> Path:
    """Copy a test output (e.g. a screenshot) to ``outputs/test-artifacts/name`` for a human."""
    target = REPO_ROOT / "outputs" / "test-artifacts" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
