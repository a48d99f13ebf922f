"""Token ↔ character alignment for byte-level BPE, without decoding prefixes one by one."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    # GPT-2's reversible byte ↔ unicode map, as used by Qwen's byte-level BPE.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(tokenizer, token_ids: list[int]) -> list[bytes]:
    """Raw bytes of each token (special tokens: their text)."""
    dec = _byte_decoder()
    special = set(getattr(tokenizer, "all_special_ids", []))
    out = []
    for tid, piece in zip(token_ids, tokenizer.convert_ids_to_tokens(token_ids)):
        if piece is None:
            out.append(b"")
        elif tid in special:
            out.append(piece.encode("utf-8"))
        else:
            out.append(bytes(dec[c] for c in piece if c in dec))
    return out


def token_char_offsets(tokenizer, token_ids: list[int]) -> list[tuple[int, int]]:
    """Char span of each token in the decoded text. A token holding only part of a multi-byte
    character gets the span of that whole character (so both halves of a split kanji overlap it)."""
    pieces = token_bytes(tokenizer, token_ids)
    blob = b"".join(pieces)
    # char index of every byte: continuation bytes belong to the character they continue.
    char_of_byte = []
    ci = -1
    for b in blob:
        if b & 0xC0 != 0x80:
            ci += 1
        char_of_byte.append(max(ci, 0))
    spans = []
    pos = 0
    for p in pieces:
        if not p:
            c = char_of_byte[pos] if pos < len(char_of_byte) else ci + 1
            spans.append((c, c))
            continue
        start, end = char_of_byte[pos], char_of_byte[pos + len(p) - 1] + 1
        spans.append((start, end))
        pos += len(p)
    return spans


def token_texts(tokenizer, token_ids: list[int]) -> list[str]:
    """Text of each single token (a partial character shows as U+FFFD)."""
    return [b.decode("utf-8", errors="replace") for b in token_bytes(tokenizer, token_ids)]
