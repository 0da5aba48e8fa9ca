"""bAbI-style question answering, generated here: people move between places, pick up and drop objects.

Weston et al. (2015, "Towards AI-Complete Question Answering") made 20 toy tasks, each a story of
short sentences followed by questions whose answers need one, two or three of the sentences (the
*supporting facts*). A memory network reads the sentences into memory slots and must find the
right ones. This module writes stories of the same kind from a small simulated world, so the
project needs no download; the tasks follow the first three of bAbI:

    task 1  single supporting fact      mary went to the kitchen .  john moved to the office .
                                        mary travelled to the garden .       where is mary ?  garden
            (the last move of the person asked about; every earlier move is a distractor)
    task 2  two supporting facts        john picked up the milk .  john went to the hallway .
                                        where is the milk ?  hallway
            (who holds the object, or where it was dropped, and where that person went last)
    task 3  three supporting facts      daniel went to the office .  daniel grabbed the apple .
                                        daniel journeyed to the bedroom .
                                        where was the apple before the bedroom ?  office
            (the object's journey: picked up where its carrier was, carried along each move; four
            facts when another person picked it up where it lay and carried it on)

The world: 4 people, 6 places, 3 objects (``PEOPLE``, ``PLACES``, ``OBJECTS``), a few verbs each.
A person's place is known once they have moved; someone may pick up a free object only where
they are (or where the object's place is still unknown), and may drop only what they hold, which
then stays where they are. Questions are asked only when the story determines the answer: about
a person who has moved (task 1); about an object held by someone whose place is known, or
dropped at a known place (task 2; the answer always needs the object fact *and* a move); about a
place that occurs exactly once in the object's journey after its first place (task 3).

A story is a run of statements with a question after every 2 (task 1, as in bAbI) or after a
random 1..4 more statements (tasks 2, 3), five questions a story; each question is one example,
whose memory is every statement of its story so far (at most ``STORY_LIMIT[task]``: a story that
reaches it ends). Stories are drawn from ``np.random.default_rng([task, split])``: each task is a
fixed dataset, like a file (1000 training questions and 1000 test questions by default, bAbI's
"1k" setting), and ``load_babi``'s ``seed`` only chooses which 10% of the training *stories* are
held out for validation (questions of one story never straddle two splits).

Encoding (``encode_examples``), for a memory of M slots and sentences of S words:

    x: (N, M + 1, S) int64 word ids    x[n, i] (i < M) is the i-th most recent statement
                                       (slot 0 the latest: the paper's reverse-time memory),
                                       rows of 0 (``PAD``) after the last one; x[n, M] is the
                                       question; each row's words left-aligned, 0-padded
    y: (N,) int64                      the answer's word id (answers range over the vocabulary)

``load_babi`` stores x with one channel axis, (N, 1, M + 1, S), so that a story has the (C, H, W)
shape every dataset, checkpoint and loop of the project expects (``image_shape`` (1, M + 1, S)).

``VOCABULARY[i]`` is word i (``VOCABULARY[0] = "<pad>"``); words are lower case, without
punctuation. A word outside the vocabulary, a sentence longer than S words or a story longer than
M statements is refused with a one-line ``ValueError`` naming it.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .splits import DatasetSplits, Split

__all__ = ["TASKS", "BABI_DATASETS", "PEOPLE", "PLACES", "OBJECTS", "VOCABULARY", "PAD", "SENTENCE_LENGTH",
           "STORY_LIMIT", "Example", "generate_examples", "encode_examples", "decode_sentence", "load_babi"]

TASKS = {1: "single supporting fact", 2: "two supporting facts", 3: "three supporting facts"}
BABI_DATASETS = tuple(f"babi-{task}" for task in TASKS)

PEOPLE = ("mary", "john", "sandra", "daniel")
PLACES = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
OBJECTS = ("apple", "football", "milk")
MOVES = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
PICK_UPS = ("picked up", "got", "grabbed", "took")
DROPS = ("dropped", "discarded", "put down", "left")
QUESTION_WORDS = ("where", "is", "was", "before", "the")

PAD = 0
VOCABULARY = ("<pad>",) + tuple(sorted(set(PEOPLE + PLACES + OBJECTS + QUESTION_WORDS
                                           + tuple(w for phrase in MOVES + PICK_UPS + DROPS for w in phrase.split()))))
WORD_ID = {word: i for i, word in enumerate(VOCABULARY)}
# The longest sentence: "where was the football before the bathroom" (7 words).
SENTENCE_LENGTH = 7
STORY_LIMIT = {1: 10, 2: 25, 3: 30}  # statements per story at most: the memory a task needs
QUESTIONS_PER_STORY = 5


@dataclasses.dataclass(frozen=True)
class Example:
    """One question: the story so far (oldest first), the question, the answer, and the indices
    (into ``story``) of the supporting facts that determine it."""

    story: Tuple[str, ...]
    question: str
    answer: str
    supporting: Tuple[int, ...]


# ---- the simulated world -------------------------------------------------------------------------
class _World:
    """Where everyone and everything is, and which statements (indices into the story) say so."""

    def __init__(self):
        self.place: Dict[str, str] = {}                  # person -> place (once they have moved)
        self.moved_at: Dict[str, int] = {}               # person -> index of their last move
        self.holder: Dict[str, str] = {}                 # object -> person holding it
        self.picked_at: Dict[str, int] = {}              # object -> index of its pick-up (while held)
        self.dropped: Dict[str, Tuple[str, Tuple[int, ...]]] = {}  # object -> (place, (carrier's move, drop))
        self.journey: Dict[str, List[Tuple[str, Tuple[int, ...]]]] = {}  # object -> [(place, facts), ...]

    def move(self, person: str, place: str, index: int) -> None:
        self.place[person], self.moved_at[person] = place, index
        for thing, holder in self.holder.items():
            if holder == person:  # carried along: known from the pick-up and this move
                self._arrive(thing, place, (self.picked_at[thing], index))

    def pick_up(self, person: str, thing: str, index: int) -> None:
        self.holder[thing], self.picked_at[thing] = person, index
        self.dropped.pop(thing, None)
        self._arrive(thing, self.place[person], (self.moved_at[person], index))

    def drop(self, person: str, thing: str, index: int) -> None:
        del self.holder[thing]
        self.dropped[thing] = (self.place[person], (self.moved_at[person], index))

    def _arrive(self, thing: str, place: str, facts: Tuple[int, ...]) -> None:
        journey = self.journey.setdefault(thing, [])
        if not journey or journey[-1][0] != place:
            journey.append((place, facts))

    def object_location(self, thing: str):
        """(place, supporting facts) of an object whose place the story determines, else None."""
        if thing in self.holder:
            person = self.holder[thing]
            return self.place[person], tuple(sorted((self.picked_at[thing], self.moved_at[person])))
        return self.dropped.get(thing)


def _statement(rng: np.random.Generator, world: _World, task: int, index: int) -> str:
    """Draw one possible action, apply it to the world and return its sentence."""
    while True:
        roll = rng.random()
        person = PEOPLE[rng.integers(len(PEOPLE))]
        if task == 1 or roll < 0.5:
            places = [p for p in PLACES if p != world.place.get(person)]
            place = places[rng.integers(len(places))]
            world.move(person, place, index)
            return f"{person} {MOVES[rng.integers(len(MOVES))]} the {place}"
        if person not in world.place:
            continue  # nobody acts on objects before the story says where they are
        held = [t for t in OBJECTS if world.holder.get(t) == person]
        if roll < 0.8:
            here = world.place[person]
            free = [t for t in OBJECTS if t not in world.holder and world.dropped.get(t, (here,))[0] == here]
            if not free:
                continue
            thing = free[rng.integers(len(free))]
            world.pick_up(person, thing, index)
            return f"{person} {PICK_UPS[rng.integers(len(PICK_UPS))]} the {thing}"
        if not held:
            continue
        thing = held[rng.integers(len(held))]
        world.drop(person, thing, index)
        return f"{person} {DROPS[rng.integers(len(DROPS))]} the {thing}"


def _question(rng: np.random.Generator, world: _World, task: int):
    """A question the story answers: (question, answer, supporting facts), or None if there is none."""
    if task == 1:
        people = [p for p in PEOPLE if p in world.place]
        if not people:
            return None
        person = people[rng.integers(len(people))]
        return f"where is {person}", world.place[person], (world.moved_at[person],)
    if task == 2:
        known = [(t, world.object_location(t)) for t in OBJECTS]
        known = [(t, location) for t, location in known if location is not None]
        if not known:
            return None
        thing, (place, facts) = known[rng.integers(len(known))]
        return f"where is the {thing}", place, facts
    candidates = []
    for thing, journey in world.journey.items():
        places = [place for place, _ in journey]
        for k in range(1, len(journey)):
            if places.count(places[k]) == 1:
                facts = tuple(sorted(set(journey[k - 1][1] + journey[k][1])))
                candidates.append((f"where was the {thing} before the {places[k]}", places[k - 1], facts))
    if not candidates:
        return None
    return candidates[rng.integers(len(candidates))]


def _story(rng: np.random.Generator, task: int) -> List[Example]:
    """One story's questions (at most ``QUESTIONS_PER_STORY``, as many as fit in ``STORY_LIMIT``)."""
    world, statements, examples = _World(), [], []
    while len(examples) < QUESTIONS_PER_STORY:
        gap = 2 if task == 1 else int(rng.integers(1, 5))
        if len(statements) + gap > STORY_LIMIT[task]:
            break
        for _ in range(gap):
            statements.append(_statement(rng, world, task, len(statements)))
        asked = _question(rng, world, task)
        if asked is not None:
            question, answer, facts = asked
            examples.append(Example(tuple(statements), question, answer, facts))
    return examples


