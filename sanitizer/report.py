"""The sanitisation report and the one exception tree of the sanitiser.

Exceptions::

    SanitizerError
     └── Blocked(code)      the file is refused; `code` is one of REASONS (stable, machine-readable)

Reason codes and warning codes are stable: the app stores them and shows the Japanese or
English sentence of this catalogue. Sentences are never taken from the sandbox; the child
only names codes and parts (`where`), and the parent looks the sentences up here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["clean", "sanitized", "blocked"]
VERDICTS: tuple[str, ...] = ("clean", "sanitized", "blocked")

#: reason code -> (Japanese, English)
REASONS: dict[str, tuple[str, str]] = {
    "file_too_large": (
        "ファイルが20MiBを超えているため受け付けられません。",
        "The file is larger than 20 MiB and cannot be accepted.",
    ),
    "type_mismatch": (
        "ファイル名(拡張子)と中身の形式が一致しないため受け付けられません。",
        "The file's name (extension) does not match its content, so it was refused.",
    ),
    "encrypted": (
        "パスワードで暗号化されているため中身を検査できません。暗号化を解除して送ってください。",
        "The file is password-protected and cannot be inspected. Remove the password and resend.",
    ),
    "executable": (
        "実行ファイルやスクリプトは送れません。",
        "Executables and scripts cannot be sent.",
    ),
    "malware_test": (
        "ウイルス検査用のテストファイル(EICAR)のため受け付けられません。",
        "This is an anti-virus test file (EICAR) and was refused.",
    ),
    "unparseable": (
        "ファイルが壊れているか形式を解析できないため受け付けられません。",
        "The file is damaged or could not be parsed, so it was refused.",
    ),
    "limit_exceeded": (
        "ファイルの構造が安全のための上限(件数・サイズ・圧縮率・階層・画素数)を超えています。",
        "The file exceeds a safety limit (entries, size, compression ratio, depth or pixels).",
    ),
    "timeout": (
        "無害化の処理が時間内に終わらなかったため受け付けられません。",
        "Sanitisation did not finish in time, so the file was refused.",
    ),
    "crashed": (
        "無害化の処理中に解析処理が異常終了したため受け付けられません。",
        "The parser stopped abnormally while sanitising this file, so it was refused.",
    ),
    "unsupported_type": (
        "この形式のファイルは無害化に対応していないため受け付けられません。",
        "This file type is not supported by the sanitiser and was refused.",
    ),
    "legacy_macros": (
        "マクロを含む旧形式のOfficeファイルは受け付けられません。"
        ".docx / .xlsx / .pptx 形式で保存し直して送ってください。",
        "Old-format Office files with macros are refused. "
        "Save the file as .docx / .xlsx / .pptx and send it again.",
    ),
    "legacy_embedded_object": (
        "埋め込みオブジェクトやDDEを含む旧形式のOfficeファイルは受け付けられません。"
        ".docx / .xlsx / .pptx 形式で保存し直して送ってください。",
        "Old-format Office files with embedded objects or DDE are refused. "
        "Save the file as .docx / .xlsx / .pptx and send it again.",
    ),
    "worker_failed": (
        "無害化の処理を繰り返し完了できなかったため受け付けられません。",
        "Sanitisation failed repeatedly for this file, so it was refused.",
    ),
    "invalid_job": (
        "無害化の依頼が不正です(対象ファイルの場所が正しくありません)。",
        "The sanitisation job is invalid (the file's location is not allowed).",
    ),
}

#: warning code -> (Japanese, English)
WARNINGS: dict[str, tuple[str, str]] = {
    "macros_removed": (
        "マクロを削除したため、ブックの自動処理は動作しません。",
        "Macros were removed, so the file's automation will no longer work.",
    ),
    "objects_removed": (
        "埋め込みオブジェクトやActiveXコントロールを削除したため、その部分は表示されません。",
        "Embedded objects and ActiveX controls were removed and will not be shown.",
    ),
    "links_removed": (
        "外部へのリンク・参照を削除したため、外部データは更新されません。",
        "External links and references were removed; external data will not update.",
    ),
    "fields_removed": (
        "外部を参照するフィールドや数式を削除しました。表示されている値はそのまま残っています。",
        "Fields and formulas that fetch or run were removed; their last shown values remain.",
    ),
    "type_converted": (
        "マクロ有効形式から通常の形式に変換しました(拡張子が変わります)。",
        "The file was converted from a macro-enabled type to the macro-free type.",
    ),
    "pdf_actions_removed": (
        "PDFのスクリプト・自動実行・添付ファイルを削除しました。",
        "PDF scripts, automatic actions and attached files were removed.",
    ),
    "forms_removed": (
        "PDFのXFAフォームを削除したため、フォームが表示されない場合があります。",
        "The PDF's XFA form was removed; the form may not display.",
    ),
    "image_reencoded": (
        "画像を再エンコードし、撮影位置(GPS)などのメタデータを削除しました。",
        "The image was re-encoded and its metadata (GPS location included) removed.",
    ),
    "heic_converted": (
        "HEIC画像をJPEGに変換しました。",
        "The HEIC image was converted to JPEG.",
    ),
    "animation_dropped": (
        "アニメーション画像は最初のコマだけを残しました。",
        "Only the first frame of the animated image was kept.",
    ),
    "pictures_removed": (
        "読み取れない画像または上限を超える画像を文書から削除しました。",
        "Pictures that could not be read or were over the limits were removed from the document.",
    ),
    "svg_rebuilt": (
        "SVG画像からスクリプトや外部参照を削除しました。",
        "Scripts and external references were removed from the SVG image.",
    ),
    "html_to_text": (
        "HTMLファイルはテキストファイルに変換しました(書式・リンクは失われます)。",
        "The HTML file was converted to plain text (formatting and links are lost).",
    ),
    "csv_formulas_neutralised": (
        "CSVの数式として実行されるセルの先頭に ' を付けて無効化しました。",
        "CSV cells that Excel would run as formulas were prefixed with ' to neutralise them.",
    ),
    "archive_entries_removed": (
        "アーカイブ内の一部のファイルを削除しました(詳細は削除一覧を参照)。",
        "Some files inside the archive were removed (see the list of removed items).",
    ),
    "trailing_data_removed": (
        "ファイル末尾の余分なデータを削除しました。",
        "Extra data appended after the end of the file was removed.",
    ),
    "legacy_format_checked": (
        "旧形式のOfficeファイルです。構造を検査しマクロ・埋め込みオブジェクトがないことを"
        "確認しましたが、可能であれば .docx / .xlsx 形式をお使いください。",
        "Old-format Office file: its structure was checked and has no macros or embedded "
        "objects, but please prefer .docx / .xlsx.",
    ),
    "report_truncated": (
        "削除した項目が多いため、一覧は途中までです。",
        "Too many items were removed to list them all.",
    ),
}


class SanitizerError(Exception):
    """Base of the sanitiser's exceptions."""


