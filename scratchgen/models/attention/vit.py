"""The vision transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"): a classifier
that reads an image as a sequence of patches.

For images (C, H, W), patch size P (H and W divisible by P), width D, L = (H/P)(W/P) patches:

    patches = patchify(x)                           (N, L, C P P)   row-major patch order, each
                                                                    patch flattened (C, P, P)
    tokens  = patches W_e^T + b_e                   (N, L, D)       the linear patch embedding
    tokens  = [cls; tokens] + E_pos                 (N, L + 1, D)   a learned [CLS] token in
                                                                    front, learned positions
    tokens  = block_depth(... block_1(tokens))      (N, L + 1, D)   pre-norm encoder blocks
                                                                    (``nn.TransformerEncoderBlock``)
    logits  = head(LayerNorm(tokens[:, 0]))         (N, K)          read out from [CLS] only

The patch embedding is a convolution with kernel P and stride P written as what it is: one
matrix applied to each flattened patch. The [CLS] token owns no pixels; its row of each
block's attention says which patches it gathers from, and after the last block it is all the
head sees: ``cls_attention`` returns those rows, ``save_pictures`` draws them per head.

Training (``ViT``, a ``SoftmaxClassifier``, so through the one loop like every model):
softmax cross-entropy, AdamW (decoupled weight decay), the learning rate warmed up linearly
then annealed along a half cosine to 0 over the run (``warmup_cosine``; the loop says how long
the run is through ``plan_training``), and each batch augmented with random shifts and
horizontal flips drawn from the loop's ``rng`` (``scratchgen.data.augmentation``). The step
count lives in the optimiser state, so a resumed run takes the same learning rates (resumed with
a larger ``--epochs``, the cosine is stretched from that step on).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np

from ... import nn, ops
from ...data.augmentation import augment_images
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...nn import Parameter
from ...tensor import Tensor
from ..base import DataInfo, register_model
from ..classifiers.supervised import SoftmaxClassifier
from ..image_model import parameter_case

__all__ = ["patchify", "warmup_cosine", "VisionTransformer", "ViT", "attention_maps", "cls_attention"]


# ---- images as sequences of patches --------------------------------------------------------------
def check_patch_size(image_shape, patch: int, where: str = "ViT") -> None:
    """A one-line ValueError unless the patch size tiles the (C, H, W) images exactly."""
    _, h, w = image_shape
    if isinstance(patch, bool) or int(patch) != patch or patch < 1:
        raise ValueError(f"{where}: patch size must be a positive integer, got {patch!r}")
    if h % patch or w % patch:
        raise ValueError(f"{where}: image size {h}x{w} is not divisible by the patch size {patch} "
                         f"(choose a patch size that divides both, e.g. {_divisors(h, w)})")


def _divisors(h: int, w: int) -> str:
    common = [d for d in range(2, min(h, w) + 1) if h % d == 0 and w % d == 0]
    return " or ".join(map(str, common[:4])) if common else "1"


def patchify(images, patch: int) -> np.ndarray:
    """(N, C, H, W) images -> (N, L, C P P) flattened patches, L = (H/P)(W/P).

    Patch l = r (W/P) + c covers rows [rP, rP + P) and columns [cP, cP + P); its features are
    ordered (channel, row in patch, column in patch), the order in which a Conv2d(C, D, P,
    stride=P) weight (D, C, P, P) flattens, so that weight reshaped to (D, C P P) is W_e.
    The images are data (no gradient flows into them), so this is plain array rearrangement.
    """
    images = np.asarray(images.get() if hasattr(images, "get") else images)
    if images.ndim != 4:
        raise ValueError(f"patchify: images must be (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    check_patch_size((c, h, w), patch, "patchify")
    p = int(patch)
    grid = images.reshape(n, c, h // p, p, w // p, p)           # (N, C, rows, P, cols, P)
    grid = grid.transpose(0, 2, 4, 1, 3, 5)                     # (N, rows, cols, C, P, P)
    return np.ascontiguousarray(grid).reshape(n, (h // p) * (w // p), c * p * p)


# ---- the learning-rate schedule --------------------------------------------------------------------
def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """The learning-rate multiplier of step ``step`` (0-based: the step about to be taken).

        step < warmup:   (step + 1) / warmup                               linear warm-up
        afterwards:      (1 + cos(pi (step - warmup) / (total - warmup))) / 2   from 1 down to 0

    Why: Adam's second-moment estimates are poor over the first steps, and a transformer's
    attention logits can blow up if its first steps are large; the cosine then anneals the
    rate so that the last epochs settle into a minimum rather than rattle around one
    (Loshchilov & Hutter 2017). Past ``total_steps`` the multiplier stays 0.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


