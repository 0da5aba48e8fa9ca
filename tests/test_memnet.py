"""bAbI-style stories and the end-to-end memory network: the generator's answers, the encoding, the
paper's equations in plain NumPy, gradchecks, and `scratchgen train memnet` (resume, eval, bad input)."""
import json
import os

import numpy as np
import pytest

from scratchgen.cli import main
from scratchgen.data import babi, load_dataset
from scratchgen.gradcheck import run_cases
from scratchgen.models import load_model
from scratchgen.models.attention.memory_network import MemN2N, MemoryNetwork, insert_empty_slots, position_encoding

TINY = ["--dim", "6", "--epochs", "1", "--batch-size", "32", "--max-batches", "4", "--seed", "1", "--no-progress",
        "--no-pictures"]

try:  # pictures are drawn only where matplotlib is installed (training goes on without them)
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


# ---- the story generator -------------------------------------------------------------------------------
def replay(story):
    """Where everyone and everything is after ``story``, by re-reading its sentences (independently of babi._World)."""
    person_at, holder, object_at, journeys = {}, {}, {}, {}
    for sentence in story:
        words = sentence.split()
        person, thing_or_place = words[0], words[-1]
        if thing_or_place in babi.PLACES:
            person_at[person] = thing_or_place
            for thing, who in holder.items():
                if who == person and journeys[thing][-1] != thing_or_place:
                    journeys[thing].append(thing_or_place)
        elif " ".join(words[1:-2]) in babi.PICK_UPS:
            holder[thing_or_place] = person
            journey = journeys.setdefault(thing_or_place, [])
            if not journey or journey[-1] != person_at[person]:
                journey.append(person_at[person])
        else:
            assert " ".join(words[1:-2]) in babi.DROPS, sentence
            del holder[thing_or_place]
            object_at[thing_or_place] = person_at[person]
    where = {thing: person_at[who] for thing, who in holder.items()}
    return person_at, {**object_at, **where}, journeys


@pytest.mark.parametrize("task", [1, 2, 3])
def test_every_answer_follows_from_the_story_and_needs_task_many_facts(task):
    stories = babi.generate_examples(task, 300, np.random.default_rng([task, 7]))
    examples = [example for story in stories for example in story]
    assert len(examples) == 300
    for example in examples:
        assert len(example.story) <= babi.STORY_LIMIT[task]
        person_at, object_at, journeys = replay(example.story)
        words = example.question.split()
        if task == 1:
            assert example.answer == person_at[words[-1]]
        elif task == 2:
            assert example.answer == object_at[words[-1]]
        else:
            journey = journeys[words[3]]
            assert journey.count(words[-1]) == 1
            assert example.answer == journey[journey.index(words[-1]) - 1]
        # task 3: three facts, four when someone else picked the object up where it lay and carried it on
        assert len(example.supporting) == task or (task == 3 and len(example.supporting) == 4), example
        assert all(0 <= k < len(example.story) for k in example.supporting)


def test_generation_repeats_from_the_seed_and_differs_between_seeds():
    a = babi.generate_examples(2, 50, np.random.default_rng(3))
    b = babi.generate_examples(2, 50, np.random.default_rng(3))
    c = babi.generate_examples(2, 50, np.random.default_rng(4))
    assert a == b and a != c


def test_load_dataset_gives_fixed_tasks_with_disjoint_story_splits():
    data = load_dataset("babi-2", seed=0)
    again = load_dataset("babi-2", seed=5)
    assert data.train.x.shape == (data.train.num_examples, 1, babi.STORY_LIMIT[2] + 1, babi.SENTENCE_LENGTH)
    assert data.train.num_examples + data.validation.num_examples == 1000 and data.test.num_examples == 1000
    np.testing.assert_array_equal(data.test.x, again.test.x)  # the seed moves only the validation stories
    assert not np.array_equal(data.validation.x, again.validation.x)
    assert data.class_names == babi.VOCABULARY and data.num_classes == len(babi.VOCABULARY)


