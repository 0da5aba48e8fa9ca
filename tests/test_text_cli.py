"""The text models on the user's path: scratchgen train / --resume / sample / fill-mask / eval, and one-line errors.

Resuming is exact: 1 epoch, then --resume for a second, ends bit for bit where 2 epochs in one run
end (numpy backend), for each text model, dropout and masking noise included.
"""
import json
import os

import numpy as np
import pytest

from scratchgen.cli import main

PAIRS = ("the dog barked at the moon\nthe cat slept by the fire\na bird sang in the tree\n\n"
         "the farmer planted corn\nrain fell on the fields\nthe corn grew tall\n\n"
         "a ship sailed the sea\nthe sailors saw the shore\n")
LABELLED = "animal\tthe dog barked\nanimal\tthe cat slept\nplant\tthe corn grew\nplant\tthe tree fell\nanimal\ta bird sang\n"
TINY_BERT = ["--vocab-size", "64", "--hidden", "16", "--layers", "1", "--heads", "2", "--feedforward", "32",
             "--max-len", "24"]
QUIET = ["--no-progress", "--no-pictures"]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "pairs.txt").write_text(PAIRS)
    (tmp_path / "labels.tsv").write_text(LABELLED)
    (tmp_path / "stream.txt").write_text("".join(f"{w}: a kind of {w}\n" for w in ("dog", "cat", "cow", "hen") * 15))
    return tmp_path


def model_arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith(("model/", "optimizer/"))}