# ---- the network ---------------------------------------------------------------------------------
class VisionTransformer(nn.Module):
    """Patches -> linear embedding -> [CLS] + positions -> encoder blocks -> LayerNorm -> head.

    image_shape (C, H, W); num_classes K; patch P; dim D; depth (blocks); heads; mlp_dim (the
    feed-forward width of each block). Submodules: ``patch_embedding`` (Linear C P P -> D),
    ``cls_token`` (1, 1, D), ``positions`` (LearnedPositionalEncoding, L + 1 rows), ``blocks``
    (Sequential of TransformerEncoderBlock, pre-norm, GELU, no dropout), ``norm``, ``head``.
    forward(x): images (N, C, H, W) -> logits (N, K).
    """

    def __init__(self, image_shape, num_classes: int, patch: int = 4, dim: int = 64, depth: int = 6, heads: int = 4,
                 mlp_dim: int = 128, rng=None, dtype=np.float32):
        super().__init__()
        check_patch_size(image_shape, patch, "VisionTransformer")
        if dim % heads:
            raise ValueError(f"VisionTransformer: dim {dim} is not divisible by heads {heads}")
        rng = np.random.default_rng(rng)
        c, h, w = (int(s) for s in image_shape)
        self.image_shape, self.patch = (c, h, w), int(patch)
        self.num_patches = (h // patch) * (w // patch)
        self.dim, self.depth, self.heads = int(dim), int(depth), int(heads)
        self.patch_embedding = nn.Linear(c * patch * patch, dim, rng=rng, dtype=dtype)
        # [CLS] starts at 0 (as in the paper's code): the positions tell it apart from the patches.
        self.cls_token = Parameter(np.zeros((1, 1, dim), dtype=dtype))
        self.positions = nn.LearnedPositionalEncoding(self.num_patches + 1, dim, rng=rng, dtype=dtype)
        self.blocks = nn.Sequential(*[nn.TransformerEncoderBlock(dim, heads, dim_feedforward=mlp_dim, dropout=0.0,
                                                                 norm_first=True, rng=rng, dtype=dtype)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, dtype=dtype)
        self.head = nn.Linear(dim, num_classes, rng=rng, dtype=dtype)

    def embed(self, x) -> Tensor:
        """Images (N, C, H, W) -> the first block's input (N, L + 1, D): [CLS] and patch embeddings, plus positions."""
        data = x.data if isinstance(x, Tensor) else x
        if data.ndim != 4 or tuple(data.shape[1:]) != self.image_shape:
            raise ValueError(f"VisionTransformer: expected images (N, {', '.join(map(str, self.image_shape))}), "
                             f"got shape {tuple(data.shape)}")
        patches = patchify(data, self.patch)                                 # (N, L, C P P)
        n, length, features = patches.shape
        embedded = self.patch_embedding(Tensor(patches.reshape(n * length, features))).reshape((n, length, self.dim))
        cls = ops.broadcast_to(self.cls_token, (n, 1, self.dim))
        return self.positions(ops.concatenate([cls, embedded], axis=1))

    def forward(self, x) -> Tensor:
        tokens = self.blocks(self.embed(x))
        return self.head(self.norm(tokens[:, 0]))  # only [CLS] is read out, so only its row is normalised


def attention_maps(network: VisionTransformer, x) -> np.ndarray:
    """Every block's attention probabilities on images x: (N, depth, heads, L + 1, L + 1).

    Entry [n, b, h, i, j] is the weight head h of block b gives token j when it updates token i
    (token 0 is [CLS], token 1 + l is patch l); each row sums to 1. Recomputed from the blocks'
    own weights on the input each block's attention sees (norm1 of the block's input, for the
    pre-norm blocks), as ``MultiHeadAttention`` computes it: softmax(q k^T / sqrt(D / heads))
    with q and k from the packed ``in_proj_weight``.
    """
    with no_grad():
        tokens = network.embed(x)
        maps = []
        for block in network.blocks:
            attention_input = block.norm1(tokens) if block.norm_first else tokens
            maps.append(_attention_probabilities(block.self_attn, attention_input.numpy()))
            tokens = block(tokens)
    return np.stack(maps, axis=1)


def cls_attention(network: VisionTransformer, x) -> np.ndarray:
    """The [CLS] token's row of ``attention_maps``: (N, depth, heads, L + 1), what [CLS] gathers from."""
    return attention_maps(network, x)[:, :, :, 0, :]


def _attention_probabilities(attention: nn.MultiHeadAttention, x: np.ndarray) -> np.ndarray:
    """softmax(q k^T scale) per head for x (N, T, E): (N, heads, T, T)."""
    e, heads, d = attention.embed_dim, attention.num_heads, attention.head_dim
    weight = attention.in_proj_weight.numpy()
    bias = attention.in_proj_bias.numpy() if attention.in_proj_bias is not None else np.zeros(3 * e, weight.dtype)
    n, t, _ = x.shape
    q = (x @ weight[:e].T + bias[:e]).reshape(n, t, heads, d).transpose(0, 2, 1, 3)          # (N, heads, T, d)
    k = (x @ weight[e:2 * e].T + bias[e:2 * e]).reshape(n, t, heads, d).transpose(0, 2, 1, 3)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    return probs / probs.sum(axis=-1, keepdims=True)


# ---- the model the loop trains -------------------------------------------------------------------
class ViT(SoftmaxClassifier):
    """A ``VisionTransformer`` trained as a classifier: AdamW, warm-up + cosine, shifts and flips.

    lr: peak learning rate; weight_decay: AdamW's decoupled decay; warmup_epochs: the linear
    warm-up's length in epochs (fractions allowed); shift: largest random shift in pixels (0:
    none); flip: random horizontal flips. Without ``plan_training`` (a bare ``train_step``) the
    rate stays at ``lr``.
    """

    cli_name = "vit"

    def __init__(self, image_shape, num_classes: int, patch: int = 4, dim: int = 64, depth: int = 6, heads: int = 4,
                 mlp_dim: int = 128, lr: float = 3e-3, weight_decay: float = 0.05, warmup_epochs: float = 1.0,
                 shift: int = 2, flip: bool = True, rng=None, dtype=np.float32):
        for name, value in (("lr", lr), ("weight_decay", weight_decay), ("warmup_epochs", warmup_epochs)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
                raise ValueError(f"ViT: {name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}, got {value!r}")
        if isinstance(shift, bool) or int(shift) != shift or shift < 0:
            raise ValueError(f"ViT: shift must be an integer >= 0 (pixels), got {shift!r}")
        network = VisionTransformer(image_shape, num_classes, patch, dim, depth, heads, mlp_dim, rng=rng, dtype=dtype)
        super().__init__(network, optimizer="adamw", lr=lr, weight_decay=weight_decay)
        self.image_shape, self.num_classes = network.image_shape, int(num_classes)
        self.base_lr, self.warmup_epochs = float(lr), float(warmup_epochs)
        self.shift, self.flip = int(shift), bool(flip)
        self.total_steps: Optional[int] = None
        self.warmup_steps = 0

    def inputs(self, x) -> np.ndarray:
        return np.asarray(x.get() if hasattr(x, "get") else x, dtype=self.dtype)  # the network checks the shape

    def plan_training(self, epochs: int, steps_per_epoch: int) -> None:
        self.total_steps = int(epochs) * int(steps_per_epoch)
        self.warmup_steps = int(round(self.warmup_epochs * steps_per_epoch))

    def learning_rate(self, step: int) -> float:
        """The rate of step ``step`` (0-based): ``lr`` times ``warmup_cosine``, or ``lr`` with no plan."""
        if self.total_steps is None:
            return self.base_lr
        return self.base_lr * warmup_cosine(step, self.total_steps, self.warmup_steps)

    def train_step(self, x, y, rng) -> Dict[str, float]:
        optimizer = self.optimizers["classifier"]
        optimizer.lr = self.learning_rate(optimizer.steps[0])
        x = augment_images(self.inputs(x), rng, max_shift=self.shift, flip=self.flip)
        return super().train_step(x, y, rng)

    def attention_maps(self, x) -> np.ndarray:
        """``attention_maps`` of the network on images x: (N, depth, heads, L + 1, L + 1)."""
        self.eval()
        return attention_maps(self.net, self.inputs(x))

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        from .vit_pictures import attention_rollout, save_cls_attention

        x = data.test.x[:6]
        if not len(x):
            return []
        maps = self.attention_maps(x)
        rollout = np.stack([attention_rollout(image_maps)[0] for image_maps in maps])
        names = [_class_name(data, k) for k in data.test.y[:6]]
        predicted = [_class_name(data, k) for k in self.predict(x)]
        return [save_cls_attention(x, maps[:, :, :, 0, :], self.net.patch, names, predicted, out_dir, tag, rollout)]


def _class_name(data, label) -> str:
    names = getattr(data, "class_names", ())
    return names[int(label)] if int(label) < len(names) else str(int(label))


# ---- CLI registration ----------------------------------------------------------------------------
# Chosen for Fashion-MNIST on one CPU thread (benchmarks/exp_vit.py has the runs): 4x4 patches (49
# tokens + [CLS]); 7x7 ones cost a third as much per epoch and learned as fast in a 4-epoch trial
# on 10,000 images, but over a full run they stalled (83.4% validation accuracy after 13 of 40
# epochs): shifts move the content inside a coarse patch, which one linear map must then absorb.
# 3e-3 beat 1e-3 and 2e-3 in the trial; 18 epochs keep a run under an hour of one core.
VIT_DEFAULTS = {"patch": 4, "dim": 64, "depth": 6, "heads": 4, "mlp_dim": 128, "lr": 3e-3, "weight_decay": 0.05,
                "warmup_epochs": 1.0, "shift": 2, "flip": True, "epochs": 18, "batch_size": 128}


@register_model("vit", family="attention", defaults=VIT_DEFAULTS,
                description="vision transformer (Dosovitskiy et al. 2021): patches, [CLS], learned positions, "
                            "pre-norm encoder blocks; AdamW, warm-up + cosine, shifts and flips")
def build_vit(config: Dict, data_info: DataInfo, rng) -> ViT:
    if len(data_info.image_shape) != 3:
        raise ValueError(f"vit: needs images (C, H, W), got data of shape {tuple(data_info.image_shape)}")
    check_patch_size(data_info.image_shape, config["patch"], "vit: --patch")
    if config["dim"] % config["heads"]:
        raise ValueError(f"vit: --dim {config['dim']} is not divisible by --heads {config['heads']}")
    return ViT(data_info.image_shape, data_info.num_classes, patch=config["patch"], dim=config["dim"],
               depth=config["depth"], heads=config["heads"], mlp_dim=config["mlp_dim"], lr=float(config["lr"]),
               weight_decay=float(config["weight_decay"]), warmup_epochs=float(config["warmup_epochs"]),
               shift=config["shift"], flip=config["flip"], rng=rng)


# ---- gradcheck cases: the cross-entropy of a tiny ViT as a function of all its weights -----------------
def _tiny_case(rng):
    network = VisionTransformer((2, 4, 6), 3, patch=2, dim=4, depth=2, heads=2, mlp_dim=6, rng=rng, dtype=np.float64)
    for parameter in network.parameters():  # move LayerNorm's 1/0 and [CLS]'s 0 off their special values
        parameter.data += 0.1 * rng.standard_normal(parameter.shape)
    x = rng.uniform(0, 1, (3, 2, 4, 6))
    y = np.array([0, 2, 1])
    return parameter_case(network, lambda: ops.softmax_cross_entropy(network(x), y, reduction="mean"))


register_case("vit_cross_entropy")(_tiny_case)
