"""Canonical MIME types, their families and the names (extensions) each family may carry."""

from __future__ import annotations

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOCM = "application/vnd.ms-word.document.macroEnabled.12"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
PPTM = "application/vnd.ms-powerpoint.presentation.macroEnabled.12"
OOXML_ENCRYPTED = "application/x-ooxml-encrypted"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
JTD = "application/x-js-taro"
RTF = "application/rtf"
PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
HEIC = "image/heic"
SVG = "image/svg+xml"
HTML = "text/html"
TEXT = "text/plain"
CSV = "text/csv"
ZIP = "application/zip"

#: The extension given to a rendition of each output type.
EXTENSION_OF_MIME: dict[str, str] = {
    DOCX: "docx",
    XLSX: "xlsx",
    PPTX: "pptx",
    DOC: "doc",
    XLS: "xls",
    PPT: "ppt",
    JTD: "jtd",
    RTF: "rtf",
    PDF: "pdf",
    JPEG: "jpg",
    PNG: "png",
    GIF: "gif",
    WEBP: "webp",
    SVG: "svg",
    TEXT: "txt",
    CSV: "csv",
    ZIP: "zip",
}

#: Types a rendition may have; anything else coming back from the sandbox is refused.
OUTPUT_MIMES = frozenset(EXTENSION_OF_MIME)

FAMILY_OF_MIME: dict[str, str] = {
    DOCX: "word",
    DOCM: "word",
    XLSX: "excel",
    XLSM: "excel",
    PPTX: "powerpoint",
    PPTM: "powerpoint",
    OOXML_ENCRYPTED: "encrypted_office",
    DOC: "word_legacy",
    XLS: "excel_legacy",
    PPT: "powerpoint_legacy",
    JTD: "ichitaro",
    RTF: "rtf",
    PDF: "pdf",
    JPEG: "image",
    PNG: "image",
    GIF: "image",
    WEBP: "image",
    HEIC: "image",
    SVG: "svg",
    HTML: "html",
    TEXT: "text",
    CSV: "text",
    ZIP: "zip",
}

FAMILY_OF_EXTENSION: dict[str, str] = {
    **dict.fromkeys(("docx", "docm", "dotx", "dotm"), "word"),
    **dict.fromkeys(("xlsx", "xlsm", "xltx", "xltm", "xlam"), "excel"),
    **dict.fromkeys(("pptx", "pptm", "potx", "potm", "ppsx", "ppsm", "ppam"), "powerpoint"),
    **dict.fromkeys(("doc", "dot"), "word_legacy"),
    **dict.fromkeys(("xls", "xlt"), "excel_legacy"),
    **dict.fromkeys(("ppt", "pps", "pot"), "powerpoint_legacy"),
    **dict.fromkeys(("jtd", "jtt", "jtdc"), "ichitaro"),
    "rtf": "rtf",
    "pdf": "pdf",
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "heic", "heif"), "image"),
    "svg": "svg",
    **dict.fromkeys(("html", "htm", "xhtml"), "html"),
    **dict.fromkeys(("txt", "csv", "tsv", "text", "log", "md", "json"), "text"),
    "zip": "zip",
}

#: For a name's family, the content families it may hold.
COMPATIBLE_FAMILIES: dict[str, frozenset[str]] = {
    "word": frozenset({"word", "encrypted_office"}),
    "excel": frozenset({"excel", "encrypted_office"}),
    "powerpoint": frozenset({"powerpoint", "encrypted_office"}),
    # Word and Excel save RTF and HTML under .doc/.xls names ("Save as .doc").
    "word_legacy": frozenset({"word_legacy", "rtf", "word"}),
    "excel_legacy": frozenset({"excel_legacy", "html"}),
    "powerpoint_legacy": frozenset({"powerpoint_legacy"}),
    "ichitaro": frozenset({"ichitaro"}),
    "rtf": frozenset({"rtf"}),
    "pdf": frozenset({"pdf"}),
    "image": frozenset({"image"}),
    "svg": frozenset({"svg"}),
    "html": frozenset({"html"}),
    "text": frozenset({"text"}),
    "zip": frozenset({"zip"}),
}
