"""End-to-end memory networks (Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory Networks").

A network that *writes* a story into an explicit memory, one slot per sentence, and *reads* it
with soft attention, several times ("hops"), before it answers. Reading is differentiable, so the
whole thing trains by backpropagation from the answer alone: nobody says which sentences matter.

For a story x_1 .. x_M (slot i = the i-th most recent sentence, word ids x_ij), a question q and
K hops, with embedding matrices A_1 .. A_{K+1} (V, d) and temporal tables T_1 .. T_{K+1} (M_max, d):

    memory of hop k, input side     m_i = sum_j l_j * A_k[x_ij] + T_k[i]              (N, M, d)
    memory of hop k, output side    c_i = sum_j l_j * A_{k+1}[x_ij] + T_{k+1}[i]      (N, M, d)
    first controller state          u_1 = sum_j l_j * A_1[q_j]                        (N, d)
    read (hop k)                    p = softmax_i(m_i . u_k),  o_k = sum_i p_i c_i    (N, M), (N, d)
    next state                      u_{k+1} = u_k + o_k
    answer                          logits = u_{K+1} A_{K+1}^T                        (N, V)

* Weight tying is the paper's *adjacent* scheme: hop k's output embedding is hop k + 1's input
  embedding (C_k = A_{k+1}), the question embedding is the first input embedding (B = A_1), and
  the answer matrix is the last output embedding (W^T = C_K). K hops have K + 1 tables.
* Position encoding (PE, the paper's section 4.1): the words of a sentence of J words are
  weighted by l_kj = (1 - j/J) - (k/d)(1 - 2j/J) (j = 1..J, k = 1..d) before they are summed,
  so "john went to the kitchen" differs from "the kitchen went to john". J is each sentence's
  own length; padding words (id 0) embed to 0. ``position_encoding=False`` sums the words (bag
  of words).
* Temporal encoding (TE): T_k[i] is added to slot i (i = 0 the latest sentence), so the network
  can tell the latest move from an older one. Random noise (RN, the paper's regulariser of T):
  in training, empty slots are slipped in between the sentences (``random_noise``, 0.1: about
  one per ten sentences), shifting the older sentences' temporal positions; the empty slots,
  like the padding slots after the last sentence, take no attention (a masked softmax).
* Linear start (LS): for the first ``linear_start_epochs`` epochs each read uses the raw scores
  p = m . u instead of their softmax; the paper found that this avoids poor local minima on
  the harder tasks. The softmax is always there at the answer.

Training follows the paper: SGD, learning rate ``lr`` halved every ``halve_every`` epochs,
gradients rescaled to an L2 norm of at most 40, weights drawn N(0, 0.1^2), batches of 32, the
cross-entropy summed over a batch (the paper's scale, which its learning rate assumes). The
epoch the schedule is at is the optimiser's step count divided by the steps per epoch, both
restored on resume.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Optional

import numpy as np

from ... import nn, ops
from ...data import babi
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...nn import Parameter
from ...optim import SGD, clip_grad_norm
from ...tensor import Tensor
from ..base import DataInfo, Model, register_model
from ..image_model import parameter_case

__all__ = ["position_encoding", "insert_empty_slots", "MemoryNetwork", "MemN2N", "picture_examples"]

GRADIENT_CLIP = 40.0  # the paper's bound on the gradient's L2 norm


def position_encoding(ids: np.ndarray, dim: int, dtype=np.float32) -> np.ndarray:
    """The paper's word weights l for sentences of word ids (..., S): (..., S, dim).

    For a sentence of J words (ids != 0), word j (1-based) gets l_kj = (1 - j/J) - (k/d)(1 - 2j/J),
    k = 1..d; padding positions get 0. An empty sentence (J = 0) is all 0.
    """
    ids = np.asarray(ids)
    real = ids != babi.PAD
    length = real.sum(axis=-1, keepdims=True)                       # J per sentence, (..., 1)
    j = np.cumsum(real, axis=-1)                                    # 1-based position of each real word
    ratio = np.where(real, j / np.maximum(length, 1), 0.0)[..., None]    # j / J, (..., S, 1)
    k = np.arange(1, dim + 1) / dim                                 # k / d, (dim,)
    weights = (1.0 - ratio) - k * (1.0 - 2.0 * ratio)
    return (weights * real[..., None]).astype(dtype)


def insert_empty_slots(stories: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """The paper's random noise: empty sentences slipped in before each sentence with probability ``rate``.

    stories: (N, M, S) word ids, slot 0 the latest sentence, empty slots (all 0) after the last.
    Each real sentence is preceded (in slot order) by an empty slot with probability ``rate``
    (one uniform per slot, drawn from ``rng`` as an (N, M) array), so older sentences move to
    higher temporal positions; whatever no longer fits in the M slots (the oldest) is dropped.
    """
    n, m, _ = stories.shape
    noise = rng.random((n, m)) < rate
    real = (stories != babi.PAD).any(axis=-1)                       # (N, M)
    shift = np.cumsum(noise & real, axis=1)                         # empties inserted at or before slot i
    target = np.arange(m)[None, :] + shift                          # where slot i's sentence goes
    out = np.zeros_like(stories)
    keep = real & (target < m)
    rows = np.nonzero(keep)
    out[rows[0], target[keep]] = stories[keep]
    return out


class MemoryNetwork(nn.Module):
    """The network of the module docstring: word ids in, answer logits (N, V) out.

    vocabulary V, dim d, hops K, memory (the temporal tables' length, the most slots a story may
    fill). ``embeddings.k`` is A_{k+1} (V, d), ``temporal.k`` is T_{k+1} (memory, d).
    ``forward(x, linear=False, with_attention=False)``: x (N, M + 1, S) (or a dataset's (N, 1, M + 1, S)),
    the M story slots then the question (``scratchgen.data.babi``'s encoding); returns the logits, or (logits, attention
    (N, K, M)) with ``with_attention``.
    """

    def __init__(self, vocabulary: int, dim: int = 20, hops: int = 3, memory: int = 50,
                 position_encoding: bool = True, temporal_encoding: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        for name, value in (("vocabulary", vocabulary), ("dim", dim), ("hops", hops), ("memory", memory)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"MemoryNetwork: {name} must be a positive integer, got {value!r}")
        rng = np.random.default_rng(rng)
        self.vocabulary, self.dim, self.hops, self.memory = int(vocabulary), int(dim), int(hops), int(memory)
        self.position_encoding, self.temporal_encoding = bool(position_encoding), bool(temporal_encoding)
        self.dtype = np.dtype(dtype)
        paper_init = functools.partial(nn.init.normal, std=0.1)  # N(0, 0.1^2), the paper's
        self.embeddings = nn.Sequential(*[nn.Embedding(vocabulary, dim, padding_idx=babi.PAD, init=paper_init, rng=rng,
                                                       dtype=dtype) for _ in range(hops + 1)])
        if self.temporal_encoding:
            self.temporal = nn.Module()
            for k in range(hops + 1):
                self.temporal.register_parameter(str(k), Parameter(0.1 * rng.standard_normal((memory, dim)).astype(dtype)))

    def check(self, x) -> np.ndarray:
        """x as int64 ids (N, M + 1, S) (a dataset's (N, 1, M + 1, S) loses its channel axis), or a
        one-line ValueError naming what does not fit."""
        x = np.asarray(x.get() if hasattr(x, "get") else x)
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3 or x.shape[1] < 2:
            raise ValueError(f"memnet: expected word ids (N, M + 1, S) (M story slots, then the question), got shape {x.shape}")
        if x.dtype.kind not in "iu":
            raise TypeError(f"memnet: word ids must be integers, got dtype {x.dtype}")
        if x.shape[1] - 1 > self.memory:
            raise ValueError(f"memnet: stories of {x.shape[1] - 1} slots do not fit its memory of {self.memory} slots "
                             f"(train with --memory {x.shape[1] - 1} or more)")
        if x.size and (int(x.min()) < 0 or int(x.max()) >= self.vocabulary):
            bad = int(x.max()) if int(x.max()) >= self.vocabulary else int(x.min())
            raise ValueError(f"memnet: word id {bad} is not in its vocabulary of {self.vocabulary} words (ids 0..{self.vocabulary - 1})")
        return x.astype(np.int64, copy=False)

    def _sentences(self, table: int, ids: np.ndarray, weights: np.ndarray) -> Tensor:
        """sum_j l_j * A_table[ids_j]: (..., S) ids and (..., S, d) weights -> (..., d)."""
        return (self.embeddings[table](ids) * weights).sum(axis=-2)

    def _memory(self, table: int, story: np.ndarray, weights) -> Tensor:
        slots = self._sentences(table, story, weights)                # (N, M, d)
        if self.temporal_encoding:
            slots = slots + getattr(self.temporal, str(table))[: story.shape[1]]
        return slots

    def forward(self, x, linear: bool = False, with_attention: bool = False):
        x = self.check(x)
        story, question = x[:, :-1], x[:, -1]
        # Word weights: PE's l, or 1 for every word (a bag of words); 0 at padding either way, so
        # the padding row of a table (0, and never trained) could not matter even if it moved.
        if self.position_encoding:
            weights = position_encoding(x, self.dim, self.dtype)
        else:
            weights = np.broadcast_to((x != babi.PAD)[..., None], x.shape + (self.dim,)).astype(self.dtype)
        story_weights, question_weights = weights[:, :-1], weights[:, -1]
        filled = (story != babi.PAD).any(axis=-1)                     # (N, M): slots that hold a sentence
        state = self._sentences(0, question, question_weights)       # u_1 (N, d)
        output_side = self._memory(0, story, story_weights)
        attention = []
        for hop in range(self.hops):
            input_side, output_side = output_side, self._memory(hop + 1, story, story_weights)  # A_k, A_{k+1}
            scores = ops.matmul(input_side, state.reshape((len(x), self.dim, 1))).reshape((len(x), -1))  # m_i . u
            read = scores * Tensor(filled.astype(self.dtype)) if linear else ops.masked_softmax(scores, filled)
            attention.append(read)
            state = state + ops.matmul(read.reshape((len(x), 1, -1)), output_side).reshape((len(x), self.dim))
        logits = ops.matmul(state, self.embeddings[self.hops].weight.T)  # u_{K+1} A_{K+1}^T
        if with_attention:
            return logits, np.stack([a.numpy() for a in attention], axis=1)
        return logits


class MemN2N(Model):
    """``MemoryNetwork`` trained as the paper trains it (see the module docstring)."""

    cli_name = "memnet"

    def __init__(self, vocabulary: int, dim: int = 20, hops: int = 3, memory: int = 50, position_encoding: bool = True,
                 temporal_encoding: bool = True, random_noise: float = 0.1, linear_start_epochs: int = 0,
                 lr: float = 0.01, halve_every: int = 25, rng=None, dtype=np.float32):
        super().__init__()
        if not 0.0 <= random_noise < 1.0:
            raise ValueError(f"memnet: random_noise must lie in [0, 1), got {random_noise!r}")
        if not lr > 0:
            raise ValueError(f"memnet: lr must be > 0, got {lr!r}")
        if linear_start_epochs < 0 or halve_every < 0:
            raise ValueError(f"memnet: linear_start_epochs and halve_every must be >= 0, got {linear_start_epochs!r}, "
                             f"{halve_every!r}")
        self.net = MemoryNetwork(vocabulary, dim, hops, memory, position_encoding, temporal_encoding, rng=rng, dtype=dtype)
        self.random_noise, self.linear_start_epochs = float(random_noise), int(linear_start_epochs)
        self.base_lr, self.halve_every = float(lr), int(halve_every)
        self.optimizers = {"memnet": SGD(self.net.parameters(), lr=lr)}
        self.steps_per_epoch: Optional[int] = None

    def plan_training(self, epochs: int, steps_per_epoch: int) -> None:
        self.steps_per_epoch = int(steps_per_epoch)

    def epoch(self) -> int:
        """The epoch (0-based) the next step belongs to; 0 without a plan."""
        steps = self.optimizers["memnet"].steps[0]
        return steps // self.steps_per_epoch if self.steps_per_epoch else 0

    def learning_rate(self) -> float:
        halvings = self.epoch() // self.halve_every if self.halve_every else 0
        return self.base_lr * 0.5 ** halvings

    def in_linear_start(self) -> bool:
        return self.steps_per_epoch is not None and self.epoch() < self.linear_start_epochs

    def train_step(self, x, y, rng) -> Dict[str, float]:
        x = self.net.check(x)
        if self.random_noise and self.net.temporal_encoding:
            x = np.concatenate([insert_empty_slots(x[:, :-1], self.random_noise, rng), x[:, -1:]], axis=1)
        optimizer = self.optimizers["memnet"]
        optimizer.lr = self.learning_rate()
        optimizer.zero_grad()
        loss = ops.softmax_cross_entropy(self.net(x, linear=self.in_linear_start()), np.asarray(y), reduction="sum")
        loss.backward()
        clip_grad_norm(self.net, GRADIENT_CLIP)
        optimizer.step()
        return {"cross_entropy": float(loss.data) / len(x)}

    def logits(self, x, batch_size: int = 1000) -> np.ndarray:
        self.eval()
        with no_grad():
            return np.concatenate([self.net(x[s:s + batch_size]).numpy() for s in range(0, len(x), batch_size)])

    def predict(self, x) -> np.ndarray:
        return self.logits(x).argmax(axis=1)

    def evaluate(self, x, y, rng=None) -> Dict[str, float]:
        logits = self.logits(x)
        with no_grad():
            loss = ops.softmax_cross_entropy(Tensor(logits), np.asarray(y), reduction="mean")
        accuracy = float((logits.argmax(axis=1) == np.asarray(y)).mean())
        return {"accuracy": accuracy, "error": 1.0 - accuracy, "cross_entropy": float(loss.data)}

    def attention(self, x) -> np.ndarray:
        """Which slots each hop reads: (N, hops, M), each row summing to 1 over the story's sentences."""
        self.eval()
        with no_grad():
            return self.net(x, with_attention=True)[1]

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        from .memnet_pictures import save_hop_attention

        picks = picture_examples(len(data.test.x))
        if not picks:
            return []
        x, y = data.test.x[picks], data.test.y[picks]
        return [save_hop_attention(x, y, self.predict(x), self.attention(x), out_dir, tag)]


def picture_examples(count: int) -> List[int]:
    """Three test questions to draw: the third question of three stories (five questions a story),
    long enough to need several hops; the first three when there are fewer than 13."""
    picks = [2, 7, 12] if count > 12 else list(range(min(3, count)))
    return picks


# ---- CLI registration ----------------------------------------------------------------------------
MEMNET_DEFAULTS = {"hops": 3, "dim": 20, "memory": 50, "position_encoding": True, "temporal_encoding": True,
                   "random_noise": 0.1, "linear_start_epochs": 0, "lr": 0.01, "halve_every": 25,
                   "epochs": 100, "batch_size": 32, "dataset": "babi-1"}


@register_model("memnet", family="attention", defaults=MEMNET_DEFAULTS,
                description="end-to-end memory network (Sukhbaatar et al. 2015) on bAbI-style stories "
                            "(--dataset babi-1, babi-2 or babi-3); --hops reads of the memory")
def build_memnet(config: Dict, data_info: DataInfo, rng) -> MemN2N:
    shape = tuple(data_info.image_shape)
    if len(shape) != 3 or shape[0] != 1 or shape[2] != babi.SENTENCE_LENGTH or data_info.num_classes != len(babi.VOCABULARY):
        raise ValueError(f"memnet: needs a bAbI-style dataset ({', '.join(babi.BABI_DATASETS)}), got data of shape "
                         f"{shape} with {data_info.num_classes} classes")
    if shape[1] - 1 > config["memory"]:
        raise ValueError(f"memnet: the stories of this dataset fill up to {shape[1] - 1} memory slots, more than "
                         f"--memory {config['memory']}")
    return MemN2N(len(babi.VOCABULARY), dim=config["dim"], hops=config["hops"], memory=config["memory"],
                  position_encoding=config["position_encoding"], temporal_encoding=config["temporal_encoding"],
                  random_noise=float(config["random_noise"]), linear_start_epochs=config["linear_start_epochs"],
                  lr=float(config["lr"]), halve_every=config["halve_every"], rng=rng)


# ---- gradcheck cases: the answer's cross-entropy as a function of every table -----------------------
def _tiny_case(rng, linear: bool):
    network = MemoryNetwork(7, dim=3, hops=2, memory=4, rng=rng, dtype=np.float64)
    x = np.array([[[1, 2, 0], [3, 1, 4], [0, 0, 0], [5, 6, 0]],      # slot 2 empty: masked out
                  [[2, 2, 5], [0, 0, 0], [0, 0, 0], [6, 1, 3]]])
    y = np.array([4, 2])
    return parameter_case(network, lambda: ops.softmax_cross_entropy(network(x, linear=linear), y))


register_case("memnet_cross_entropy")(lambda rng: _tiny_case(rng, linear=False))
register_case("memnet_linear_start_cross_entropy")(lambda rng: _tiny_case(rng, linear=True))
