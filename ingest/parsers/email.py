"""E-mails (.eml): ISO-2022-JP, UTF-8 or Shift_JIS bodies and headers.

The stdlib ``email`` package with ``policy.default`` decodes RFC 2047 headers and the
declared body charset. Where a body declared ISO-2022-JP holds NEC special characters
(①), the stdlib produces U+FFFD; we then re-decode the raw bytes as CP932 via JIS → SJIS.
"""

from __future__ import annotations

import codecs
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from hikitsugi.ingest.encoding import decode_bytes
from hikitsugi.ingest.model import Block, ParsedDoc, ParseError


def _part_text(part) -> str:
    raw = part.get_payload(decode=True) or b""
    charset = (part.get_content_charset() or "").lower()
    if charset in ("iso-2022-jp", "iso2022_jp", "csiso2022jp"):
        try:
            text = raw.decode("iso2022_jp_ext")
        except UnicodeDecodeError:
            text = raw.decode("iso2022_jp_2", errors="replace")
        if "\ufffd" in text or "?" in text:
            try:  # NEC special characters: JIS → EUC → CP932
                text = codecs.decode(raw, "iso2022_jp_3")
            except UnicodeDecodeError:
                pass
        return text
    if charset:
        try:
            return raw.decode({"shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932"}.get(charset, charset))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(raw).text


def parse_eml(data: bytes, path: Path, rel: str) -> tuple[ParsedDoc, list[tuple[str, bytes]]]:
    """Return the message as a note and its attachments (filename, bytes) for the manual parsers."""
    msg = BytesParser(policy=policy.default).parsebytes(data)
    if not msg.keys():
        raise ParseError("not an e-mail: no headers")
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = _part_text(body_part) if body_part is not None else ""
    if body_part is not None and body_part.get_content_type() == "text/html":
        from selectolax.lexbor import LexborHTMLParser

        body = LexborHTMLParser(body).text(separator="\n", strip=True)
    subject = str(msg.get("subject", "") or "").strip()
    sender = str(msg.get("from", "") or "")
    occurred = None
    if msg.get("date"):
        try:
            occurred = parsedate_to_datetime(str(msg["date"])).isoformat()
        except (TypeError, ValueError):
            occurred = None
    attachments = [(a.get_filename() or "attachment", a.get_payload(decode=True) or b"") for a in msg.iter_attachments()]
    blocks = [Block(f"件名: {subject}")] if subject else []
    blocks += [Block(p.strip()) for p in body.split("\n\n") if p.strip()]
    if not blocks:
        raise ParseError("e-mail has neither subject nor body")
    meta = {"author": sender, "occurred_at": occurred, "channel": "メール"}
    return ParsedDoc(rel, "note", subject or path.name, blocks, meta, rel), attachments