def generate_examples(task: int, num_questions: int, rng: np.random.Generator) -> List[List[Example]]:
    """Stories of ``task`` (1, 2 or 3) until ``num_questions`` questions: a list of stories, each a
    list of ``Example`` (its questions in order). The last story is cut to make the count exact."""
    if task not in TASKS:
        raise ValueError(f"babi: unknown task {task!r}; tasks: {', '.join(f'{k} ({v})' for k, v in TASKS.items())}")
    if isinstance(num_questions, bool) or not isinstance(num_questions, (int, np.integer)) or num_questions < 1:
        raise ValueError(f"babi: the number of questions must be a positive integer, got {num_questions!r}")
    stories, count = [], 0
    while count < num_questions:
        story = _story(rng, task)[: num_questions - count]
        if story:
            stories.append(story)
            count += len(story)
    return stories


# ---- words to ids ----------------------------------------------------------------------------------
def _sentence_ids(sentence: str, length: int) -> List[int]:
    words = sentence.split()
    unknown = [w for w in words if w not in WORD_ID or w == VOCABULARY[PAD]]
    if unknown:
        raise ValueError(f"babi: unknown word {unknown[0]!r} in {sentence!r} (the vocabulary has {len(VOCABULARY) - 1} "
                         f"words: {', '.join(VOCABULARY[1:])})")
    if len(words) > length:
        raise ValueError(f"babi: {sentence!r} has {len(words)} words, more than the sentence length {length}")
    return [WORD_ID[w] for w in words] + [PAD] * (length - len(words))


