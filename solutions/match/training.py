"""Preparing a dataset and the three ways to descend (stage 02-descent).

Every loop does the same thing per batch: forward, loss (a mean over the
batch), fresh gradients, backward, and `p.data = p.data - learning_rate *
p.grad` for every parameter. They differ only in how an epoch is cut into
batches: all N examples at once, N batches of one, or shuffled batches of
`batch_size`.
"""

from __future__ import annotations

import math
import random

from .data import Dataset
from .list2d import List2D
from .matrix import Matrix
from .nn import Module


def split_dataset(dataset: Dataset, fractions, rng: random.Random) -> tuple[Dataset, ...]:
    """One Dataset per fraction, together holding every example once, shuffled with `rng`."""
    # BEGIN EXERCISE prepare
    indices = list(range(len(dataset)))
    rng.shuffle(indices)
    parts, start, total = [], 0, 0.0
    for fraction in fractions:
        # Cutting at the rounded running total keeps every part within 1 of
        # fraction * N, and the last cut lands exactly on N.
        total += fraction
        stop = round(total * len(indices))
        X, y = dataset[indices[start:stop]]
        parts.append(Dataset(X, y))
        start = stop
    return tuple(parts)
    # END EXERCISE


def standardize(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """New Datasets whose X columns are shifted and scaled by the TRAINING mean and std."""
    # BEGIN EXERCISE prepare
    columns = train.X.data.T.vals
    means = [sum(column) / len(column) for column in columns]
    stds = [
        math.sqrt(sum((x - mean) ** 2 for x in column) / len(column))
        for column, mean in zip(columns, means)
    ]
    shift = List2D(1, len(means), [means])
    scale = List2D(1, len(stds), [stds])
    result = []
    for dataset in (train, *others):
        X = Matrix((dataset.X.data - shift) / scale)
        y = Matrix(List2D(dataset.y.nrow, dataset.y.ncol, dataset.y.data.vals))
        result.append(Dataset(X, y))
    return tuple(result)
    # END EXERCISE


def evaluate(model: Module, loss_fn, dataset: Dataset) -> float:
    """The mean loss of `model` on all of `dataset`; no parameter changes."""
    X, y = dataset[list(range(len(dataset)))]
    return loss_fn(model(X), y).item()


def batch_gradient_descent(model: Module, loss_fn, train: Dataset, valid: Dataset,
                           learning_rate: float, num_epochs: int) -> tuple[list[float], list[float]]:
    """One update per epoch, on all training examples at once."""
    # BEGIN EXERCISE batch_gd
    X, y = train[list(range(len(train)))]
    train_losses, valid_losses = [], []
    for _ in range(num_epochs):
        loss = loss_fn(model(X), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss.item())
        valid_losses.append(evaluate(model, loss_fn, valid))
    return train_losses, valid_losses
    # END EXERCISE


def stochastic_gradient_descent(model: Module, loss_fn, train: Dataset, valid: Dataset,
                                learning_rate: float, num_epochs: int,
                                rng: random.Random) -> tuple[list[float], list[float]]:
    """One update per example, in an order reshuffled with `rng` every epoch."""
    # BEGIN EXERCISE sgd
    order = list(range(len(train)))
    train_losses, valid_losses = [], []
    for _ in range(num_epochs):
        rng.shuffle(order)
        for i in order:
            X, y = train[[i]]
            loss = loss_fn(model(X), y)
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data = p.data - learning_rate * p.grad
            train_losses.append(loss.item())
        valid_losses.append(evaluate(model, loss_fn, valid))
    return train_losses, valid_losses
    # END EXERCISE


def minibatch_sgd(model: Module, loss_fn, train: Dataset, valid: Dataset,
                  learning_rate: float, num_epochs: int, batch_size: int,
                  rng: random.Random) -> tuple[list[float], list[float]]:
    """One update per batch of `batch_size` examples, reshuffled with `rng` every epoch."""
    # BEGIN EXERCISE minibatch_sgd
    order = list(range(len(train)))
    train_losses, valid_losses = [], []
    for _ in range(num_epochs):
        rng.shuffle(order)
        # The last batch keeps whatever is left over, so no example is skipped.
        for start in range(0, len(order), batch_size):
            X, y = train[order[start:start + batch_size]]
            loss = loss_fn(model(X), y)
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data = p.data - learning_rate * p.grad
            train_losses.append(loss.item())
        valid_losses.append(evaluate(model, loss_fn, valid))
    return train_losses, valid_losses
    # END EXERCISE
