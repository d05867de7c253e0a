"""Manual parsers: Markdown, HTML, DOCX, PDF (text layer; scanned pages OCRed) and plain text.

We use the direct parsers recommended by ../shared/notes/parsing.md rather than
``unstructured``: on Japanese, ``unstructured`` never recognizes narrative text, never
splits on 。, breaks PDF lines mid-word and tries to download spaCy models at run time.
The direct parsers keep heading levels and table rows exactly, are 10–30× faster, and
run fully offline. Every parser returns :class:`~ingest.model.Block` objects carrying
their heading path.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from hikitsugi.ingest.encoding import decode_bytes
from hikitsugi.ingest.model import Block, ParseError


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


_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")

# Scanned pages (no text layer) are OCRed with Tesseract (Debian's tesseract-ocr-jpn).
OCR_LANG = "jpn+eng"
OCR_DPI = 300
OCR_MAX_PIXELS = 6000  # longest side of the rendered page; larger pages are rendered at a lower dpi
OCR_TIMEOUT_S = 180  # one page
OCR_HINT = "install tesseract-ocr-jpn (scripts/setup.sh does it as root)"
# A CJK glyph's ink box is about 0.88 of the font size: OCR line heights become font sizes
# comparable with the text layer's, so headings are found the same way.
_OCR_GLYPH_EM = 0.88
_OCR_SPACES = re.compile(r" +")


def ocr_marker(page: int) -> str:
    """The last heading of every block read by OCR: chunk contexts show ``… > [OCR p.3]``."""
    return f"[OCR p.{page}]"


def ocr_meta(blocks: list[Block]) -> dict:
    """Document meta for a parse result: ``{"ocr_pages": [2, 5]}`` when pages were OCRed."""
    pages = sorted({b.ocr_page for b in blocks if b.ocr_page})
    return {"ocr_pages": pages} if pages else {}


@functools.lru_cache(maxsize=4)
def _tesseract_check(exe: str | None) -> str | None:
    """Why OCR cannot run with this executable (None: it can)."""
    if exe is None:
        return "tesseract is not installed"
    try:
        out = subprocess.run([exe, "--list-langs"], check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"tesseract does not run ({exc})"
    langs = set((out.stdout + out.stderr).split())
    missing = [lang for lang in OCR_LANG.split("+") if lang not in langs]
    return f"tesseract has no {'/'.join(missing)} language data" if missing else None


def tesseract() -> tuple[str | None, str | None]:
    """(executable, None) when OCR is available, else (None, reason)."""
    exe = shutil.which("tesseract")
    problem = _tesseract_check(exe)
    return (None, problem) if problem else (exe, None)


def tidy_ocr_text(text: str) -> str:
    """Tesseract puts spaces between Japanese characters: drop every space next to a CJK
    character (``責任 の 有無 、`` → ``責任の有無、``, ``CS 部長`` → ``CS部長``) and keep the
    ones between Latin words and numbers."""
    def keep(m: re.Match) -> str:
        before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
        return "" if _CJK.match(before) or _CJK.match(after) else " "

    text = text.strip()
    return _OCR_SPACES.sub(keep, text)


def _render_for_ocr(page):
    """(grey image, dpi) of a page to OCR; None for a blank page (nothing to read)."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDFPage_CountObjects(page.raw) == 0:
        return None
    width, height = page.get_size()
    dpi = min(OCR_DPI, OCR_MAX_PIXELS * 72 / max(width, height, 1))
    image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    lo, hi = image.getextrema()
    return None if hi - lo < 32 else (image, dpi)


