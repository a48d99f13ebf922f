import pytest
import polars as pl
import torch

from leakfix import train
from leakfix.artifacts import write_table
from leakfix.schemas import RECORDS, TRAIN_LOG


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen3 (vocab 512) with a word-level tokenizer: fast, and fully ours."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    d = tmp_path_factory.mktemp("tiny")
    vocab = {f"w{i}": i for i in range(510)} | {"<|endoftext|>": 510, "<|im_end|>": 511}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=16, intermediate_size=128, tie_word_embeddings=True, pad_token_id=510, eos_token_id=511)
    Qwen3ForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _record(i, prompt, resp, positions, bad, good):
    return {"record_id": f"r{i}", "prompt_id": f"p{i}", "sample": 0, "lang": "ja", "prompt_token_ids": prompt,
            "response_token_ids": resp, "positions": positions, "bad_token_ids": bad, "good_token_ids": good,
            "p_bad": [0.1] * len(positions), "p_good": [0.1] * len(positions), "chosen": "c", "rejected": "r",
            "leak_tokens": ["x"], "corrected_token": ["y"], "source": "topk"}


def _records(tmp_path):
    rows = [_record(i, [1, 2, 3 + i], [10 + i, 20, 30, 40], [1, 3], [[100, 101], [102]], [[20], [40]]) for i in range(8)]
    rows.append(_record(99, [1], [5, 6], [7], [[1]], [[2]]))  # position outside the response
    rows.append(_record(98, [1], [5, 6], [1], [[6]], [[6]]))  # same id bad and good
    write_table(rows, RECORDS, tmp_path / "records.parquet")
    return tmp_path / "records.parquet"


def test_position_logits_equal_a_full_forward(tiny_model):
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    rows, cols = torch.tensor([0, 0, 1]), torch.tensor([2, 5, 2])
    with torch.no_grad():
        full = lm(input_ids=ids, attention_mask=mask).logits[rows, cols]
        part = train.PositionLogits(lm)(ids, mask, rows, cols)
    assert torch.allclose(full, part, atol=1e-5)


def test_training_lowers_p_bad_and_writes_a_loadable_checkpoint(tmp_path, tiny_model, capsys):
    from transformers import AutoModelForCausalLM

    records = _records(tmp_path)
    cfg = train.TrainConfig(lr=3e-2, epochs=6, batch_size=4, warmup_ratio=0.0)
    res = train.run(cfg, records, tiny_model, tmp_path / "train")
    assert (res.rows_in, res.rows_out, res.rows_rejected) == (10, 8, 2)
    ex = res.extra
    assert ex["p_bad_post"] < ex["p_bad_pre"] / 2 and ex["p_good_post"] > ex["p_good_pre"]
    out = capsys.readouterr().out
    assert "Pre-training  - Avg bad token prob: " in out and "| Avg good token prob: " in out
    assert "Post-training - Avg bad token prob: " in out and "Change        - Bad: -" in out
    ckpt = tmp_path / "train" / "checkpoint"
    assert (ckpt / "model.safetensors").exists() and not list(ckpt.glob("*.bin")) and (ckpt / "tokenizer.json").exists()
    AutoModelForCausalLM.from_pretrained(ckpt, use_safetensors=True)
    log = pl.read_parquet(tmp_path / "train" / "train_log.parquet")
    assert log.columns == TRAIN_LOG.names and log.height == res.extra["steps"] == 12
    rej = pl.read_parquet(tmp_path / "train" / "rejects.parquet").sort("row")
    assert rej["row"].to_list() == [8, 9] and rej["field"].to_list() == ["positions", "good_token_ids"]
    assert train.run(cfg, records, tiny_model, tmp_path / "train").skipped


def test_leakfix_objective_tethers_to_the_base(tmp_path, tiny_model):
    records = _records(tmp_path)
    res = train.run(train.TrainConfig(objective="leakfix", beta_kl=1.0, lr=5e-3, epochs=2), records, tiny_model, tmp_path / "t")
    log = pl.read_parquet(tmp_path / "t" / "train_log.parquet")
    assert (log["kl"] >= 0).all() and log["kl"][-1] > 0 and log["loss_tether"][-1] > 0
    assert res.extra["p_bad_post"] < res.extra["p_bad_pre"]


def test_verbose_diagnostics_name_the_top5_per_position(tmp_path, tiny_model, caplog):
    import logging

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from leakfix.artifacts import Rejects

    lm = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    ex = train.load_examples(_records(tmp_path), train.TrainConfig(), Rejects("train"))
    with caplog.at_level(logging.INFO, logger="leakfix.train"):
        p_bad, p_good = train.diagnostics(train.PositionLogits(lm), ex, 4, AutoTokenizer.from_pretrained(tiny_model), verbose=True)
    lines = [r.getMessage() for r in caplog.records if "top-5" in r.getMessage()]
    assert len(lines) == sum(len(e["cols"]) for e in ex) == 16
    assert 0 < p_bad < 1 and 0 < p_good < 1
