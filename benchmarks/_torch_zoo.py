"""PyTorch twins of mao_lab zoo models for the training benchmarks: same layers, same
initial weights (copied), same loss and optimizer, trained on the same arrays."""

from __future__ import annotations

import numpy as np


def torch_twin(model):
    """(nn.Sequential, loss name) computing what the mao_lab Sequential ``model`` computes.

    A final softmax is left out when the loss is cross-entropy (PyTorch's takes logits).
    """
    import torch
    from torch import nn

    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    loss = model.loss.name if model.loss is not None else "sparse_categorical_crossentropy"
    mods: list = []
    shape = model.input_shape
    for i, layer in enumerate(model.layers):
        kind, cfg = type(layer).__name__, layer.get_config()
        last = i == len(model.layers) - 1
        if kind == "Conv2D":
            t, b, le, r = layer._pad
            if t != b or le != r:
                raise ValueError(f"{layer.name}: asymmetric padding has no nn.Conv2d twin")
            conv = nn.Conv2d(shape[0], cfg["filters"], tuple(cfg["kernel_size"]),
                             stride=tuple(cfg["strides"]), padding=(t, le),
                             bias=cfg["use_bias"])
            w = layer.be.to_host(layer.params["kernel"])
            conv.weight.data = torch.from_numpy(np.array(w, dtype=np.float32))
            if cfg["use_bias"]:
                conv.bias.data = torch.from_numpy(np.array(layer.be.to_host(
                    layer.params["bias"]), dtype=np.float32))
            mods.append(conv)
        elif kind == "Dense":
            lin = nn.Linear(shape[-1], cfg["units"], bias=cfg["use_bias"])
            w = np.array(layer.be.to_host(layer.params["kernel"]), dtype=np.float32)
            lin.weight.data = torch.from_numpy(np.ascontiguousarray(w.T))
            if cfg["use_bias"]:
                lin.bias.data = torch.from_numpy(np.array(layer.be.to_host(
                    layer.params["bias"]), dtype=np.float32))
            mods.append(lin)
        elif kind == "MaxPool2D":
            mods.append(nn.MaxPool2d(tuple(cfg["pool_size"]), tuple(cfg["strides"]
                                                                   or cfg["pool_size"])))
        elif kind == "AvgPool2D":
            mods.append(nn.AvgPool2d(tuple(cfg["pool_size"]), tuple(cfg["strides"]
                                                                   or cfg["pool_size"])))
        elif kind == "Flatten":
            mods.append(nn.Flatten())
        else:
            raise ValueError(f"no PyTorch twin for layer {layer.name} ({kind})")
        act = cfg.get("activation")
        if act in acts:
            mods.append(acts[act]())
        elif act == "softmax" and not (last and "crossentropy" in loss):
            mods.append(nn.Softmax(dim=1))
        shape = layer.output_shape
    return nn.Sequential(*mods), loss


class TorchTrainer:
    """Minibatch SGD of a torch twin on numpy arrays, shuffled each epoch like ``fit``."""

    def __init__(self, model, x: np.ndarray, y: np.ndarray, learning_rate: float,
                 momentum: float, seed: int = 0) -> None:
        import torch

        self.torch = torch
        self.net, loss = torch_twin(model)
        self.x = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
        if loss == "mse":
            k = model.layers[-1].output_shape[-1]
            self.y = torch.from_numpy(np.eye(k, dtype=np.float32)[y])
            self.lossf = torch.nn.MSELoss()
        else:
            self.y = torch.from_numpy(np.array(y, dtype=np.int64, copy=True))
            self.lossf = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=learning_rate, momentum=momentum)
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self, batch_size: int = 64) -> None:
        n = len(self.x)
        perm = self.torch.randperm(n, generator=self.gen)
        self.net.train()
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            self.opt.zero_grad()
            self.lossf(self.net(self.x[idx]), self.y[idx]).backward()
            self.opt.step()

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        self.net.eval()
        with self.torch.no_grad():
            out = self.net(self.torch.from_numpy(np.array(x, dtype=np.float32, copy=True)))
        return float((out.argmax(1).numpy() == np.asarray(y)).mean())
