"""Find files under the given paths and parse each into documents.

This module is pure: it reads files and returns parsed documents and problems, and
never touches the database or an index. One bad file yields a problem message naming
the file and the reason; it never stops the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hikitsugi.ingest.columns import Recognition
from hikitsugi.ingest.encoding import DecodeError
from hikitsugi.ingest.model import Block, ParsedDoc, ParseError
from hikitsugi.ingest.parsers import documents as docparsers
from hikitsugi.ingest.parsers.customers import parse_customers
from hikitsugi.ingest.parsers.email import parse_eml
from hikitsugi.ingest.parsers.records import RECORD_EXTS, parse_records

MANUAL_PARSERS = {
    ".md": docparsers.parse_markdown,
    ".markdown": docparsers.parse_markdown,
    ".html": docparsers.parse_html,
    ".htm": docparsers.parse_html,
    ".docx": docparsers.parse_docx,
    ".pdf": docparsers.parse_pdf,
    ".txt": docparsers.parse_text,
}
CUSTOMER_EXTS = {".yaml", ".yml"}
SUPPORTED = set(MANUAL_PARSERS) | RECORD_EXTS | CUSTOMER_EXTS | {".eml"}


@dataclass
class SourceFile:
    path: Path
    rel: str  # path relative to the ingest root, with '/': what documents show as source_path
    root: str = ""  # the ingest root it was found under (absolute); "" = unknown

    @property
    def key(self) -> str:
        """Identity of the file across runs and roots: its absolute path."""
        return str(self.path.absolute())


@dataclass
class FileResult:
    source: SourceFile
    file_hash: str
    size: int
    docs: list[ParsedDoc] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # the whole file failed
    columns: list[Recognition] = field(default_factory=list)  # exports: which column is which field, and how
    # Part of the file was left out for a reason that setting up the machine fixes (scanned
    # PDF pages while Tesseract is missing): parse it again on the next run even if unchanged.
    retry: bool = False


def discover(paths: list[Path], pattern: str | None = None) -> tuple[list[SourceFile], list[str]]:
    """Supported files under each path, in a stable order; unknown names are reported.

    ``pattern`` (a glob such as ``**/*.md``, relative to each folder) restricts what is
    taken from folders; hidden and ``_``-prefixed names are always left out.
    """
    files: list[SourceFile] = []
    problems: list[str] = []
    for root in paths:
        if not root.exists():
            problems.append(f"{root}: no such file or directory")
            continue
        if root.is_file():
            candidates = [(root, root.name)]
        else:
            found = root.glob(pattern) if pattern else root.rglob("*")
            candidates = [
                (p, p.relative_to(root).as_posix())
                for p in sorted(found)
                if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
            ]
        for p, rel in candidates:
            if p.suffix.lower() in SUPPORTED:
                files.append(SourceFile(p, rel, str(root.absolute())))
            elif root.is_file() or p.name.lower() != "readme.md":
                problems.append(f"{p}: unsupported file type '{p.suffix}' — skipped")
    return files, problems


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_manual(ext: str, data: bytes, path: Path, warnings: list[str]) -> tuple[str, list[Block]]:
    """A manual's title and blocks; page-level problems (a scanned PDF page that could not
    be OCRed) are appended to ``warnings`` while the rest of the file is kept."""
    if ext == ".pdf":
        return docparsers.parse_pdf(data, path, warnings)
    return MANUAL_PARSERS[ext](data, path)


def parse_bytes(src: SourceFile, data: bytes, mapping: dict[str, str] | None = None) -> FileResult:
    """Parse one file's bytes; every failure becomes a message, never an exception."""
    result = FileResult(src, file_hash(data), len(data))
    ext = src.path.suffix.lower()
    try:
        if not data.strip():
            raise ParseError("empty file")
        if ext in RECORD_EXTS:
            rec = parse_records(data, src.path, src.rel, mapping)
            result.docs, result.problems, result.columns = rec.docs, rec.problems, rec.columns
        elif ext in CUSTOMER_EXTS:
            result.docs, result.problems = parse_customers(data, src.path, src.rel)
        elif ext == ".eml":
            doc, attachments = parse_eml(data, src.path, src.rel)
            result.docs.append(doc)
            for name, payload in attachments:
                aext = Path(name).suffix.lower()
                if aext in MANUAL_PARSERS and payload:
                    try:
                        warnings: list[str] = []
                        title, blocks = parse_manual(aext, payload, Path(name), warnings)
                        result.problems.extend(f"attachment {name}: {w}" for w in warnings)
                        result.docs.append(ParsedDoc(f"{src.rel}/{name}", "manual", title, blocks,
                                                     {**doc.meta, **docparsers.ocr_meta(blocks)}, src.rel))
                    except (ParseError, DecodeError, ValueError) as exc:
                        result.problems.append(f"attachment {name}: {exc}")
        else:
            title, blocks = parse_manual(ext, data, src.path, result.problems)
            if not blocks:
                raise ParseError("no text found")
            result.docs.append(ParsedDoc(src.rel, "manual", title, blocks, docparsers.ocr_meta(blocks), src.rel))
        if result.problems and ext in (".pdf", ".eml") and docparsers.tesseract()[0] is None:
            result.retry = True
    except (ParseError, DecodeError) as exc:
        result.error = str(exc)
    except Exception as exc:  # a parser library failing on odd input must not stop the run
        result.error = f"could not parse ({exc.__class__.__name__}: {exc})"
    return result
