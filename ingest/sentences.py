"""Japanese sentence splitting and chunk packing.

A regex on 。！？!? that does not split inside 「」 or （）: it gives the same splits as
pysbd's Japanese rules at a 30th of the cost (../shared/notes/parsing.md). Chunks are
packed from whole sentences up to a character budget that keeps them well inside the
embedding model's 512-token limit (Japanese runs at about 1 token per 1.3 characters
with the XLM-R vocabulary), with the heading path kept as context.
"""

from __future__ import annotations

from dataclasses import dataclass

from hikitsugi.ingest.model import Block

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


def _glue(left: str, right: str) -> str:
    """How two sentences of one paragraph join again: nothing between Japanese
    sentences (the text as written, which is what the embedding model was trained on),
    a space between Latin ones."""
    last, first = left[-1:], right[:1]
    latin = last.isascii() and first.isascii() and (last.isalnum() or last in ".!?")
    return " " if latin else ""


def chunk_blocks(blocks: list[Block], max_chars: int, overlap: int = 1) -> list[Chunk]:
    """Pack blocks into chunks that never cross a heading boundary.

    Table rows are never split (a row is one unit); long sentences are hard-wrapped as a
    last resort; ``overlap`` sentences are repeated at the start of the next chunk of the
    same section so that a fact on a boundary stays findable. Sentences of one paragraph
    are joined as they were written; paragraphs and table rows are separated by newlines.
    """
    chunks: list[Chunk] = []
    # per section: (headings, [(sentence, starts a new paragraph)])
    sections: list[tuple[tuple[str, ...], list[tuple[str, bool]]]] = []
    for block in blocks:
        units = [block.text] if block.table_row else split_sentences(block.text)
        units = [p for u in units for p in (_hard_wrap(u, max_chars) if len(u) > max_chars else [u])]
        flagged = [(u, i == 0) for i, u in enumerate(units)]
        if sections and sections[-1][0] == block.headings:
            sections[-1][1].extend(flagged)
        else:
            sections.append((block.headings, flagged))

    def text_of(units: list[tuple[str, bool]]) -> str:
        out = ""
        for unit, new_para in units:
            out += unit if not out else ("\n" if new_para else _glue(out, unit)) + unit
        return out

    for headings, units in sections:
        cur: list[tuple[str, bool]] = []
        size = 0
        for unit in units:
            if cur and size + len(unit[0]) > max_chars:
                chunks.append(Chunk(text_of(cur), headings, len(chunks)))
                keep = cur[-overlap:] if overlap else []
                cur = keep if keep and len("".join(u for u, _ in keep)) < max_chars // 2 else []
                size = sum(len(u) for u, _ in cur)
            cur.append(unit)
            size += len(unit[0])
        if cur:
            chunks.append(Chunk(text_of(cur), headings, len(chunks)))
    return chunks
