"""The page's vendored files are what their README says: the editor bundle is built from web/, not edited.

modelspec/assets/editor.js is made by `make assets` from web/editor.js and the exact versions of
web/package.json; its banner names them and modelspec/assets/README.md records its sha256, so a hand edit of
the bundle, or a version changed without a rebuild, fails here. (The editor's behaviour in a browser:
tests/test_browser.py.)
"""

import hashlib
import json
import re

from conftest import ROOT

ASSETS = ROOT / "modelspec" / "assets"


def test_the_editor_bundle_is_the_build_of_web():
    bundle = (ASSETS / "editor.js").read_bytes()
    banner = bundle.split(b"\n", 1)[0].decode()
    pinned = json.loads((ROOT / "web" / "package.json").read_text())
    for name, version in pinned["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version}: web/package.json pins exact versions"
        assert f"{name} {version}" in banner, f"editor.js was not rebuilt after {name} became {version}"
    assert f"esbuild {pinned['devDependencies']['esbuild']}" in banner
    readme = (ASSETS / "README.md").read_text()
    assert hashlib.sha256(bundle).hexdigest() in readme, "editor.js differs from the build its README records"
    for name in pinned["dependencies"]:
        assert f"`{name}`" in readme


def test_every_bundled_package_has_its_license():
    licenses = (ASSETS / "LICENSES.txt").read_text()
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    bundled = [path.removeprefix("node_modules/") for path, info in lock["packages"].items()
               if path and not info.get("dev")]
    assert bundled and all(f"{name} " in licenses for name in bundled), \
        [name for name in bundled if f"{name} " not in licenses]
