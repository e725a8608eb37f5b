"""A small convolutional network for 8x8 handwritten digits: 3x3 convolution to 16
feature maps (written with slices: one matmul per kernel offset), relu, 2x2 max pooling
(a reshape and a max), and a linear classifier on the 3x3x16 pooled maps.

    conv[r, c, :] = relu(sum_{i,j} img[r+i, c+j, :] @ K[i, j] + kb)      (6, 6, 16)
    pool[r, c, :] = max of conv over the 2x2 window at (2r, 2c)          (3, 3, 16)
    L = cross-entropy(softmax(flatten(pool) @ V + bv), label)

Compile with `bpgen compile examples/cnn_digits.py --target all` and train with
`python examples/scripts/train_digits.py --model cnn`.
"""

import bpgen as bp

F = 16  # feature maps

net = bp.Network("cnn_digits")
img = net.input("img", shape=(8, 8, 1))   # one image, height x width x channels
label = net.input("label", dtype=int)     # its class, 0..9
K = net.param("K", shape=(3, 3, 1, F))    # kernel offset (i, j), channel in, channel out
kb = net.param("kb", shape=(F,))
V = net.param("V", shape=(3 * 3 * F, 10))
bv = net.param("bv", shape=(10,))
conv = net.eq("conv", bp.relu(sum(img[i:i + 6, j:j + 6] @ K[i, j]
                                  for i in range(3) for j in range(3)) + kb))
pool = net.eq("pool", bp.max(conv.reshape(3, 2, 3, 2, F), axis=(1, 3)))
logits = net.eq("logits", pool.reshape(-1) @ V + bv)
net.loss("L", bp.softmax_cross_entropy(logits, label))
