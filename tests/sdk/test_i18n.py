"""``voxloop.i18n``: the words and digits of a rating, shared by the email row and the gateway."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from voxloop import i18n
from voxloop._event import METRIC_RANGES
from voxloop.i18n import LANGUAGES, STRINGS, Strings, language_of


def test_all_is_complete_and_sorted() -> None:
    tree = ast.parse(Path(i18n.__file__).read_text(encoding="utf-8"))
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    assert {name for name in defined if not name.startswith("_")} == set(i18n.__all__)
    assert i18n.__all__ == sorted(i18n.__all__, key=lambda name: (not name.isupper(), name))


def test_imports_nothing_but_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import voxloop.i18n\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "assert new <= sys.stdlib_module_names | {'voxloop', 'orjson'}, new\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_every_metrics_words(language: str) -> None:
    strings = STRINGS[language]
    assert set(strings.questions) == set(METRIC_RANGES)
    assert set(strings.anchors) == set(METRIC_RANGES) - {"thumbs"}
    assert len(strings.digits) == 10 and len(strings.thumbs) == 2
    assert strings.direction == ("rtl" if language in ("ar", "fa") else "ltr")


@pytest.mark.parametrize(
    ("language", "ten", "thumbs_up"),
    [("en", "10", "Like"), ("ar", "١٠", "أعجبني"), ("fa", "۱۰", "پسندیدم"), ("id", "10", "Suka")],
)
def test_a_score_is_written_as_the_language_writes_it(
    language: str, ten: str, thumbs_up: str
) -> None:
    strings = STRINGS[language]
    assert strings.numeral(10) == strings.score_label("nps", 10) == ten
    assert strings.score_label("thumbs", 1) == thumbs_up


def test_language_of_a_tag() -> None:
    assert LANGUAGES == ("en", "ar", "fa", "id") == tuple(STRINGS)
    assert language_of("ar-EG") == language_of("AR") == "ar"
    assert language_of("fa_IR") is None  # an underscore is no subtag separator
    assert language_of("pt-BR") is language_of("") is None


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        STRINGS["en"] = STRINGS["ar"]  # type: ignore[index]
    with pytest.raises(TypeError):
        STRINGS["en"].questions["nps"] = "?"  # type: ignore[index]
    with pytest.raises(AttributeError):
        STRINGS["en"].rtl = True  # type: ignore[misc]
    assert isinstance(STRINGS["fa"], Strings)
