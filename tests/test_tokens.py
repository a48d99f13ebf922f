import random

from leakfix.tokens import byte_decoder, decode_with_offsets, token_char_offsets, token_span, token_texts

TEXT = "、 ultimately 秀吉に敗北。Москва 한국어 😀 𠀋垅"


def test_offsets_match_decode_and_cover_split_characters(qwen_tokenizer):
    tok = qwen_tokenizer
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    decoded, spans = decode_with_offsets(tok, ids)
    assert decoded == TEXT == tok.decode(ids)
    assert spans == token_char_offsets(tok, ids) and len(spans) == len(ids)
    assert spans[0][0] == 0 and spans[-1][1] == len(TEXT)
    assert all(a <= b and s[0] <= a for s, (a, b) in zip(spans, spans[1:]))  # monotone
    assert TEXT[slice(*spans[1])] == " ultimately"
    pieces = token_texts(tok, ids)
    split = [i for i, p in enumerate(pieces) if "\ufffd" in p]
    assert len(split) >= 4, pieces  # " 秀", "𠀋" and "垅" are split over byte-level tokens
    for i in split:
        a, b = spans[i]
        assert b - a >= 1 and any(ord(c) > 0xFFF for c in TEXT[a:b])  # the whole character, never a half
    # A char span maps back onto every token holding one of its bytes.
    k = TEXT.index("垅")
    ts, te = token_span(spans, k, k + 1)
    assert te - ts == 2 and tok.decode(ids[ts:te]) == "垅"


def test_token_texts_are_single_token_decodes(qwen_tokenizer):
    tok = qwen_tokenizer
    ids = tok(TEXT, add_special_tokens=False)["input_ids"] + tok.convert_tokens_to_ids(["<|im_end|>"])
    assert token_texts(tok, ids) == [tok.decode([i]) for i in ids]
    assert token_texts(tok, tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])) == ["<|im_start|>", "<|im_end|>"]


def test_random_bytes_and_special_tokens_decode_like_the_tokenizer(qwen_tokenizer):
    tok = qwen_tokenizer
    rng = random.Random(0)
    byte_ids = tok.convert_tokens_to_ids(list(byte_decoder()))
    word_ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    for _ in range(300):
        ids = [rng.choice(byte_ids + word_ids) for _ in range(rng.randint(0, 12))]  # often invalid UTF-8
        if rng.random() < 0.3:
            ids.insert(rng.randint(0, len(ids)), 151645)
        decoded, spans = decode_with_offsets(tok, ids)
        assert decoded == tok.decode(ids, skip_special_tokens=True)
        assert all(0 <= a <= b <= len(decoded) for a, b in spans)
        assert all(spans[i] == (spans[i][0], spans[i][0]) for i, t in enumerate(ids) if t == 151645)


def test_token_span_edges():
    offs = [(0, 1), (1, 3), (2, 3), (3, 3), (3, 5)]
    assert token_span(offs, 1, 3) == (1, 3)
    assert token_span(offs, 2, 3) == (1, 3)
    assert token_span(offs, 4, 5) == (4, 5)
    assert token_span(offs, 5, 6) == (None, None)
