"""The XML bodies of the S3 face: results of the list operations and errors.

Documents are built with ElementTree (it escapes text), in S3's namespace, and returned
as bytes with the XML declaration clients expect.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
CONTENT_TYPE = "application/xml"


def iso8601(ts: float) -> str:
    """S3's timestamp form in listings: 2026-12-04T01:02:03.000Z."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def element(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = _xml_safe(str(text))
    return e


def document(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def root(tag: str, namespaced: bool = True) -> ET.Element:
    return ET.Element(tag, {"xmlns": NS} if namespaced else {})


def error(code: str, message: str, resource: str, request_id: str,
          extra: dict[str, str] | None = None) -> bytes:
    doc = root("Error", namespaced=False)
    element(doc, "Code", code)
    element(doc, "Message", message)
    for k, v in (extra or {}).items():
        element(doc, k, v)
    element(doc, "Resource", resource)
    element(doc, "RequestId", request_id)
    return document(doc)