def encode_examples(examples: Sequence[Example], memory_size: int, sentence_length: int = SENTENCE_LENGTH):
    """Examples -> x (N, memory_size + 1, sentence_length) and y (N,), int64, as in the module docstring."""
    if isinstance(memory_size, bool) or not isinstance(memory_size, (int, np.integer)) or memory_size < 1:
        raise ValueError(f"babi: memory_size must be a positive integer, got {memory_size!r}")
    x = np.zeros((len(examples), memory_size + 1, sentence_length), dtype=np.int64)
    y = np.zeros(len(examples), dtype=np.int64)
    for n, example in enumerate(examples):
        if len(example.story) > memory_size:
            raise ValueError(f"babi: a story of {len(example.story)} sentences does not fit a memory of {memory_size} "
                             f"slots (question {n}: {example.question!r})")
        for slot, sentence in enumerate(reversed(example.story)):  # slot 0: the latest statement
            x[n, slot] = _sentence_ids(sentence, sentence_length)
        x[n, memory_size] = _sentence_ids(example.question, sentence_length)
        if example.answer not in WORD_ID:
            raise ValueError(f"babi: unknown answer word {example.answer!r} (question {n}: {example.question!r})")
        y[n] = WORD_ID[example.answer]
    return x, y


def decode_sentence(ids) -> str:
    """Word ids (S,) -> the sentence (padding dropped); the inverse of the encoding of one row."""
    return " ".join(VOCABULARY[int(i)] for i in ids if int(i) != PAD)


# ---- the dataset -----------------------------------------------------------------------------------
def load_babi(name: str, seed: int = 0, num_questions: int = 1000, test_questions: int = 1000,
              val_fraction: float = 0.1) -> DatasetSplits:
    """``babi-1`` / ``babi-2`` / ``babi-3`` as DatasetSplits of encoded questions (see the module docstring).

    The memory size M is the task's ``STORY_LIMIT``; x is (N, 1, M + 1, S), ``image_shape`` (1, M + 1, S),
    ``class_names`` is ``VOCABULARY``. ``seed`` picks the validation stories only.
    """
    if name not in BABI_DATASETS:
        raise ValueError(f"load_babi: unknown dataset {name!r}; choose one of {', '.join(BABI_DATASETS)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"load_babi: val_fraction must lie in [0, 1), got {val_fraction}")
    task = int(name.rsplit("-", 1)[1])
    train_stories = generate_examples(task, num_questions, np.random.default_rng([task, 0]))
    test_stories = generate_examples(task, test_questions, np.random.default_rng([task, 1]))
    held_out = int(round(val_fraction * len(train_stories)))
    order = np.random.default_rng(seed).permutation(len(train_stories))
    validation_ids = set(order[:held_out].tolist())
    flatten = lambda stories: [example for story in stories for example in story]  # noqa: E731
    memory = STORY_LIMIT[task]
    splits = []
    for stories in ([s for i, s in enumerate(train_stories) if i not in validation_ids],
                    [s for i, s in enumerate(train_stories) if i in validation_ids], test_stories):
        x, y = encode_examples(flatten(stories), memory)
        splits.append(Split(x[:, None], y))
    train, validation, test = splits
    source = (f"scratchgen.data.babi task {task} ({TASKS[task]}): {num_questions} generated training questions "
              f"({len(train_stories)} stories, {held_out} held out for validation with seed {seed}) and "
              f"{test_questions} test questions, from np.random.default_rng([{task}, 0]) and ([{task}, 1])")
    return DatasetSplits(name=name, train=train, validation=validation, test=test, image_shape=(1, memory + 1, SENTENCE_LENGTH),
                         num_classes=len(VOCABULARY), class_names=VOCABULARY, source=source)
