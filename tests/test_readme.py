"""The README's examples are real: its specs compile, its printed code is what codegen prints."""

import re

from conftest import ROOT
from modelspec import SpecError, compile_spec, generate_code

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_specs_compile():
    specs = [b for b in blocks("nnspec") if not b.startswith("train ")]
    assert len(specs) >= 2
    for spec in specs:
        compile_spec(spec, seed=0)


def test_readme_train_section_is_the_bundled_one():
    (section,) = [b for b in blocks("nnspec") if b.startswith("train ")]
    assert section in (ROOT / "specs" / "linear_regression.nnspec").read_text()


def test_readme_code_is_what_codegen_prints():
    spec, printed = blocks("nnspec")[0], blocks("python")[0]
    assert printed.strip() in generate_code(spec)


def test_readme_error_is_what_check_prints():
    spec = blocks("nnspec")[0].replace("Linear(_, 128)  ", "Linear(64 * 4 * 4, 128)")
    shown = re.search(r"```\n(cnn\.nnspec:.*?)```", README, flags=re.S).group(1).splitlines()
    try:
        compile_spec(spec)
    except SpecError as err:
        err.path = "cnn.nnspec"
        first, source, caret, hint = err.render().splitlines()
        assert [first, source.split("#")[0].rstrip(), caret, hint] == shown
    else:
        raise AssertionError("the README's mistake compiled")


def test_readme_pictures_exist():
    """The README's pictures (the playground's, written by tests/test_browser.py) are in the repository."""
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures and all((ROOT / p).is_file() for p in pictures), pictures
