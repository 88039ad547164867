"""Gradients of a layer's output through whichever backend Keras runs on.

`layer.stateless_call` turns a layer into a pure function of its weights, so
each backend's own autodiff (TensorFlow's tape, `jax.grad`, PyTorch's
autograd) can differentiate it the same way.
"""

import keras
import numpy as np


def gradients(layer, x, projection):
    """d/d(x, trainable weights) of `sum(layer(x) * projection)`.

    Returns:
        A list of NumPy arrays: the gradient with respect to `x`, then one per
        `layer.trainable_variables`, in that order.
    """
    backend = keras.backend.backend()
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(x, weights):
        outputs, _ = layer.stateless_call(weights, non_trainable, x)
        return keras.ops.sum(keras.ops.multiply(outputs, projection))

    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        weights = [tf.identity(w) for w in trainable]
        with tf.GradientTape() as tape:
            tape.watch([x, *weights])
            value = loss(x, weights)
        grads = tape.gradient(value, [x, *weights])
    elif backend == "jax":
        import jax

        grad_x, grad_weights = jax.grad(loss, argnums=(0, 1))(x, trainable)
        grads = [grad_x, *grad_weights]
    elif backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        weights = [w.detach().clone().requires_grad_(True) for w in trainable]
        loss(x, weights).backward()
        grads = [t.grad.detach() for t in (x, *weights)]
    else:
        raise NotImplementedError(f"No autodiff helper for backend {backend!r}.")
    return [np.asarray(keras.ops.convert_to_numpy(g)) for g in grads]