# ---- encoding ------------------------------------------------------------------------------------------
def test_encoding_puts_the_latest_sentence_first_and_the_question_last():
    example = babi.Example(("mary went to the kitchen", "john got the milk"), "where is mary", "kitchen", (0,))
    x, y = babi.encode_examples([example], memory_size=3)
    assert x.shape == (1, 4, babi.SENTENCE_LENGTH)
    assert babi.decode_sentence(x[0, 0]) == "john got the milk"
    assert babi.decode_sentence(x[0, 1]) == "mary went to the kitchen"
    assert not x[0, 2].any()
    assert babi.decode_sentence(x[0, 3]) == "where is mary"
    assert babi.VOCABULARY[y[0]] == "kitchen"


def test_encoding_refuses_unknown_words_long_stories_and_long_sentences():
    ok = babi.Example(("mary went to the kitchen",), "where is mary", "kitchen", (0,))
    with pytest.raises(ValueError, match="unknown word 'dog' in 'the dog went to the kitchen'"):
        babi.encode_examples([babi.Example(("the dog went to the kitchen",), ok.question, ok.answer, (0,))], 3)
    with pytest.raises(ValueError, match="a story of 4 sentences does not fit a memory of 3 slots"):
        babi.encode_examples([babi.Example(("mary went to the kitchen",) * 4, ok.question, ok.answer, (0,))], 3)
    with pytest.raises(ValueError, match="has 8 words, more than the sentence length 7"):
        babi.encode_examples([babi.Example(ok.story, "where is the milk the milk the milk", ok.answer, (0,))], 3)
    with pytest.raises(ValueError, match="unknown answer word 'paris'"):
        babi.encode_examples([babi.Example(ok.story, ok.question, "paris", (0,))], 3)
    with pytest.raises(ValueError, match="unknown dataset 'babi-9'"):
        babi.load_babi("babi-9")


# ---- the network -----------------------------------------------------------------------------------------
def test_position_encoding_is_the_papers_formula_per_sentence_length():
    ids = np.array([[4, 9, 2, 0, 0], [7, 0, 0, 0, 0]])
    weights = position_encoding(ids, dim=3, dtype=np.float64)
    for row, length in ((0, 3), (1, 1)):
        for j in range(1, length + 1):
            for k in range(1, 4):
                expected = (1 - j / length) - (k / 3) * (1 - 2 * j / length)
                assert weights[row, j - 1, k - 1] == pytest.approx(expected)
    assert not weights[0, 3:].any() and not weights[1, 1:].any()


def test_random_noise_inserts_empty_slots_keeping_the_order_and_dropping_the_oldest():
    stories = np.zeros((1, 5, 2), np.int64)
    stories[0, :3, 0] = [1, 2, 3]  # three sentences, slot 0 the latest
    np.testing.assert_array_equal(insert_empty_slots(stories, 0.0, np.random.default_rng(0)), stories)
    always = insert_empty_slots(stories, 1.0 - 1e-12, np.random.default_rng(0))
    np.testing.assert_array_equal(always[0, :, 0], [0, 1, 0, 2, 0])  # the third no longer fits
    rng = np.random.default_rng(4)
    some = insert_empty_slots(stories, 0.5, rng)
    kept = some[0, :, 0][some[0, :, 0] > 0]
    np.testing.assert_array_equal(kept, [1, 2, 3][:len(kept)])


def reference_forward(network, x):
    """The module docstring's equations, written out in NumPy for one example at a time."""
    tables = [e.weight.numpy() for e in network.embeddings]
    temporal = [getattr(network.temporal, str(k)).numpy() for k in range(network.hops + 1)]
    out = []
    for example in x:
        story, question = example[:-1], example[-1]
        filled = [i for i in range(len(story)) if story[i].any()]

        def embed(k, sentence):
            length = int((sentence > 0).sum())
            total = np.zeros(network.dim)
            for j, word in enumerate(sentence[:length], start=1):
                l = (1 - j / length) - (np.arange(1, network.dim + 1) / network.dim) * (1 - 2 * j / length)
                total += l * tables[k][word]
            return total

        u = embed(0, question)
        for hop in range(network.hops):
            m = np.array([embed(hop, story[i]) + temporal[hop][i] for i in filled])
            c = np.array([embed(hop + 1, story[i]) + temporal[hop + 1][i] for i in filled])
            p = np.exp(m @ u - (m @ u).max())
            p /= p.sum()
            u = u + p @ c
        out.append(tables[network.hops] @ u)
    return np.array(out)


