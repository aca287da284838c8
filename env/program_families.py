"""Model families of the program generator: a recipe (plain data) to a JAX function.

A recipe is a JSON-able dict drawn by :mod:`mallocmuzero.env.generator`: its ``family``
names a builder below, ``mode`` is ``forward`` or ``train``, ``optimizer`` (train only) is
``sgd``, ``momentum`` or ``adam``, and the other keys are the family's sizes. Every builder
returns ``(fn, args)`` with arguments given as shapes only, so compiling a recipe depends
on nothing but the jax/jaxlib version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mallocmuzero.env.suite import _mlp_apply, _mlp_params, _rnn_apply, _rnn_params, _spec

Recipe = Mapping[str, Any]
OPTIMIZERS = ("sgd", "momentum", "adam")


def _optimizer(name: str):
    import optax

    if name == "sgd":
        return optax.sgd(1e-2)
    if name == "momentum":
        return optax.sgd(1e-2, momentum=0.9)
    if name == "adam":
        return optax.adam(1e-3)
    raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")


def _program(
    recipe: Recipe, apply: Callable[..., Any], params: Any, inputs: Sequence[Any], target: Any
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The forward pass, or a train step of a mean-squared loss with the recipe's optimizer."""
    import jax
    import jax.numpy as jnp
    import optax

    if recipe["mode"] == "forward":

        def forward(params, *inputs):
            return apply(params, *inputs)

        return forward, (params, *inputs)

    opt = _optimizer(recipe["optimizer"])

    def loss_fn(params, inputs, target):
        out = apply(params, *inputs)
        return jnp.mean((out.astype(jnp.float32) - target.astype(jnp.float32)) ** 2)

    def train_step(params, opt_state, inputs, target):
        loss, grads = jax.value_and_grad(loss_fn)(params, inputs, target)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = jax.eval_shape(opt.init, params)
    return train_step, (params, opt_state, tuple(inputs), target)


def _flax(recipe: Recipe, model: Any, inputs: Sequence[Any], out_shape: Sequence[int]):
    """A flax module as a program: parameters from its shapes, then :func:`_program`."""
    import jax

    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), *inputs)
    target = _spec(*out_shape, dtype=recipe["dtype"])
    return _program(recipe, model.apply, params, inputs, target)


# --- families -------------------------------------------------------------------------------


def mlp(recipe: Recipe):
    """A ReLU MLP of ``depth`` hidden layers of ``width``."""
    sizes = [recipe["inputs"], *[recipe["width"]] * recipe["depth"], recipe["outputs"]]
    params = _mlp_params(sizes)
    x = _spec(recipe["batch"], sizes[0], dtype=recipe["dtype"])
    return _program(recipe, _mlp_apply, params, [x], _spec(recipe["batch"], sizes[-1]))


def cnn(recipe: Recipe):
    """A ResNet-style CNN: ``stages`` of ``blocks`` residual blocks, widths doubling."""
    import flax.linen as nn

    widths = [recipe["width"] * 2**i for i in range(recipe["stages"])]
    blocks = recipe["blocks"]

    class ResNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(widths[0], (3, 3))(x))
            for i, w in enumerate(widths):
                for j in range(blocks):
                    stride = 2 if i > 0 and j == 0 else 1
                    y = nn.Conv(w, (3, 3), (stride, stride), use_bias=False)(x)
                    y = nn.Conv(w, (3, 3), use_bias=False)(nn.relu(nn.LayerNorm()(y)))
                    if x.shape[-1] != w or stride != 1:
                        x = nn.Conv(w, (1, 1), (stride, stride), use_bias=False)(x)
                    x = nn.relu(x + nn.LayerNorm()(y))
            return nn.Dense(10)(x.mean(axis=(1, 2)))

    x = _spec(recipe["batch"], recipe["image"], recipe["image"], 3, dtype=recipe["dtype"])
    return _flax(recipe, ResNet(), [x], (recipe["batch"], 10))


