"""Topic files: NIST XML layouts and plain `num text` lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.errors import BadInput
from mmsearch.trecvid.topics import Topic, load_topics

DATA = Path(__file__).parent / "data" / "trecvid"


def test_avs_xml_with_text_description() -> None:
    assert load_topics(DATA / "avs_topics.xml") == [
        Topic("1611", "Find shots of a drone flying over a river"),
        Topic("1612", "Find shots of a person playing drums indoors"),
    ]


def test_trecvid_2008_layout_ignores_examples() -> None:
    assert load_topics(DATA / "tv2008_topics.xml") == [
        Topic("0221", "Find shots of a person opening a door"),
        Topic("0222", "Find shots of 3 or fewer people sitting at a table"),
    ]


def test_concatenated_documents_with_doctypes() -> None:
    assert load_topics(DATA / "concatenated_topics.xml") == [
        Topic("001", "Shots of the Statue of Liberty"),
        Topic("002", "Scenes that depict the lift off of the Space Shuttle"),
    ]


def test_other_xml_shapes(tmp_path: Path) -> None:
    path = tmp_path / "t.xml"
    path.write_text(
        "<topics>"
        '<topic num="1">a red car</topic>'
        '<topic num="2" text="a  blue\n boat"/>'
        "<topic><num>Number: 3</num><title>a dog\n running</title></topic>"
        "<topic><num>4</num>a cat on a sofa</topic>"
        '<topic num="5"><textDescription>a train at night</textDescription></topic>'
        "</topics>"
    )
    assert load_topics(path) == [
        Topic("1", "a red car"),
        Topic("2", "a blue boat"),
        Topic("3", "a dog running"),
        Topic("4", "a cat on a sofa"),
        Topic("5", "a train at night"),
    ]


def test_plain_lines() -> None:
    assert load_topics(DATA / "topics.txt") == [
        Topic("611", "Find shots of a drone flying over a river"),
        Topic("612", "Find shots of a person playing drums indoors"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("611\n", "topic 611 has no text"),
        ("1 a\n1 b\n", "topic 1 appears twice"),
        ("# nothing\n\n", "holds no topics"),
        ("<topics><topic num='1'>x</topic>", "not well-formed XML"),
        ("<topics><topic num='1'></topic></topics>", "topic 1 has no text"),
        ("<topics><item>no numbers</item></topics>", "holds no topics"),
    ],
)
def test_bad_topic_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "topics"
    path.write_text(content)
    with pytest.raises(BadInput, match=message):
        load_topics(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="topics file not found"):
        load_topics(tmp_path / "absent.xml")
