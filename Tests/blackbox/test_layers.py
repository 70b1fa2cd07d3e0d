"""The library's layers (docs/ARCHITECTURE.md): lower layers never name a type of a higher one.

Not a black-box test of the tools: it reads Sources/MQLog. Comments are ignored.
"""

import re
from pathlib import Path

import pytest

MQLOG = Path(__file__).resolve().parents[2] / "Sources" / "MQLog"
# Highest first; a directory may use its own layer and those after it.
LAYERS = [["Engines"], ["Maintenance", "Copy"], ["Groups", "Dedup"], ["Log"], ["Text"], ["Records"],
          ["Compression"], ["System", "Errors", "Partitioning"]]
# Top-level declarations only (nested types such as Entry are qualified where used).
DECLARATION = re.compile(r"^(?:public |internal |fileprivate )?(?:final )?(?:class|struct|enum|protocol|actor) ([A-Z]\w*)", re.M)


def code(path):
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    return re.sub(r"//.*", "", text)


def declared(directory):
    return {name: f.name for f in (MQLOG / directory).glob("*.swift") for name in DECLARATION.findall(code(f))}


def test_every_directory_has_a_layer():
    assert {d.name for d in MQLOG.iterdir() if d.is_dir()} == {d for layer in LAYERS for d in layer}


@pytest.mark.parametrize("level", range(1, len(LAYERS)))
def test_lower_layers_do_not_name_higher_types(level):
    higher = {}
    for layer in LAYERS[:level]:
        for directory in layer:
            higher.update({name: f"{directory}/{file}" for name, file in declared(directory).items()})
    found = []
    for directory in LAYERS[level]:
        for f in (MQLOG / directory).glob("*.swift"):
            text = code(f)
            own = set(DECLARATION.findall(text))
            for name, where in higher.items():
                if name not in own and re.search(rf"\b{name}\b", text):
                    found.append(f"{directory}/{f.name} uses {name} ({where})")
    assert not found, "\n".join(found)
