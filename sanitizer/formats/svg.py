"""SVG, rebuilt element by element from an allowlist; it stays a vector image with its text.

Dropped: scripts, event handlers, foreignObject, animation that can set links, every
reference outside the document (only `#fragment` links, and raster `data:image/...` in
<image>, remain), CSS that imports or fetches, and the DOCTYPE with its entities (a file with
entity declarations is refused by the parser).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from sanitizer import mimes, xmlsafe
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

ELEMENTS = frozenset(
    """svg g defs title desc metadata path rect circle ellipse line polyline polygon text
    tspan textPath linearGradient radialGradient stop clipPath mask pattern symbol use image
    marker style filter feGaussianBlur feOffset feBlend feColorMatrix feComposite feFlood
    feMerge feMergeNode feMorphology feDropShadow switch""".split()
)

ATTRIBUTES = frozenset(
    """id class style transform x y x1 y1 x2 y2 cx cy r rx ry width height d points
    viewBox preserveAspectRatio fill fill-opacity fill-rule stroke stroke-width
    stroke-linecap stroke-linejoin stroke-miterlimit stroke-dasharray stroke-dashoffset
    stroke-opacity opacity font-family font-size font-weight font-style text-anchor
    dominant-baseline alignment-baseline baseline-shift letter-spacing word-spacing
    writing-mode dx dy rotate textLength lengthAdjust offset stop-color stop-opacity
    gradientUnits gradientTransform spreadMethod fx fy clip-path clip-rule mask
    patternUnits patternContentUnits patternTransform markerWidth markerHeight refX refY
    orient markerUnits marker-start marker-mid marker-end visibility display color
    version xml:space filter in in2 stdDeviation result mode values type operator k1 k2 k3
    k4 flood-color flood-opacity radius maskUnits maskContentUnits clipPathUnits
    filterUnits primitiveUnits vector-effect paint-order shape-rendering text-rendering
    image-rendering startOffset method spacing side href lang""".split()
)

_URL_ATTRIBUTES = frozenset(
    {"fill", "stroke", "clip-path", "mask", "filter", "marker-start", "marker-mid", "marker-end"}
)
_SAFE_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$")
_CSS_DANGER = re.compile(
    r"@import|expression\s*\(|javascript:|behavio(u)?r\s*:|-moz-binding|url\s*\(\s*['\"]?\s*"
    r"(?!#)",
    re.IGNORECASE,
)
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def disarm(data: bytes, ctx: Context) -> Disarmed:
    root = xmlsafe.parse_et(data, allow_doctype=True)
    if root.tag != f"{{{SVG_NS}}}svg":
        raise Blocked("unparseable", f"svg root {root.tag!r}")
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    removed_before = len(ctx.removed)
    clean = _copy(root, ctx, "svg")
    if clean is None:
        raise Blocked("unparseable", "svg root removed")
    if b"<!DOCTYPE" in data[:4096] or b"<!doctype" in data[:4096]:
        ctx.remove("doctype", "DOCTYPE")
    if len(ctx.removed) > removed_before:
        ctx.warn("svg_rebuilt")
    body = ET.tostring(clean, encoding="utf-8", xml_declaration=True)
    return Disarmed(body, mimes.SVG)


def _copy(el: ET.Element, ctx: Context, path: str) -> ET.Element | None:
    tag = el.tag
    if not tag.startswith(f"{{{SVG_NS}}}"):
        ctx.remove("foreign_element", f"{path}/{tag}")
        return None
    name = tag[len(SVG_NS) + 2 :]
    here = f"{path}/{name}" if path != "svg" or name != "svg" else "svg"
    if name not in ELEMENTS:
        kind = {"script": "script", "foreignObject": "foreign_object"}.get(name, "svg_element")
        ctx.remove(kind, here)
        return None
    if name == "style" and el.text and _CSS_DANGER.search(el.text):
        ctx.remove("external_reference", f"{here} (CSS)")
        return None
    new = ET.Element(tag)
    for attr, value in el.attrib.items():
        clean_value = _attribute(name, attr, value, ctx, here)
        if clean_value is not None:
            key = attr if attr in (_XML_SPACE, _XML_LANG) else _plain_name(attr)
            new.set(key, clean_value)
    new.text = el.text
    for child in el:
        copied = _copy(child, ctx, here)
        if copied is not None:
            new.append(copied)
            copied.tail = child.tail
    return new


def _plain_name(attr: str) -> str:
    if attr == f"{{{XLINK_NS}}}href":
        return f"{{{XLINK_NS}}}href"
    return attr


def _attribute(element: str, attr: str, value: str, ctx: Context, where: str) -> str | None:
    if attr in (_XML_SPACE, _XML_LANG):
        return value
    if attr in (f"{{{XLINK_NS}}}href", "href"):
        stripped = value.strip()
        if stripped.startswith("#") or (element == "image" and _SAFE_DATA_IMAGE.match(stripped)):
            return value
        ctx.remove("external_reference", f"{where}@href")
        return None
    if attr.startswith("{") or attr not in ATTRIBUTES:
        kind = "event_handler" if attr.lower().startswith("on") else "svg_attribute"
        ctx.remove(kind, f"{where}@{attr}")
        return None
    if attr == "style" and _CSS_DANGER.search(value):
        ctx.remove("external_reference", f"{where}@style")
        return None
    if (
        attr in _URL_ATTRIBUTES
        and "url(" in value.replace(" ", "")
        and "url(#" not in value.replace(" ", "")
    ):
        ctx.remove("external_reference", f"{where}@{attr}")
        return None
    return value
