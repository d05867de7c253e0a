"""Manual parsers: Markdown, HTML, DOCX, PDF (text layer) and plain text.

We use the direct parsers recommended by ../shared/notes/parsing.md rather than
``unstructured``: on Japanese, ``unstructured`` never recognizes narrative text, never
splits on 。, breaks PDF lines mid-word and tries to download spaCy models at run time.
The direct parsers keep heading levels and table rows exactly, are 10–30× faster, and
run fully offline. Every parser returns :class:`~ingest.model.Block` objects carrying
their heading path.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.encoding import decode_bytes
from ingest.model import Block, ParseError


class _HeadingStack:
    """Tracks the current heading path as headings of various levels arrive."""

    def __init__(self) -> None:
        self.levels: list[tuple[int, str]] = []

    def push(self, level: int, text: str) -> None:
        self.levels = [(lv, t) for lv, t in self.levels if lv < level] + [(level, text)]

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.levels)


def _title_from(blocks: list[Block], fallback: str) -> str:
    for b in blocks:
        if b.headings:
            return b.headings[0]
    return fallback


def parse_markdown(data: bytes, path: Path) -> tuple[str, list[Block]]:
    from markdown_it import MarkdownIt

    text = decode_bytes(data).text
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    stack = _HeadingStack()
    blocks: list[Block] = []
    row: list[str] | None = None
    level = 0
    in_heading = False
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            in_heading, level = True, int(tok.tag[1])
        elif tok.type == "heading_close":
            in_heading = False
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and row is not None:
            blocks.append(Block(" | ".join(row), stack.path, table_row=True))
            row = None
        elif tok.type == "inline":
            content = tok.content.strip()
            if in_heading:
                stack.push(level, content)
            elif row is not None:
                row.append(content)
            elif content:
                blocks.append(Block(content, stack.path))
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            blocks.append(Block(tok.content.strip(), stack.path))
    return _title_from(blocks, path.stem), blocks


_HTML_BLOCKS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "tr", "pre", "dt", "dd", "blockquote"}


def parse_html(data: bytes, path: Path) -> tuple[str, list[Block]]:
    from selectolax.lexbor import LexborHTMLParser

    # Decode ourselves: lexbor ignores <meta charset=Shift_JIS> when given bytes.
    tree = LexborHTMLParser(decode_bytes(data).text)
    for bad in tree.css("script, style, noscript, nav, footer"):
        bad.decompose()
    stack = _HeadingStack()
    blocks: list[Block] = []
    root = tree.body or tree.root
    if root is None:
        raise ParseError("HTML has no body")
    for node in root.traverse():
        tag = node.tag
        if tag not in _HTML_BLOCKS:
            continue
        if tag == "tr":
            cells = [c.text(separator=" ", strip=True) for c in node.iter() if c.tag in ("td", "th")]
            if any(cells):
                blocks.append(Block(" | ".join(cells), stack.path, table_row=True))
            continue
        if tag in ("p", "li", "dd", "dt") and node.parent is not None and node.parent.tag in ("li", "td", "th"):
            continue
        text = node.text(separator=" ", strip=True)
        if not text:
            continue
        if tag[0] == "h" and tag[1:].isdigit():
            stack.push(int(tag[1]), text)
        elif tag == "li" and node.css_first("li") is not None:
            continue
        else:
            blocks.append(Block(text, stack.path))
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    return title or _title_from(blocks, path.stem), blocks


def parse_docx(data: bytes, path: Path) -> tuple[str, list[Block]]:
    import io
    import zipfile

    from docx import Document
    from docx.table import Table

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ParseError("not a DOCX (zip) file — password-protected or corrupt? Save it again from Word without a password")
    doc = Document(io.BytesIO(data))
    stack = _HeadingStack()
    blocks: list[Block] = []
    for item in doc.iter_inner_content():
        if isinstance(item, Table):
            for r in item.rows:
                cells: list[str] = []
                for c in r.cells:
                    t = c.text.strip()
                    if not cells or cells[-1] != t:  # merged cells repeat
                        cells.append(t)
                if any(cells):
                    blocks.append(Block(" | ".join(cells), stack.path, table_row=True))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        m = re.match(r"(?:Heading|見出し)\s*(\d)", style)
        if style == "Title":
            stack.push(0, text)
        elif m:
            stack.push(int(m.group(1)), text)
        else:
            blocks.append(Block(text, stack.path))
    title = doc.core_properties.title or ""
    return title or _title_from(blocks, path.stem), blocks


_CJK = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")


def parse_pdf(data: bytes, path: Path) -> tuple[str, list[Block]]:
    """Text-layer PDF: lines re-joined into paragraphs, larger fonts become headings."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ParseError(f"corrupt or encrypted PDF ({exc}); re-export it as PDF") from exc
    lines: list[tuple[str, float]] = []
    for page in pdf:
        tp = page.get_textpage()
        n = tp.count_chars()
        if n == 0:
            continue
        text = tp.get_text_range(0, n)
        cur: list[str] = []
        size = 0.0
        for i, ch in enumerate(text[:n]):
            if ch in "\r\n":
                if cur:
                    lines.append(("".join(cur).strip(), size))
                cur, size = [], 0.0
                continue
            cur.append(ch)
            size = max(size, pdfium_c.FPDFText_GetFontSize(tp.raw, i))
        if cur:
            lines.append(("".join(cur).strip(), size))
    lines = [(t, s) for t, s in lines if t]
    if not lines:
        raise ParseError("PDF has no text layer (scanned?); OCR is not available for this file")
    sizes = sorted(s for _, s in lines)
    body_size = sizes[len(sizes) // 2]
    stack = _HeadingStack()
    blocks: list[Block] = []
    para: list[str] = []
    widest = max(len(t) for t, _ in lines)

    def flush() -> None:
        if para:
            blocks.append(Block(_join_lines(para), stack.path))
            para.clear()

    for text, size in lines:
        if size >= body_size * 1.15 and len(text) < 60:
            flush()
            stack.push(1 if size >= body_size * 1.5 else 2, text)
            continue
        if para and (para[-1][-1:] in "。！？!?" or len(para[-1]) < 0.9 * widest):
            flush()
        para.append(text)
    flush()
    return _title_from(blocks, path.stem), blocks


def _join_lines(lines: list[str]) -> str:
    out = lines[0]
    for line in lines[1:]:
        sep = "" if _CJK.search(out[-1:]) or _CJK.search(line[:1]) else " "
        out += sep + line
    return out


_TXT_HEADING = re.compile(r"^(?:#+\s*|[■□◆◇●【]|第[0-9一二三四五六七八九十]+[章節]|[0-9]+[.．、]\s*|[0-9]+\.[0-9]+\s)")


def parse_text(data: bytes, path: Path) -> tuple[str, list[Block]]:
    """Plain text: paragraphs by blank lines, hard-wrapped lines re-joined, short marked lines as headings."""
    text = decode_bytes(data).text.replace("\r\n", "\n")
    stack = _HeadingStack()
    blocks: list[Block] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in para.split("\n") if ln.strip()]
        while lines and len(lines[0]) <= 40 and not lines[0].endswith("。") and (
            _TXT_HEADING.match(lines[0]) or len(lines) > 1 or len(blocks) == 0 and not stack.path
        ):
            head = lines.pop(0).lstrip("#").strip()
            level = 1 if not stack.path else 2
            if re.match(r"^[0-9]+\.[0-9]+", head):
                level = 3
            stack.push(level, head.strip("【】■□◆◇● "))
        if lines:
            joined = re.sub(r"(?<=[^。！？!?])\n(?=[^\s・\-*0-9①-⑳■●◆])", "", "\n".join(lines))
            blocks.append(Block(joined, stack.path))
    return _title_from(blocks, path.stem), blocks
