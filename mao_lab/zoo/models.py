"""Builders of the classic networks: the seed's iris MLP and LeCun et al. (1998)'s MNIST nets.

Every builder returns a built ``Sequential`` (compiled with its default optimizer and loss
unless ``compile=False``). Deviations from the 1998 paper are listed in docs/zoo.md and in
each docstring: ReLU and max pooling by default (``activation="tanh", pooling="avg"`` gives
the paper's flavour), full connections instead of LeNet-5's C3 table and LeNet-4's paired
subsampling maps, a softmax output with cross-entropy instead of the RBF output layer.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
from ..model import Sequential
from ..optimizers import SGD

MNIST_SHAPE = (1, 28, 28)
IRIS_SHAPE = (4,)

# The seed's iris configuration. It stalls near 67% accuracy (in PyTorch too);
# learning_rate=0.5 converges to 96-100% with everything else unchanged.
IRIS_DEFAULTS = {"learning_rate": 0.01, "batch_size": 4, "epochs": 100}
MNIST_DEFAULTS = {"learning_rate": 0.01, "momentum": 0.9, "batch_size": 64, "epochs": 10}


def _check(name: str, activation: str, pooling: str | None = None) -> None:
    if activation not in ("relu", "tanh", "sigmoid"):
        raise ConfigError(f"zoo.{name}: activation must be 'relu', 'tanh' or 'sigmoid'. "
                          f"Received: activation={activation!r}")
    if pooling is not None and pooling not in ("max", "avg"):
        raise ConfigError(f"zoo.{name}: pooling must be 'max' or 'avg'. Received: "
                          f"pooling={pooling!r}")


def _finish(model: Sequential, compile: bool, learning_rate: float, momentum: float,
            loss: str) -> Sequential:
    if compile:
        model.compile(optimizer=SGD(learning_rate=learning_rate, momentum=momentum),
                      loss=loss, metrics=["accuracy"])
    return model


def _pool(pooling: str, name: str):
    return MaxPool2D(2, name=name) if pooling == "max" else AvgPool2D(2, name=name)


def iris(*, learning_rate: float = IRIS_DEFAULTS["learning_rate"], seed: int | None = 0,
         compile: bool = True) -> Sequential:
    """The seed's iris network: 4-30-20-3, sigmoid everywhere, mean squared error, plain SGD.

    833 parameters. Train with ``batch_size=4, epochs=100`` (the seed's values). With the
    seed's ``learning_rate=0.01`` it stalls near 67% accuracy; ``learning_rate=0.5``
    reaches 96-100%. Targets are one-hot vectors of the 3 classes (integer labels work).

    Example:
        >>> from mao_lab import zoo
        >>> zoo.iris().count_params()
        833
    """
    model = Sequential([Dense(30, activation="sigmoid", name="hidden1"),
                        Dense(20, activation="sigmoid", name="hidden2"),
                        Dense(3, activation="sigmoid", name="predictions")],
                       input_shape=IRIS_SHAPE, name="iris", seed=seed)
    return _finish(model, compile, learning_rate, 0.0, "mse")


def _fc(name: str, hidden: tuple[int, ...], activation: str, seed, compile: bool,
        learning_rate: float, momentum: float) -> Sequential:
    _check(name, activation)
    layers = [Flatten(name="flatten")]
    layers += [Dense(u, activation=activation, name=f"hidden{i + 1}")
               for i, u in enumerate(hidden)]
    layers.append(Dense(10, activation="softmax", name="predictions"))
    model = Sequential(layers, input_shape=MNIST_SHAPE, name=name, seed=seed)
    return _finish(model, compile, learning_rate, momentum, "sparse_categorical_crossentropy")


def fc300(*, activation: str = "relu", learning_rate: float = 0.01, momentum: float = 0.9,
          seed: int | None = 0, compile: bool = True) -> Sequential:
    """LeCun et al.'s 2-layer net with 300 hidden units: 784-300-10, 238,510 parameters.

    Example:
        >>> from mao_lab import zoo
        >>> zoo.fc300().count_params()
        238510
    """
    return _fc("fc300", (300,), activation, seed, compile, learning_rate, momentum)


def fc1000(*, activation: str = "relu", learning_rate: float = 0.01, momentum: float = 0.9,
           seed: int | None = 0, compile: bool = True) -> Sequential:
    """784-1000-10, 795,010 parameters."""
    return _fc("fc1000", (1000,), activation, seed, compile, learning_rate, momentum)


def fc300_100(*, activation: str = "relu", learning_rate: float = 0.01, momentum: float = 0.9,
              seed: int | None = 0, compile: bool = True) -> Sequential:
    """LeCun et al.'s 3-layer net: 784-300-100-10, 266,610 parameters."""
    return _fc("fc300_100", (300, 100), activation, seed, compile, learning_rate, momentum)


def lenet1(*, activation: str = "relu", pooling: str = "max", learning_rate: float = 0.01,
           momentum: float = 0.9, seed: int | None = 0, compile: bool = True) -> Sequential:
    """LeNet-1 on 28x28 inputs: conv 4@5x5 (24x24), pool (12x12), conv 12@5x5 (8x8),
    pool (4x4), dense 10. 3,246 parameters (the paper's LeNet-1 had fewer: a partial connection
    table between the 4 and the 12 maps; here every map sees all 4).

    Example:
        >>> from mao_lab import zoo
        >>> zoo.lenet1().count_params()
        3246
    """
    _check("lenet1", activation, pooling)
    model = Sequential([
        Conv2D(4, 5, activation=activation, name="c1"), _pool(pooling, "s2"),
        Conv2D(12, 5, activation=activation, name="c3"), _pool(pooling, "s4"),
        Flatten(name="flatten"), Dense(10, activation="softmax", name="predictions"),
    ], input_shape=MNIST_SHAPE, name="lenet1", seed=seed)
    return _finish(model, compile, learning_rate, momentum, "sparse_categorical_crossentropy")


def lenet4(*, activation: str = "relu", pooling: str = "max", learning_rate: float = 0.01,
           momentum: float = 0.9, seed: int | None = 0, compile: bool = True,
           name: str = "lenet4") -> Sequential:
    """LeNet-4: 28x28 padded to 32x32 (``padding="same"``), conv 4@5x5 (28x28), pool
    (14x14), conv 16@5x5 (10x10), pool (5x5), dense 120, dense 10. 51,050 parameters (the
    paper's ~17,000 used 8 paired subsampling maps and partial connections).
    """
    _check("lenet4", activation, pooling)
    model = Sequential([
        Conv2D(4, 5, padding="same", activation=activation, name="c1"), _pool(pooling, "s2"),
        Conv2D(16, 5, activation=activation, name="c3"), _pool(pooling, "s4"),
        Flatten(name="flatten"), Dense(120, activation=activation, name="f5"),
        Dense(10, activation="softmax", name="predictions"),
    ], input_shape=MNIST_SHAPE, name=name, seed=seed)
    return _finish(model, compile, learning_rate, momentum, "sparse_categorical_crossentropy")


def lenet5(*, activation: str = "relu", pooling: str = "max", learning_rate: float = 0.01,
           momentum: float = 0.9, seed: int | None = 0, compile: bool = True) -> Sequential:
    """LeNet-5: 28x28 padded to 32x32 (``padding="same"``), C1 conv 6@5x5 (28x28), S2 pool
    (14x14), C3 conv 16@5x5 (10x10, every map sees all 6: no connection table), S4 pool
    (5x5), C5 dense 120 (a 5x5 conv on a 5x5 map is a dense layer), F6 dense 84, output
    dense 10 with softmax (the paper: Euclidean RBF units). 61,706 parameters (paper:
    60,000, with the C3 table).

    Example:
        >>> from mao_lab import zoo
        >>> zoo.lenet5().count_params()
        61706
    """
    _check("lenet5", activation, pooling)
    model = Sequential([
        Conv2D(6, 5, padding="same", activation=activation, name="c1"), _pool(pooling, "s2"),
        Conv2D(16, 5, activation=activation, name="c3"), _pool(pooling, "s4"),
        Flatten(name="flatten"), Dense(120, activation=activation, name="c5"),
        Dense(84, activation=activation, name="f6"),
        Dense(10, activation="softmax", name="predictions"),
    ], input_shape=MNIST_SHAPE, name="lenet5", seed=seed)
    return _finish(model, compile, learning_rate, momentum, "sparse_categorical_crossentropy")
