"""Token ↔ character alignment for generated token ids, in one pass (no prefix re-decoding).

Byte-level BPE (GPT-2, Qwen, Llama-3) tokens are byte strings: one token may hold only part of a
UTF-8 character (a kanji is 3 bytes, often split 1+2 over two tokens). Convention here: such a
token gets the span of the *whole* character it touches, so both halves of a split kanji overlap
that character and a leak covering it covers both tokens. Spans index into
`tokenizer.decode(ids, skip_special_tokens=True)`, the text the generation backends return;
special tokens get an empty span at their position.
"""

from __future__ import annotations

import codecs
import weakref
from functools import lru_cache


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's `bytes_to_unicode`: the printable character standing for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class _Vocab:
    """Per-tokenizer cache of token id -> bytes (None for special tokens)."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.special = set(getattr(tokenizer, "all_special_ids", []) or [])
        # Added (non-special) tokens are stored as plain text, not byte-mapped.
        self.added = {v for k, v in (getattr(tokenizer, "get_added_vocab", dict)() or {}).items()}
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        self.byte_level = decoder is None or "ByteLevel" in repr(decoder)
        self.cache: dict[int, bytes | None] = {}

    def bytes_of(self, ids: list[int]) -> list[bytes | None]:
        missing = [i for i in set(ids) if i not in self.cache]
        if missing:
            dec = byte_decoder()
            for i, piece in zip(missing, self.tok.convert_ids_to_tokens(missing)):
                if i in self.special or piece is None:
                    self.cache[i] = None
                elif i in self.added:
                    self.cache[i] = piece.encode("utf-8")
                elif self.byte_level:
                    self.cache[i] = bytes(dec[c] for c in piece if c in dec)
                elif piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:  # SentencePiece byte fallback
                    self.cache[i] = bytes([int(piece[3:5], 16)])
                else:
                    self.cache[i] = piece.replace("\u2581", " ").encode("utf-8")
        c = self.cache
        return [c[i] for i in ids]


_VOCABS: "weakref.WeakKeyDictionary[object, _Vocab]" = weakref.WeakKeyDictionary()


def _vocab(tokenizer) -> _Vocab:
    v = _VOCABS.get(tokenizer)
    if v is None:
        v = _VOCABS[tokenizer] = _Vocab(tokenizer)
    return v


def token_bytes(tokenizer, token_ids: list[int]) -> list[bytes | None]:
    """Raw bytes of each token; None for a special token."""
    return _vocab(tokenizer).bytes_of(list(token_ids))


def decode_with_offsets(tokenizer, token_ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text (special tokens skipped, invalid UTF-8 as U+FFFD like `tokenizer.decode`)
    and each token's [start, end) char span in it (see the module doc for split characters)."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    chunks: list[str] = []
    spans: list[tuple[int, int]] = []
    n = 0  # chars emitted so far
    for b in token_bytes(tokenizer, token_ids):
        if b is None:
            spans.append((n, n))
            continue
        out = dec.decode(b)
        pending_after = bool(dec.getstate()[0])
        # The first char this token completes is index n even when it began in an earlier token;
        # a char this token leaves incomplete (bytes still pending) is the next index, and is
        # this token's too.
        start = n
        n += len(out)
        spans.append((start, n + (1 if pending_after else 0)))
        chunks.append(out)
    chunks.append(dec.decode(b"", final=True))
    return "".join(chunks), spans


def token_char_offsets(tokenizer, token_ids: list[int]) -> list[tuple[int, int]]:
    """[start, end) char span of each generated token in `tokenizer.decode(token_ids,
    skip_special_tokens=True)`. A token holding part of a multi-byte character gets the span of
    that whole character; a special token gets an empty span at its position."""
    return decode_with_offsets(tokenizer, token_ids)[1]


def token_texts(tokenizer, token_ids: list[int]) -> list[str]:
    """Decoded text of each single token, as `tokenizer.decode([id])` shows it: a partial
    character is U+FFFD, a special token its own text (<|im_end|>)."""
    pieces = token_bytes(tokenizer, token_ids)
    specials = [i for i, b in zip(token_ids, pieces) if b is None]
    names = dict(zip(specials, tokenizer.convert_ids_to_tokens(specials))) if specials else {}
    return [(names[i] or "") if b is None else b.decode("utf-8", errors="replace") for i, b in zip(token_ids, pieces)]


def token_span(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int | None, int | None]:
    """[first, last + 1) of the tokens overlapping the char span [start, end); (None, None) if none.
    Offsets are sorted, so two bisections would do; spans are few per response, a scan is simpler."""
    first = last = None
    for i, (a, b) in enumerate(offsets):
        if a < end and b > start:
            if first is None:
                first = i
            last = i
        elif first is not None and a >= end:
            break
    return (first, last + 1) if first is not None else (None, None)
