"""Search topics (queries) as NIST releases them, or as plain `num text` lines.

XML is read liberally because NIST's element names changed over the years: TRECVID 2008 used
`<videoTopics><videoTopic num="0221"><textDescription text="Find shots of ..."/>...`, older files
concatenate several `<!DOCTYPE ...><videoTopic ...>` documents in one file, and AVS topic files use their
own element names. Any element with a `num` attribute (or `<num>` child) is a topic; its text is, first
found: a `text` attribute, a `<textDescription>` child (its `text` attribute or content), a
`<text>`/`<title>` child, or the element's own text.

Plain text: one topic per line, `num` (digits) then the query text; blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from mmsearch.errors import BadInput
from mmsearch.trecvid._textio import read_text

# Declarations that stop a concatenation of XML documents from parsing as one wrapped document.
_DECLARATIONS = re.compile(r"<\?xml[^>]*\?>|<!D[OU]CTYPE[^>]*>", re.IGNORECASE)
_TEXT_CHILDREN = ("text", "title", "description")


@dataclass(frozen=True)
class Topic:
    num: str
    text: str


def load_topics(path: str | Path) -> list[Topic]:
    """Topics in file order; XML when the file starts with `<`, plain lines otherwise."""
    text = read_text(path, "topics file")
    topics = _parse_xml(text, path) if text.lstrip().startswith("<") else _parse_lines(text, path)
    if not topics:
        raise BadInput(f"topics file {path} holds no topics")
    seen: set[str] = set()
    for topic in topics:
        if topic.num in seen:
            raise BadInput(f"topics file {path}: topic {topic.num} appears twice")
        seen.add(topic.num)
    return topics


def _parse_lines(text: str, path: str | Path) -> list[Topic]:
    topics = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(maxsplit=1)
        if not parts[0].isdigit():
            # e.g. tv16_17_18.avs.topics_parsed.txt: bare sentences whose numbers were stripped.
            raise BadInput(
                f"{path}:{number}: {parts[0]!r} is not a topic number (expected 'num text' lines)",
                hint="the file looks like bare query sentences; prefix each with its topic number",
            )
        if len(parts) < 2:
            raise BadInput(f"{path}:{number}: topic {parts[0]} has no text (expected 'num text...')")
        topics.append(Topic(parts[0], _squash(parts[1])))
    return topics


def _parse_xml(text: str, path: str | Path) -> list[Topic]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        # Several documents in one file: drop their declarations and parse them under one root.
        try:
            root = ET.fromstring(f"<topics>{_DECLARATIONS.sub('', text)}</topics>")
        except ET.ParseError as e:
            raise BadInput(f"topics file {path} is not well-formed XML: {e}") from e
    topics: list[Topic] = []
    _collect(root, topics, path)
    return topics


def _collect(element: ET.Element, topics: list[Topic], path: str | Path) -> None:
    """Depth-first; a topic's own descendants are not searched for further topics."""
    num = _topic_num(element)
    if num is not None:
        text = _topic_text(element)
        if not text:
            raise BadInput(f"topics file {path}: topic {num} has no text")
        topics.append(Topic(num, text))
        return
    for child in element:
        _collect(child, topics, path)


def _topic_num(element: ET.Element) -> str | None:
    num = element.get("num")
    if num is None:
        child = element.find("num")
        num = child.text if child is not None else None
    if num is None:
        return None
    # TREC-style `<num>Number: 301</num>` keeps only the number.
    return num.strip().removeprefix("Number:").strip() or None


def _topic_text(element: ET.Element) -> str:
    if element.get("text"):
        return _squash(element.get("text", ""))
    description = element.find("textDescription")
    if description is not None:
        return _squash(description.get("text") or "".join(description.itertext()))
    for name in _TEXT_CHILDREN:
        child = element.find(name)
        if child is not None and "".join(child.itertext()).strip():
            return _squash("".join(child.itertext()))
    own = [element.text or ""] + [child.tail or "" for child in element]
    return _squash(" ".join(own))


def _squash(text: str) -> str:
    """Descriptions wrap over several lines in NIST files; queries want single spaces."""
    return " ".join(text.split())
