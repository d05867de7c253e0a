#!/usr/bin/env bash
# Set up everything Hikitsugi needs in .venv at the repository root, and Tesseract (as root)
# for scanned PDFs. Idempotent: a second run only checks that nothing changed (a stamp of
# pyproject.toml, `tesseract --list-langs`) and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.hikitsugi-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing dependencies (torch CPU build first, so nothing pulls CUDA)" >&2
  .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi
# Scanned PDF pages are OCRed with Tesseract (Japanese + English data, Debian packages),
# and need a Japanese font to render pages whose fonts are not embedded.
# Checked first, so a second run costs one `tesseract --list-langs`.
has_ocr() {
  local langs
  langs=$(tesseract --list-langs 2>&1) || return 1
  grep -qx jpn <<<"$langs" && grep -qx eng <<<"$langs" || return 1
  # A Japanese font, so PDFs that name a CJK font without embedding it (reportlab's
  # HeiseiKakuGo-W5, common in generated manuals) render to real glyphs before OCR.
  [ -n "$(fc-list :lang=ja 2>/dev/null)" ]
}
if ! has_ocr; then
  ocr_pkgs=(tesseract-ocr tesseract-ocr-jpn tesseract-ocr-eng fonts-ipafont-gothic)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing ${ocr_pkgs[*]} (OCR of scanned PDF pages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { apt-get install -y -q --no-install-recommends "${ocr_pkgs[@]}" >/dev/null; }
    apt_install || { apt-get update -q >/dev/null && apt_install; } || true
    has_ocr || echo "[setup] WARNING: could not install ${ocr_pkgs[*]}; scanned PDF pages will not be OCRed" >&2
  else
    echo "[setup] WARNING: Tesseract with Japanese data is missing, so scanned PDF pages will not be OCRed" \
         "(they are reported as warnings at ingest). As root: apt-get install ${ocr_pkgs[*]}" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "[setup] default embedding model: $(.venv/bin/hikitsugi model build)" >&2
