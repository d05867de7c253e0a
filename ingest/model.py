"""The shapes that flow out of ingest: a parsed document made of blocks.

A *block* is the smallest unit a parser knows (a paragraph, a list item, a table row)
together with the heading path above it, so that every chunk built from it can carry
its headings as context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Block:
    text: str
    headings: tuple[str, ...] = ()
    table_row: bool = False
    ocr_page: int | None = None  # 1-based page number when the text was read by OCR from a scan


@dataclass
class ParsedDoc:
    """One searchable document: a manual, an escalation case, a note, a customer record."""

    source_id: str
    kind: str  # manual | case | note | customer
    title: str
    blocks: list[Block]
    meta: dict[str, Any] = field(default_factory=dict)
    source_path: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the source row as read; not stored

    @property
    def body(self) -> str:
        return "\n".join(b.text for b in self.blocks)


class ParseError(ValueError):
    """A file (or row) could not be parsed; the message says why and what to do."""
