"""Decode bytes from files exported by Japanese tools without producing mojibake.

Order matters (see ../shared/notes/parsing.md): strict UTF-8 (with or without BOM)
first, then CP932 — the Shift_JIS that Excel writes, which plain ``shift_jis`` and
charset-normalizer's ``shift_jis_2004`` guess both get wrong for 髙, ①, ～ — then EUC-JP,
and only then charset-normalizer. Binary data is refused instead of being decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from charset_normalizer import from_bytes


class DecodeError(ValueError):
    """The bytes are not text in any encoding we accept."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters in the first 8 KiB mean it is not text."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return bool(head) and ctrl / len(head) > 0.05


def _halfwidth_kana_ratio(text: str) -> float:
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii:
        return 0.0
    return sum(1 for c in non_ascii if "\uff61" <= c <= "\uff9f") / len(non_ascii)


def decode_bytes(data: bytes) -> Decoded:
    """Return the text and the encoding it was read with, or raise DecodeError."""
    if looks_binary(data):
        raise DecodeError("binary data, not text (wrong file extension?)")
    if data.startswith(b"\xef\xbb\xbf"):
        return Decoded(data[3:].decode("utf-8", errors="strict"), "utf-8-sig")
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    candidates = []
    for enc in ("cp932", "euc_jp"):
        try:
            candidates.append(Decoded(data.decode(enc), enc))
        except UnicodeDecodeError:
            continue
    if candidates:
        # EUC-JP bytes often decode as CP932 without error, as half-width katakana soup.
        return min(candidates, key=lambda d: _halfwidth_kana_ratio(d.text))
    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise DecodeError("could not detect the text encoding; save the file as UTF-8 or CP932")
    return Decoded(str(best), best.encoding)
