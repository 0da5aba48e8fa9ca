"""DBN pretraining as a classifier's initialisation: fine-tuned test accuracy vs the same net from random init.

Protocol (issue 6): a DBN 784-500-500 (Bernoulli RBMs, PCD-1, batch 64, lr 0.01, momentum 0.5,
weight decay 1e-4, grey levels used as probabilities) is trained greedily on Fashion-MNIST's
training images (labels unused). Its up-pass becomes a sigmoid MLP 784-500-500-10
(``dbn_classifier.to_classifier``), fine-tuned with softmax cross-entropy, SGD lr 0.1 momentum
0.9, batch 64. The baseline is the *same* architecture and training from Glorot-uniform
initialisation. A third row uses the DBN as a fixed feature extractor (a logistic regression
on the top-layer probabilities), beside the same logistic regression on raw pixels.
All accuracies are on the official 10,000 test images.

    python benchmarks/dbn_classifier.py [--quick] [--pretrain-epochs 5] [--finetune-epochs 10]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 training images, 2 + 3 epochs")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--layers", default="784,500,500")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from scratchgen.data import load_dataset
    from scratchgen.models.boltzmann import dbn_classifier as dc
    from scratchgen.models.boltzmann.dbn import DBN, parse_layer_sizes

    data = load_dataset(args.dataset, val_fraction=0.0, seed=args.seed)
    x, y = data.train.x.reshape(len(data.train.x), -1), data.train.y
    x_test, y_test = data.test.x.reshape(len(data.test.x), -1), data.test.y
    pretrain_epochs, finetune_epochs = args.pretrain_epochs, args.finetune_epochs
    if args.quick:
        x, y, pretrain_epochs, finetune_epochs = x[:5000], y[:5000], 2, 3
    sizes = parse_layer_sizes(args.layers)
    results = {"data": f"{args.dataset}: {len(x)} train / {len(x_test)} test", "layers": sizes,
               "pretrain_epochs": pretrain_epochs, "finetune_epochs": finetune_epochs}

    start = time.perf_counter()
    dbn = DBN(sizes, rng=args.seed, k=1, persistent=True, lr=0.01, momentum=0.5, weight_decay=1e-4,
              image_shape=data.image_shape)
    dbn.fit(x, epochs=pretrain_epochs, batch_size=64, rng=args.seed)
    results["pretrain_seconds"] = round(time.perf_counter() - start, 1)
    print(f"pretrained {sizes} in {results['pretrain_seconds']} s")

    for name, net in (("dbn_init", dc.to_classifier(dbn, data.num_classes, rng=args.seed)),
                      ("random_init", dc.random_classifier(sizes, data.num_classes, rng=args.seed))):
        start = time.perf_counter()
        losses = dc.train_classifier(net, x, y, epochs=finetune_epochs, lr=0.1, momentum=0.9, rng=args.seed + 1)
        results[name] = {"test_accuracy": dc.accuracy(net, x_test, y_test), "train_accuracy": dc.accuracy(net, x, y),
                         "train_loss_per_epoch": [round(v, 4) for v in losses],
                         "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name:12s}: test accuracy {results[name]['test_accuracy']:.4f}, train {results[name]['train_accuracy']:.4f}, "
              f"losses {results[name]['train_loss_per_epoch']}")
    features = dc.evaluate_features(dbn.transform(x), y, dbn.transform(x_test), y_test, epochs=finetune_epochs, rng=args.seed)
    pixels = dc.evaluate_features(x, y, x_test, y_test, epochs=finetune_epochs, rng=args.seed)
    results["logistic_on_dbn_features"], results["logistic_on_pixels"] = features, pixels
    print(f"logistic regression on DBN features: test {features['test_accuracy']:.4f}; on raw pixels: test {pixels['test_accuracy']:.4f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
