"""Japanese sentence splitting and chunk packing.

A regex on 。！？!? that does not split inside 「」 or （）: it gives the same splits as
pysbd's Japanese rules at a 30th of the cost (../shared/notes/parsing.md). Chunks are
packed from whole sentences up to a character budget that keeps them well inside the
embedding model's 512-token limit (Japanese runs at about 1 token per 1.3 characters
with the XLM-R vocabulary), with the heading path kept as context.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.model import Block

_ENDERS = set("。！？!?")
_OPEN = {"「": "」", "『": "』", "（": "）", "(": ")"}
_CLOSE = set(_OPEN.values())


def split_sentences(text: str) -> list[str]:
    """Split on sentence enders and newlines, never inside brackets."""
    out: list[str] = []
    buf: list[str] = []
    depth = 0
    for ch in text:
        if ch == "\n" and depth == 0:
            if "".join(buf).strip():
                out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE and depth > 0:
            depth -= 1
        elif ch in _ENDERS and depth == 0:
            out.append("".join(buf).strip())
            buf = []
    if "".join(buf).strip():
        out.append("".join(buf).strip())
    return [s for s in out if s]


@dataclass
class Chunk:
    text: str
    headings: tuple[str, ...]
    ordinal: int

    @property
    def context(self) -> str:
        return " > ".join(self.headings)


def _hard_wrap(sentence: str, limit: int) -> list[str]:
    return [sentence[i : i + limit] for i in range(0, len(sentence), limit)]


def chunk_blocks(blocks: list[Block], max_chars: int, overlap: int = 1) -> list[Chunk]:
    """Pack blocks into chunks that never cross a heading boundary.

    Table rows are never split (a row is one unit); long sentences are hard-wrapped as a
    last resort; ``overlap`` sentences are repeated at the start of the next chunk of the
    same section so that a fact on a boundary stays findable.
    """
    chunks: list[Chunk] = []
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    for block in blocks:
        units = [block.text] if block.table_row else split_sentences(block.text)
        units = [p for u in units for p in (_hard_wrap(u, max_chars) if len(u) > max_chars else [u])]
        if sections and sections[-1][0] == block.headings:
            sections[-1][1].extend(units)
        else:
            sections.append((block.headings, units))
    for headings, units in sections:
        cur: list[str] = []
        size = 0
        for unit in units:
            if cur and size + len(unit) > max_chars:
                chunks.append(Chunk("\n".join(cur), headings, len(chunks)))
                cur = cur[-overlap:] if overlap and len("".join(cur[-overlap:])) < max_chars // 2 else []
                size = sum(len(u) for u in cur)
            cur.append(unit)
            size += len(unit)
        if cur:
            chunks.append(Chunk("\n".join(cur), headings, len(chunks)))
    return chunks
