"""A 2-D convolution written with slices over 6x6 images with 2 channels: 3x3 kernels to
3 feature maps, relu, 2x2 max pooling by reshape and max, flattened into a linear head."""
import numpy as np

import bpgen as bp

net = bp.Network("conv")
img = net.input("img", shape=(6, 6, 2))
y = net.input("y", shape=(3,))
K = net.param("K", shape=(3, 3, 2, 3))
kb = net.param("kb", shape=(3,))
V = net.param("V", shape=(12, 3))
conv = net.eq("conv", bp.relu(sum(img[i:i + 4, j:j + 4] @ K[i, j]
                                  for i in range(3) for j in range(3)) + kb))  # (4, 4, 3)
pool = net.eq("pool", bp.max(conv.reshape(2, 2, 2, 2, 3), axis=(1, 3)))           # (2, 2, 3)
net.loss("L", bp.softmax_cross_entropy(pool.reshape(-1) @ V, y))


def convolved(p, d):
    img = d["img"]
    out = sum(img[:, i:i + 4, j:j + 4] @ p["K"][i, j] for i in range(3) for j in range(3))
    return out + p["kb"]


def reference(p, d):
    conv = np.maximum(convolved(p, d), 0.0)
    pool = conv.reshape(-1, 2, 2, 2, 2, 3).max(axis=(2, 4))
    z = pool.reshape(len(conv), -1) @ p["V"]
    m = z.max(axis=1, keepdims=True)
    return np.log(np.exp(z - m).sum(axis=1)) + m[:, 0] - (d["y"] * z).sum(axis=1)


def sample(rng, n):
    return {"img": rng.normal(size=(n, 6, 6, 2)), "y": np.eye(3)[rng.integers(0, 3, n)]}


def valid(p, d):
    """Away from relu's kink and from ties in the pooling windows."""
    pre = convolved(p, d)
    conv = np.maximum(pre, 0.0).reshape(-1, 2, 2, 2, 2, 3)
    windows = np.sort(conv.transpose(0, 1, 3, 5, 2, 4).reshape(len(pre), -1, 4), axis=2)
    return (np.abs(pre).reshape(len(pre), -1).min(axis=1) > 1e-3) & \
        ((windows[:, :, 3] - windows[:, :, 2]).min(axis=1) > 1e-3)
