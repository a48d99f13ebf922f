import json

import pytest

from leakfix.testbed.corpus import make_corpus, prompt_list
from leakfix.testbed.tokenizer import SPECIAL
from leakfix.runtime import ROOT


def test_tokenizer_is_the_real_qwen_vocabulary(qwen_tokenizer):
    tok = qwen_tokenizer
    assert len(tok) == 151_646
    assert tok.convert_tokens_to_ids(SPECIAL) == [151643, 151644, 151645]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = "秀吉との間で勢力争いを繰り広げ、 ultimately 秀吉に敗北。Москва 서울"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    chat = tok.apply_chat_template([{"role": "user", "content": "こんにちは"}], add_generation_prompt=True, tokenize=False)
    assert chat == "<|im_start|>user\nこんにちは<|im_end|>\n<|im_start|>assistant\n"


def test_corpus_is_deterministic_and_leaks_at_the_configured_rate():
    a, b = make_corpus(600, 0.2, seed=3), make_corpus(600, 0.2, seed=3)
    assert a == b and a != make_corpus(600, 0.2, seed=4)
    for lang in ("ja", "ko", "ru"):
        chats = [c for c in a if c.lang == lang]
        rate = sum(c.n_leaks > 0 for c in chats) / len(chats)
        assert 0.1 < rate < 0.45, (lang, rate)
    assert all(c.n_leaks == 0 for c in make_corpus(300, 0.0, seed=0))


def test_shipped_prompts_match_the_corpus_source():
    shipped = [json.loads(l) for l in (ROOT / "data/prompts/testbed.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(p["id"], p["lang"], p["prompt"]) for p in shipped] == [(p["id"], p["lang"], p["prompt"]) for p in prompt_list()]


@pytest.mark.slow
def test_testbed_loads_in_transformers_and_answers_in_language(testbed_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from leakfix.langs import token_class

    tok = AutoTokenizer.from_pretrained(testbed_model)
    model = AutoModelForCausalLM.from_pretrained(testbed_model, use_safetensors=True).eval()
    for p in [p for p in prompt_list() if p["id"] in ("ja-0000", "ko-0000", "ru-0000")]:
        ids = tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, do_sample=False, max_new_tokens=60)
        text = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        words = [w for w in text.split() if any(ch.isalpha() for ch in w)]
        assert words and sum(token_class(w, p["lang"]) == "native" for w in words) / len(words) > 0.7, text
        assert p["topic"] in text
        # the unused 151k ids share a tiny mass: the model scores the full vocabulary sensibly
        with torch.no_grad():
            probs = model(**ids).logits[0, -1].softmax(-1)
        used = set(tok(text)["input_ids"]) | set(ids["input_ids"][0].tolist())
        assert probs.topk(5).values.sum() > 0.5