def _encoder_layer(dim: int, heads: int, mlp_ratio: int, causal: bool):
    import flax.linen as nn
    import jax.numpy as jnp

    class Layer(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.LayerNorm()(x)
            mask = nn.make_causal_mask(jnp.ones(x.shape[:2])) if causal else None
            x = x + nn.MultiHeadDotProductAttention(num_heads=heads)(h, h, mask=mask)
            h = nn.Dense(mlp_ratio * dim)(nn.LayerNorm()(x))
            return x + nn.Dense(dim)(nn.gelu(h))

    return Layer


def transformer(recipe: Recipe):
    """A decoder-only language model: embedding, ``layers`` causal blocks, logits."""
    import flax.linen as nn

    dim, vocab = recipe["dim"], recipe["vocab"]
    layer = _encoder_layer(dim, recipe["heads"], recipe["mlp_ratio"], causal=True)

    class LM(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            x = nn.Embed(vocab, dim)(tokens)
            for _ in range(recipe["layers"]):
                x = layer()(x)
            return nn.Dense(vocab)(nn.LayerNorm()(x))

    tokens = _spec(recipe["batch"], recipe["seq"], dtype="int32")
    return _flax(recipe, LM(), [tokens], (recipe["batch"], recipe["seq"], vocab))


def attention(recipe: Recipe):
    """Queries cross-attending to a memory, then ``layers`` bidirectional encoder blocks."""
    import flax.linen as nn

    dim = recipe["dim"]
    layer = _encoder_layer(dim, recipe["heads"], recipe["mlp_ratio"], causal=False)

    class CrossEncoder(nn.Module):
        @nn.compact
        def __call__(self, queries, memory):
            kv = nn.Dense(dim)(memory)
            x = nn.Dense(dim)(queries)
            x = x + nn.MultiHeadDotProductAttention(num_heads=recipe["heads"])(x, kv)
            for _ in range(recipe["layers"]):
                x = layer()(x)
            return nn.Dense(recipe["outputs"])(x.mean(axis=1))

    b = recipe["batch"]
    queries = _spec(b, recipe["seq"], recipe["features"], dtype=recipe["dtype"])
    memory = _spec(b, recipe["memory"], recipe["features"], dtype=recipe["dtype"])
    return _flax(recipe, CrossEncoder(), [queries, memory], (b, recipe["outputs"]))


def _gated_params(inputs: int, hidden: int, gates: int) -> dict[str, Any]:
    return {"wx": _spec(inputs, gates * hidden), "wh": _spec(hidden, gates * hidden),
            "b": _spec(gates * hidden)}  # fmt: skip


def _gated_apply(cell: str):
    """A GRU or LSTM over time-major inputs with ``lax.scan`` (a while loop in XLA)."""

    def apply(params, xs):
        import jax
        import jax.numpy as jnp

        hidden = params["wh"].shape[0]

        def gru(h, x):
            zx, rx, nx = jnp.split(x @ params["wx"] + params["b"], 3, axis=-1)
            zh, rh, nh = jnp.split(h @ params["wh"], 3, axis=-1)
            z, r = jax.nn.sigmoid(zx + zh), jax.nn.sigmoid(rx + rh)
            h = (1 - z) * jnp.tanh(nx + r * nh) + z * h
            return h, h

        def lstm(carry, x):
            h, c = carry
            i, f, g, o = jnp.split(x @ params["wx"] + h @ params["wh"] + params["b"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        h0 = jnp.zeros((xs.shape[1], hidden), xs.dtype)
        step, carry = (gru, h0) if cell == "gru" else (lstm, (h0, h0))
        return jax.lax.scan(step, carry, xs)[1]

    return apply


def rnn(recipe: Recipe):
    """A recurrent net over ``steps`` time steps: an Elman, GRU or LSTM cell."""
    b, steps, hidden, cell = recipe["batch"], recipe["steps"], recipe["hidden"], recipe["cell"]
    xs = _spec(steps, b, recipe["inputs"], dtype=recipe["dtype"])
    if cell == "elman":
        params, apply = _rnn_params(recipe["inputs"], hidden), _rnn_apply
    else:
        params = _gated_params(recipe["inputs"], hidden, 3 if cell == "gru" else 4)
        apply = _gated_apply(cell)
    if recipe["dtype"] != "float32":
        params = {k: _spec(*v.shape, dtype=recipe["dtype"]) for k, v in params.items()}
    return _program(recipe, apply, params, [xs], _spec(steps, b, hidden))


def moe(recipe: Recipe):
    """Token MLPs routed top-1 over ``experts`` (dense one-hot dispatch), ``layers`` deep."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    dim, experts, hidden = recipe["dim"], recipe["experts"], recipe["hidden"]

    class MoELayer(nn.Module):
        @nn.compact
        def __call__(self, x):
            gates = jax.nn.softmax(nn.Dense(experts)(x), axis=-1)
            route = jax.nn.one_hot(jnp.argmax(gates, axis=-1), experts, dtype=x.dtype)
            w_in = self.param("w_in", nn.initializers.lecun_normal(), (experts, dim, hidden))
            w_out = self.param("w_out", nn.initializers.lecun_normal(), (experts, hidden, dim))
            h = nn.gelu(jnp.einsum("bsd,edh->bseh", x, w_in.astype(x.dtype)))
            y = jnp.einsum("bseh,ehd->bsed", h, w_out.astype(x.dtype))
            return x + jnp.einsum("bsed,bse->bsd", y, route * gates)

    class MoE(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(recipe["layers"]):
                x = MoELayer()(nn.LayerNorm()(x))
            return x

    x = _spec(recipe["batch"], recipe["seq"], dim, dtype=recipe["dtype"])
    return _flax(recipe, MoE(), [x], (recipe["batch"], recipe["seq"], dim))


def mixer(recipe: Recipe):
    """An MLP-Mixer: patch embedding, ``layers`` token- and channel-mixing MLPs."""
    import flax.linen as nn

    dim, patch = recipe["dim"], recipe["patch"]

    class Mixer(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(dim, (patch, patch), (patch, patch))(x)
            x = x.reshape(x.shape[0], -1, dim)
            for _ in range(recipe["layers"]):
                y = nn.LayerNorm()(x).swapaxes(1, 2)
                y = nn.Dense(y.shape[-1])(nn.gelu(nn.Dense(recipe["token_hidden"])(y)))
                x = x + y.swapaxes(1, 2)
                y = nn.Dense(recipe["channel_hidden"])(nn.LayerNorm()(x))
                x = x + nn.Dense(dim)(nn.gelu(y))
            return nn.Dense(10)(nn.LayerNorm()(x).mean(axis=1))

    x = _spec(recipe["batch"], recipe["image"], recipe["image"], 3, dtype=recipe["dtype"])
    return _flax(recipe, Mixer(), [x], (recipe["batch"], 10))


def unet(recipe: Recipe):
    """A U-Net: ``depth`` downsampling stages, then upsampling with skip concatenations."""
    import flax.linen as nn
    import jax.numpy as jnp

    base, depth = recipe["width"], recipe["depth"]

    class UNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            skips = []
            for i in range(depth):
                x = nn.relu(nn.Conv(base * 2**i, (3, 3))(x))
                x = nn.relu(nn.Conv(base * 2**i, (3, 3))(x))
                skips.append(x)
                x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.relu(nn.Conv(base * 2**depth, (3, 3))(x))
            for i in reversed(range(depth)):
                x = nn.ConvTranspose(base * 2**i, (2, 2), (2, 2))(x)
                x = jnp.concatenate([x, skips[i]], axis=-1)
                x = nn.relu(nn.Conv(base * 2**i, (3, 3))(x))
            return nn.Conv(recipe["classes"], (1, 1))(x)

    b, image = recipe["batch"], recipe["image"]
    x = _spec(b, image, image, 3, dtype=recipe["dtype"])
    return _flax(recipe, UNet(), [x], (b, image, image, recipe["classes"]))


BUILDERS: dict[str, Callable[[Recipe], tuple[Callable[..., Any], tuple[Any, ...]]]] = {
    "mlp": mlp,
    "cnn": cnn,
    "transformer": transformer,
    "attention": attention,
    "rnn": rnn,
    "moe": moe,
    "mixer": mixer,
    "unet": unet,
}


def build_recipe(recipe: Recipe) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``(fn, args)`` of a recipe (``recipe["family"]`` names the builder)."""
    family = recipe.get("family")
    if family not in BUILDERS:
        raise ValueError(f"recipe: unknown family {family!r} (known: {', '.join(BUILDERS)})")
    return BUILDERS[family](recipe)
