"""XML parsing with DTDs, entities and external references forbidden.

defusedxml checks the prolog (where a DOCTYPE must be); the tree that is edited and written
back is lxml's, parsed with entity resolution and network access off, because lxml keeps
namespace prefixes that Office needs (`mc:Ignorable` names prefixes, not namespaces).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import defusedxml
import defusedxml.ElementTree as DET
from lxml import etree

from sanitizer import limits
from sanitizer.report import Blocked

_PROLOG_BYTES = 64 * 1024


def check_prolog(data: bytes) -> None:
    """Refuse a DOCTYPE, entity declarations and external references (defusedxml)."""
    parser = DET.DefusedXMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data[:_PROLOG_BYTES])
    except defusedxml.DefusedXmlException as exc:
        raise Blocked("unparseable", f"xml: {exc!r}") from exc
    except ET.ParseError as exc:
        raise Blocked("unparseable", f"xml: {exc}") from exc


def _lxml_parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse(data: bytes) -> Any:
    """An lxml root element for `data`, or Blocked."""
    if len(data) > limits.XML_MAX_PART_BYTES:
        raise Blocked("limit_exceeded", "xml part size")
    check_prolog(data)
    try:
        root = etree.fromstring(data, parser=_lxml_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise Blocked("unparseable", f"xml: {exc}") from exc
    return root
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise Blocked("unparseable", "xml doctype")
    return root


def serialize(root: Any) -> bytes:
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    return data


def parse_et(data: bytes, *, allow_doctype: bool = False) -> ET.Element:
    """An ElementTree root for `data` via defusedxml (entities and external refs forbidden)."""
    if len(data) > limits.XML_MAX_PART_BYTES:
        raise Blocked("limit_exceeded", "xml size")
    try:
        root: ET.Element = DET.fromstring(
            data, forbid_dtd=not allow_doctype, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        raise Blocked("unparseable", f"xml: {exc!r}") from exc
    except ET.ParseError as exc:
        raise Blocked("unparseable", f"xml: {exc}") from exc
    return root