def _ocr_image(image, dpi: float, exe: str) -> list[tuple[str, float]]:
    """OCR one page image: its lines with their size in points (from the line height)."""
    import io

    buf = io.BytesIO()
    image.save(buf, "PPM")  # uncompressed: encoding costs nothing
    env = dict(os.environ)
    # Tesseract's OpenMP threads make it several times slower on small machines.
    env.setdefault("OMP_THREAD_LIMIT", "1")
    out = subprocess.run([exe, "stdin", "stdout", "-l", OCR_LANG, "--dpi", str(round(dpi)), "--psm", "3", "tsv"],
                         input=buf.getvalue(), capture_output=True, timeout=OCR_TIMEOUT_S, env=env, check=False)
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(err[-1] if err else f"tesseract exited with {out.returncode}")
    # TSV: level page block par line word left top width height conf text; level 4 = line, 5 = word
    lines: dict[tuple[str, str, str], dict] = {}
    for row in out.stdout.decode("utf-8", "replace").splitlines()[1:]:
        f = row.split("\t")
        if len(f) < 12 or f[0] not in ("4", "5"):
            continue
        line = lines.setdefault((f[2], f[3], f[4]), {"h": 0, "words": [], "heights": []})
        if f[0] == "4":
            line["h"] = int(f[9])
        elif f[11].strip():
            line["words"].append(f[11].strip())
            line["heights"].append(int(f[9]))
    result = []
    for line in lines.values():
        if not line["words"]:
            continue
        # Word boxes sometimes take the whole line's height and a line's box spans two rows
        # of a table: the smaller of the line box and the median word box is the glyph height.
        word_h = sorted(line["heights"])[len(line["heights"]) // 2]
        px = min(line["h"] or word_h, word_h)
        result.append((tidy_ocr_text(" ".join(line["words"])), px * 72 / dpi / _OCR_GLYPH_EM))
    return [(t, s) for t, s in result if t]


def _snap_ocr_headings(lines: list[tuple[str, float, int]], body_size: float) -> list[tuple[str, float, int]]:
    """OCR line heights vary by ±10 %: headings of the same kind get one size (the median of
    their group: sizes within 12 % of each other), so that they get the same level."""
    cand = sorted({s for t, s, p in lines if p and s >= body_size * 1.15 and len(t) < 60}, reverse=True)
    groups: list[list[float]] = []
    for s in cand:
        if groups and s >= groups[-1][-1] * 0.88:
            groups[-1].append(s)
        else:
            groups.append([s])
    snap = {s: g[len(g) // 2] for g in groups for s in g}
    return [(t, snap.get(s, s) if p else s, p) for t, s, p in lines]


def _page_problem(pages: list[int], reason: str) -> str:
    which = f"page {pages[0]}" if len(pages) == 1 else "pages " + ", ".join(map(str, pages))
    return f"{which}: no text layer and not OCRed: {reason}"


def parse_pdf(data: bytes, path: Path, warnings: list[str] | None = None) -> tuple[str, list[Block]]:
    """PDF: lines re-joined into paragraphs, larger fonts become headings.

    A page without a text layer (a scan) is rendered and OCRed with Tesseract (jpn+eng);
    its blocks carry ``ocr_page`` and end their heading path with :func:`ocr_marker`.
    Pages that cannot be OCRed (no Tesseract, no Japanese data, an OCR failure) are added
    to ``warnings`` by page number; the other pages are kept.
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ParseError(f"corrupt or encrypted PDF ({exc}); re-export it as PDF") from exc
    lines: list[tuple[str, float, int]] = []  # (text, font size, OCR page number or 0)
    not_ocred: dict[str, list[int]] = {}  # reason -> pages
    for number, page in enumerate(pdf, start=1):
        tp = page.get_textpage()
        n = tp.count_chars()
        text = tp.get_text_range(0, n) if n else ""
        if not text.strip():
            try:
                rendered = _render_for_ocr(page)
                if rendered is None:
                    continue
                exe, problem = tesseract()
                if exe is None:
                    not_ocred.setdefault(f"{problem} — {OCR_HINT}", []).append(number)
                    continue
                lines.extend((t, s, number) for t, s in _ocr_image(*rendered, exe))
            except subprocess.TimeoutExpired:
                not_ocred.setdefault(f"OCR took longer than {OCR_TIMEOUT_S} s", []).append(number)
            except Exception as exc:  # noqa: BLE001 — one unreadable page must not lose the others
                not_ocred.setdefault(f"OCR failed ({exc.__class__.__name__}: {exc})", []).append(number)
            continue
        cur: list[str] = []
        size = 0.0
        for i, ch in enumerate(text[:n]):
            if ch in "\r\n":
                if cur:
                    lines.append(("".join(cur).strip(), size, 0))
                cur, size = [], 0.0
                continue
            cur.append(ch)
            size = max(size, pdfium_c.FPDFText_GetFontSize(tp.raw, i))
        if cur:
            lines.append(("".join(cur).strip(), size, 0))
    problems = [_page_problem(pages, reason) for reason, pages in not_ocred.items()]
    lines = [(t, s, p) for t, s, p in lines if t]
    if not lines:
        if not_ocred:
            raise ParseError("PDF has no text layer (scanned?) and could not be OCRed: " + "; ".join(not_ocred))
        raise ParseError("PDF has no text layer and OCR found no text on its pages")
    if warnings is not None:
        warnings.extend(problems)
    sizes = sorted(s for _, s, _ in lines)
    body_size = sizes[len(sizes) // 2]
    lines = _snap_ocr_headings(lines, body_size)
    stack = _HeadingStack()
    blocks: list[Block] = []
    para: list[str] = []
    para_page = 0
    # OCR lines and text-layer lines are measured separately: paragraph ends are found by
    # comparing a line with the widest one.
    widest = {ocr: max((len(t) for t, _, p in lines if bool(p) == ocr), default=1) for ocr in (False, True)}

    def flush() -> None:
        if para:
            blocks.append(Block(_join_lines(para), stack.path, ocr_page=para_page or None))
            para.clear()

    for text, size, page_no in lines:
        if page_no != para_page:  # OCR text never shares a paragraph with another page
            flush()
            para_page = page_no
        if size >= body_size * 1.15 and len(text) < 60:
            flush()
            stack.push(1 if size >= body_size * 1.5 else 2, text)
            continue
        if para and (para[-1][-1:] in "。！？!?" or len(para[-1]) < 0.9 * widest[bool(page_no)]):
            flush()
        para.append(text)
    flush()
    title = _title_from(blocks, path.stem)
    for b in blocks:
        if b.ocr_page:
            b.headings = (*b.headings, ocr_marker(b.ocr_page))
    return title, blocks


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