def test_forward_equals_the_papers_equations_in_plain_numpy():
    rng = np.random.default_rng(0)
    network = MemoryNetwork(9, dim=4, hops=3, memory=5, rng=rng, dtype=np.float64)
    x = np.array([[[1, 2, 3], [4, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [5, 6, 0]],
                  [[2, 2, 8], [7, 1, 0], [3, 3, 3], [0, 0, 0], [0, 0, 0], [8, 0, 0]]])
    np.testing.assert_allclose(network(x).numpy(), reference_forward(network, x), rtol=1e-12)
    logits, attention = network(x, with_attention=True)
    assert attention.shape == (2, 3, 5)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0)
    assert not attention[0, :, 2:].any() and not attention[1, :, 3:].any()  # empty slots take no attention


def test_gradchecks_of_the_memory_network():
    assert run_cases(["memnet_cross_entropy", "memnet_linear_start_cross_entropy"])


def test_the_network_refuses_stories_longer_than_its_memory_and_unknown_word_ids():
    network = MemoryNetwork(9, dim=4, hops=1, memory=2)
    with pytest.raises(ValueError, match="stories of 3 slots do not fit its memory of 2 slots"):
        network(np.zeros((1, 4, 3), np.int64))
    with pytest.raises(ValueError, match="word id 9 is not in its vocabulary of 9 words"):
        network(np.full((1, 3, 3), 9))
    with pytest.raises(TypeError, match="word ids must be integers"):
        network(np.zeros((1, 3, 3)))


def test_schedule_halves_the_rate_and_linear_start_ends_by_the_epoch():
    model = MemN2N(len(babi.VOCABULARY), dim=4, hops=1, memory=10, lr=0.01, halve_every=2, linear_start_epochs=1)
    assert model.learning_rate() == 0.01 and not model.in_linear_start()  # no plan yet
    model.plan_training(epochs=5, steps_per_epoch=3)
    assert model.in_linear_start()
    model.optimizers["memnet"].steps = [7] * len(model.optimizers["memnet"].steps)  # in epoch 2 (0-based)
    assert not model.in_linear_start() and model.learning_rate() == 0.005


# ---- the command line ------------------------------------------------------------------------------------
def arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith(("model/", "optimizer/"))}


def test_cli_one_epoch_then_resume_equals_two_epochs_bit_for_bit(tmp_path):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    args = ["train", "memnet", "--dataset", "babi-2", "--hops", "2", "--linear-start-epochs", "1", *TINY]
    assert main([*args, "--epochs", "2", "--out", straight]) == 0
    assert main([*args, "--out", resumed]) == 0
    assert main(["train", "memnet", "--epochs", "2", "--max-batches", "4", "--resume", "--out", resumed,
                 "--no-progress", "--no-pictures"]) == 0
    expected, got = arrays(os.path.join(straight, "checkpoint.npz")), arrays(os.path.join(resumed, "checkpoint.npz"))
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_cli_pictures_eval_and_sample(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "memnet", "--hops", "2", *TINY[:-1], "--out", out]) == 0  # babi-1 by default
    assert os.path.exists(os.path.join(out, "hop_attention_final.png")) or not HAVE_MATPLOTLIB  # pictures need matplotlib
    checkpoint = os.path.join(out, "checkpoint.npz")
    model, meta = load_model(checkpoint)
    assert isinstance(model, MemN2N) and meta["dataset"] == "babi-1" and model.net.hops == 2
    capsys.readouterr()
    assert main(["eval", checkpoint]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"evaluate_accuracy", "evaluate_error", "evaluate_cross_entropy"}
    assert main(["sample", checkpoint]) == 2
    assert "is a classifier" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["--dataset", "babi-3", "--memory", "20"], "fill up to 30 memory slots, more than --memory 20"),
    (["--dataset", "synthetic"], "memnet: needs a bAbI-style dataset"),
    (["--random-noise", "1.5"], "random_noise must lie in [0, 1)"),
    (["--hops", "0"], "--hops: must be a positive integer"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, options, message):
    assert main(["train", "memnet", *options, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