class Blocked(SanitizerError):
    """The file is refused. `code` is a key of REASONS; `detail` is for logs only."""

    def __init__(self, code: str, detail: str = "", *, detected_type: str = "") -> None:
        if code not in REASONS:
            raise ValueError(f"unknown reason code {code!r}")
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.detected_type = detected_type


@dataclass(frozen=True)
class Removed:
    """One piece of active content that was removed."""

    kind: str
    where: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where}


@dataclass(frozen=True)
class Message:
    """A coded sentence in Japanese and English."""

    code: str
    ja: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "ja": self.ja, "en": self.en}


def warning(code: str) -> Message:
    ja, en = WARNINGS[code]
    return Message(code, ja, en)


def reason(code: str) -> Message:
    ja, en = REASONS[code]
    return Message(code, ja, en)


@dataclass
class Report:
    """What was done to one file. `reason` is set only when the verdict is `blocked`."""

    verdict: Verdict
    detected_type: str
    removed: list[Removed] = field(default_factory=list)
    warnings: list[Message] = field(default_factory=list)
    reason: Message | None = None
    output_mime: str | None = None
    output_filename: str | None = None
    removed_not_listed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "detected_type": self.detected_type,
            "removed": [r.to_dict() for r in self.removed],
            "removed_not_listed": self.removed_not_listed,
            "warnings": [w.to_dict() for w in self.warnings],
            "reason": self.reason.code if self.reason else None,
            "reason_ja": self.reason.ja if self.reason else None,
            "reason_en": self.reason.en if self.reason else None,
            "output_mime": self.output_mime,
            "output_filename": self.output_filename,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def blocked(cls, code: str, detected_type: str = "application/octet-stream") -> Report:
        return cls(verdict="blocked", detected_type=detected_type, reason=reason(code))