def assert_resume_is_exact(tmp_path, command):
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    assert main(command + ["--epochs", "2", "--out", whole]) == 0
    assert main(command + ["--epochs", "1", "--out", split]) == 0
    assert main(command + ["--epochs", "2", "--out", split, "--resume"]) == 0
    a, b = model_arrays(os.path.join(whole, "checkpoint.npz")), model_arrays(os.path.join(split, "checkpoint.npz"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return whole


def test_bert_resumes_exactly_and_fills_masks(files, capsys):
    command = ["train", "bert", "--dataset", f"pairs:{files / 'pairs.txt'}", *TINY_BERT, "--dropout", "0.1",
               "--batch-size", "2", *QUIET]
    out = assert_resume_is_exact(files, command)
    checkpoint = os.path.join(out, "checkpoint.npz")
    capsys.readouterr()
    assert main(["fill-mask", checkpoint, "the [MASK] barked", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("input: [CLS] the [MASK]") and lines[1].startswith("[MASK] at position 2: ")
    assert len(lines[1].split(", ")) == 3
    assert main(["eval", checkpoint]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"evaluate_mlm_accuracy", "evaluate_nsp_accuracy", "evaluate_unigram_accuracy"} <= set(metrics)


def test_bert_classifier_fine_tunes_a_pretrained_bert_and_resumes_exactly(files, capsys):
    pretrained = str(files / "bert")
    assert main(["train", "bert", "--dataset", f"pairs:{files / 'pairs.txt'}", *TINY_BERT, "--epochs", "1",
                 "--out", pretrained, *QUIET]) == 0
    checkpoint = os.path.join(pretrained, "checkpoint.npz")
    command = ["train", "bert-classifier", "--dataset", f"labelled:{files / 'labels.tsv'}", *TINY_BERT,
               "--pretrained", checkpoint, "--batch-size", "2", *QUIET]
    out = assert_resume_is_exact(files, command)
    tuned, bert = model_arrays(os.path.join(out, "checkpoint.npz")), model_arrays(checkpoint)
    assert np.array_equal(tuned["model/vocabulary"], bert["model/vocabulary"])
    capsys.readouterr()
    # other sizes than the pretrained encoder: one line naming both
    code = main(["train", "bert-classifier", "--dataset", f"labelled:{files / 'labels.tsv'}", *TINY_BERT[:-2],
                 "--max-len", "32", "--pretrained", checkpoint, "--out", str(files / "other"), *QUIET])
    err = capsys.readouterr().err
    assert code == 2 and "max_len 32 here, 24 there" in err and len(err.strip().splitlines()) == 1
    code = main(["train", "bert-classifier", "--dataset", f"labelled:{files / 'labels.tsv'}", *TINY_BERT,
                 "--encoder-init", "pretrained", "--out", str(files / "none"), *QUIET])
    err = capsys.readouterr().err
    assert code == 2 and "needs --pretrained CHECKPOINT" in err
    code = main(["train", "bert-classifier", "--dataset", f"labelled:{files / 'labels.tsv'}", *TINY_BERT,
                 "--encoder-init", "frozen", "--out", str(files / "bad"), *QUIET])
    assert code == 2 and "encoder_init must be one of pretrained, random, got 'frozen'" in capsys.readouterr().err


def test_pretrained_and_random_starts_differ_only_in_the_weights(files):
    from scratchgen.data import load_text_dataset
    from scratchgen.models import load_model
    from scratchgen.models.attention.fine_tuning import BertClassifier

    pretrained = str(files / "bert")
    assert main(["train", "bert", "--dataset", f"pairs:{files / 'pairs.txt'}", *TINY_BERT, "--epochs", "1",
                 "--out", pretrained, *QUIET]) == 0
    checkpoint = os.path.join(pretrained, "checkpoint.npz")
    bert, _ = load_model(checkpoint)
    data = load_text_dataset(f"labelled:{files / 'labels.tsv'}", fractions=(0.0, 0.0))
    sizes = dict(vocab_size=64, max_len=24, hidden=16, layers=1, heads=2, feedforward=32)
    warm = BertClassifier(2, pretrained=checkpoint, encoder_init="pretrained", rng=0, **sizes)
    cold = BertClassifier(2, pretrained=checkpoint, encoder_init="random", rng=0, **sizes)
    warm.prepare(data.train.x)
    cold.prepare(data.train.x)
    assert warm.tokenizer.pieces == cold.tokenizer.pieces == bert.tokenizer.pieces
    for key, value in bert.encoder.state_dict().items():
        assert np.array_equal(warm.encoder.state_dict()[key], value)
    assert not np.array_equal(cold.encoder.state_dict()["token_embedding.weight"], bert.encoder.state_dict()["token_embedding.weight"])
    assert np.array_equal(warm.classifier.weight.data, cold.classifier.weight.data)  # same seed: same new layer


def test_charlm_resumes_exactly_and_samples_text(files, capsys):
    command = ["train", "charlm", "--dataset", f"stream:{files / 'stream.txt'}", "--context", "128", "--hidden", "16",
               "--layers", "1", "--heads", "2", "--feedforward", "32", "--sample-length", "30", "--dropout", "0.1",
               "--batch-size", "4", *QUIET]
    out = assert_resume_is_exact(files, command)
    checkpoint = os.path.join(out, "checkpoint.npz")
    capsys.readouterr()
    assert main(["sample", checkpoint, "--n", "3", "--prompt", "dog:", "--temperature", "0.5", "--seed", "1"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert len(lines) == 3 and all(line.startswith("dog:") for line in lines)
    assert open(os.path.join(out, "samples.txt")).read().splitlines() == lines
    assert main(["eval", checkpoint]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"evaluate_bits_per_character", "evaluate_unigram_bits_per_character"} <= set(metrics)


def test_text_errors_are_one_line(files, capsys):
    bert = str(files / "bert")
    assert main(["train", "bert", "--dataset", f"pairs:{files / 'pairs.txt'}", *TINY_BERT, "--epochs", "1",
                 "--out", bert, *QUIET]) == 0
    checkpoint = os.path.join(bert, "checkpoint.npz")
    capsys.readouterr()
    for argv, message in [
        (["fill-mask", checkpoint, ""], "fill-mask: the text is empty"),
        (["fill-mask", checkpoint, "no mask here"], "has no [MASK] token"),
        (["fill-mask", checkpoint, "[MASK] " + "the dog " * 20], "more than this model's 24 positions"),
        (["sample", checkpoint], "BERT does not generate samples"),
        (["train", "bert", "--dataset", f"stream:{files / 'stream.txt'}", "--out", str(files / "x"), *QUIET],
         "bert: needs sentence pairs"),
        (["train", "charlm", "--dataset", f"pairs:{files / 'pairs.txt'}", "--out", str(files / "y"), *QUIET],
         "charlm: needs byte windows"),
        (["train", "bert", "--dataset", f"pairs:{files / 'missing.txt'}", "--out", str(files / "z"), *QUIET],
         "missing.txt: cannot be read"),
    ]:
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (1, 2) and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    # a corrupt vocabulary in the checkpoint
    with np.load(checkpoint, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["model/vocabulary"][2, :5] = np.frombuffer(b"[CLX]", np.uint8)
    corrupt = str(files / "corrupt.npz")
    np.savez(corrupt, **arrays)
    assert main(["fill-mask", corrupt, "the [MASK]"]) == 2
    err = capsys.readouterr().err
    assert f"{corrupt}: vocabulary: row 2 must be [CLS], found '[CLX]'; corrupt" in err and len(err.strip().splitlines()) == 1
    # fill-mask on a checkpoint of another model
    lm = str(files / "lm")
    assert main(["train", "charlm", "--dataset", f"stream:{files / 'stream.txt'}", "--hidden", "8",
                 "--layers", "1", "--heads", "2", "--feedforward", "8", "--epochs", "1", "--out", lm, *QUIET]) == 0
    capsys.readouterr()
    assert main(["fill-mask", os.path.join(lm, "checkpoint.npz"), "the [MASK]"]) == 2
    assert "holds a 'charlm' model; fill-mask needs a 'bert' checkpoint" in capsys.readouterr().err


def test_the_transfer_experiment_pairs_both_starts_by_seed(files, capsys):
    from scratchgen.experiments.transfer_learning import main as experiment, run_transfer_experiment, summarize, table

    pretrained = str(files / "bert")
    assert main(["train", "bert", "--dataset", f"pairs:{files / 'pairs.txt'}", *TINY_BERT, "--epochs", "1",
                 "--out", pretrained, *QUIET]) == 0
    labels = files / "many.tsv"
    labels.write_text("".join(f"{k % 2}\tthe {'dog' if k % 2 else 'corn'} number {k}\n" for k in range(30)))
    sizes = dict(vocab_size=64, max_len=24, hidden=16, layers=1, heads=2, feedforward=32)
    records = run_transfer_experiment(os.path.join(pretrained, "checkpoint.npz"), f"labelled:{labels}", train_size=8,
                                      seeds=(0, 1), epochs=2, batch_size=4, options=sizes)
    assert [(r["seed"], r["start"]) for r in records] == [(0, "pretrained"), (0, "random"), (1, "pretrained"), (1, "random")]
    assert {r["steps"] for r in records} == {4}
    summary = summarize(records)
    gains = [records[0]["test_accuracy"] - records[1]["test_accuracy"], records[2]["test_accuracy"] - records[3]["test_accuracy"]]
    assert np.isclose(summary["gain"][0], np.mean(gains)) and "gain of pretraining" in table(summary)
    assert experiment(["--pretrained", str(files / "nothing.npz"), "--dataset", f"labelled:{labels}", "--train-size", "8"]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
