"""The built-in workload suite: real JAX/flax programs compiled by XLA on the CPU backend.

``mallocmuzero workloads build`` compiles every program below and writes one workload file
each. Programs are compiled from shapes alone (``jax.ShapeDtypeStruct``), so the result
depends only on the jax/jaxlib version. Each program has a split: ``train`` programs may
be used for learning, ``heldout`` ones never are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mallocmuzero.env.workload import Workload, save_workload


@dataclasses.dataclass(frozen=True)
class Program:
    """One built-in program: a name, a family, its split and a builder of (fn, args)."""

    name: str
    family: str
    split: str
    build: Callable[[], tuple[Callable[..., Any], Sequence[Any]]]


def _spec(*shape: int, dtype: str = "float32") -> Any:
    import jax
    import jax.numpy as jnp

    return jax.ShapeDtypeStruct(shape, jnp.dtype(dtype))


def _tree_spec(tree: Any) -> Any:
    import jax

    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def _sgd_step(loss_fn: Callable[..., Any], lr: float = 0.01) -> Callable[..., Any]:
    import jax

    def train_step(params, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        new = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        return new, loss

    return train_step


def _adam_step(loss_fn: Callable[..., Any]) -> Callable[..., Any]:
    import jax
    import optax

    opt = optax.adam(1e-3)

    def train_step(params, opt_state, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return train_step, opt


# --- MLP ------------------------------------------------------------------------------------


def _mlp_params(sizes: Sequence[int]) -> dict[str, Any]:
    return {
        f"l{i}": {"w": _spec(a, b), "b": _spec(b)} for i, (a, b) in enumerate(zip(sizes, sizes[1:]))
    }


def _mlp_apply(params, x):
    import jax.numpy as jnp

    n = len(params)
    for i in range(n):
        x = x @ params[f"l{i}"]["w"] + params[f"l{i}"]["b"]
        if i < n - 1:
            x = jnp.maximum(x, 0.0)
    return x


def _mlp_loss(params, x, y):
    import jax.numpy as jnp

    return jnp.mean((_mlp_apply(params, x) - y) ** 2)


def mlp_forward(batch: int = 64, sizes: Sequence[int] = (512, 1024, 1024, 10)):
    """A 3-layer ReLU MLP forward pass."""

    def mlp_forward(params, x):
        return _mlp_apply(params, x)

    return mlp_forward, (_mlp_params(sizes), _spec(batch, sizes[0]))


def mlp_train(batch: int = 128, sizes: Sequence[int] = (784, 1024, 1024, 512, 10)):
    """An MLP train step with plain SGD."""
    step = _sgd_step(_mlp_loss)
    return step, (_mlp_params(sizes), _spec(batch, sizes[0]), _spec(batch, sizes[-1]))


def mlp_adam_train(batch: int = 256, sizes: Sequence[int] = (512, 2048, 2048, 2048, 512, 10)):
    """A deeper MLP train step with Adam (optimizer state adds many buffers)."""
    import jax

    step, opt = _adam_step(_mlp_loss)
    params = _mlp_params(sizes)
    opt_state = jax.eval_shape(opt.init, params)
    return step, (params, opt_state, _spec(batch, sizes[0]), _spec(batch, sizes[-1]))


# --- ResNet-style CNN -----------------------------------------------------------------------


def _resnet(widths: Sequence[int], num_classes: int = 10):
    import flax.linen as nn

    class Block(nn.Module):
        features: int
        stride: int

        @nn.compact
        def __call__(self, x):
            y = nn.Conv(self.features, (3, 3), (self.stride, self.stride), use_bias=False)(x)
            y = nn.relu(nn.LayerNorm()(y))
            y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
            y = nn.LayerNorm()(y)
            if x.shape[-1] != self.features or self.stride != 1:
                x = nn.Conv(self.features, (1, 1), (self.stride, self.stride), use_bias=False)(x)
            return nn.relu(x + y)

    class ResNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(widths[0], (3, 3))(x))
            for i, w in enumerate(widths):
                x = Block(w, 1 if i == 0 else 2)(x)
                x = Block(w, 1)(x)
            x = x.mean(axis=(1, 2))
            return nn.Dense(num_classes)(x)

    return ResNet()


def _resnet_setup(batch: int, image: int, widths: Sequence[int]):
    import jax

    model = _resnet(widths)
    x = _spec(batch, image, image, 3)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    return model, params, x


def cnn_forward(batch: int = 16, image: int = 32, widths: Sequence[int] = (32, 64, 128, 256)):
    """A ResNet-18-style CNN forward pass (8 residual blocks)."""
    model, params, x = _resnet_setup(batch, image, widths)

    def cnn_forward(params, x):
        return model.apply(params, x)

    return cnn_forward, (params, x)


def cnn_train(batch: int = 16, image: int = 32, widths: Sequence[int] = (32, 64, 128, 256)):
    """A ResNet-18-style CNN train step with SGD on a cross-entropy loss."""
    import jax.numpy as jnp
    import optax

    model, params, x = _resnet_setup(batch, image, widths)

    def loss(params, x, labels):
        logits = model.apply(params, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))

    return _sgd_step(loss), (params, x, _spec(batch, dtype="int32"))


# --- Transformer ----------------------------------------------------------------------------


def _transformer(layers: int, dim: int, heads: int, vocab: int | None):
    import flax.linen as nn
    import jax.numpy as jnp

    class Layer(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.LayerNorm()(x)
            mask = nn.make_causal_mask(jnp.ones(x.shape[:2]))
            x = x + nn.MultiHeadDotProductAttention(num_heads=heads)(h, h, mask=mask)
            h = nn.LayerNorm()(x)
            h = nn.Dense(4 * dim)(h)
            return x + nn.Dense(dim)(nn.gelu(h))

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            if vocab is not None:
                x = nn.Embed(vocab, dim)(x)
            for _ in range(layers):
                x = Layer()(x)
            x = nn.LayerNorm()(x)
            return nn.Dense(vocab)(x) if vocab is not None else x

    return Model()


def transformer_block(batch: int = 8, seq: int = 128, dim: int = 256, heads: int = 4):
    """One pre-norm transformer block forward (attention + MLP)."""
    import jax

    model = _transformer(1, dim, heads, None)
    x = _spec(batch, seq, dim)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)

    def transformer_block(params, x):
        return model.apply(params, x)

    return transformer_block, (params, x)


def lm_train(layers: int = 4, batch: int = 8, seq: int = 128, dim: int = 256, vocab: int = 2048):
    """A small decoder-only language-model train step (next-token cross-entropy, SGD)."""
    import jax
    import jax.numpy as jnp
    import optax

    model = _transformer(layers, dim, 4, vocab)
    tokens = _spec(batch, seq, dtype="int32")
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), tokens)

    def loss(params, tokens):
        logits = model.apply(params, tokens[:, :-1])
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]))

    return _sgd_step(loss), (params, tokens)


# --- RNN with lax.scan ----------------------------------------------------------------------


def _rnn_params(inp: int, hidden: int) -> dict[str, Any]:
    return {"wx": _spec(inp, hidden), "wh": _spec(hidden, hidden), "b": _spec(hidden)}


def _rnn_apply(params, xs):
    import jax
    import jax.numpy as jnp

    def cell(h, x):
        h = jnp.tanh(x @ params["wx"] + h @ params["wh"] + params["b"])
        return h, h

    h0 = jnp.zeros((xs.shape[1], params["wh"].shape[0]), xs.dtype)
    _, hs = jax.lax.scan(cell, h0, xs)
    return hs


def rnn_scan(steps: int = 32, batch: int = 32, inp: int = 128, hidden: int = 256):
    """An Elman RNN over a sequence with ``lax.scan`` (a while loop with a trip count)."""

    def rnn_scan(params, xs):
        return _rnn_apply(params, xs)

    return rnn_scan, (_rnn_params(inp, hidden), _spec(steps, batch, inp))


def rnn_scan_train(steps: int = 32, batch: int = 32, inp: int = 128, hidden: int = 256):
    """Train step of the scan RNN (backpropagation through time is a second loop)."""
    import jax.numpy as jnp

    def loss(params, xs, ys):
        return jnp.mean((_rnn_apply(params, xs) - ys) ** 2)

    args = (_rnn_params(inp, hidden), _spec(steps, batch, inp), _spec(steps, batch, hidden))
    return _sgd_step(loss), args


# --- Strassen -------------------------------------------------------------------------------


def _strassen(a, b, levels: int):
    if levels == 0:
        return a @ b
    import jax.numpy as jnp

    n = a.shape[0] // 2
    a11, a12, a21, a22 = a[:n, :n], a[:n, n:], a[n:, :n], a[n:, n:]
    b11, b12, b21, b22 = b[:n, :n], b[:n, n:], b[n:, :n], b[n:, n:]
    m1 = _strassen(a11 + a22, b11 + b22, levels - 1)
    m2 = _strassen(a21 + a22, b11, levels - 1)
    m3 = _strassen(a11, b12 - b22, levels - 1)
    m4 = _strassen(a22, b21 - b11, levels - 1)
    m5 = _strassen(a11 + a12, b22, levels - 1)
    m6 = _strassen(a21 - a11, b11 + b12, levels - 1)
    m7 = _strassen(a12 - a22, b21 + b22, levels - 1)
    top = jnp.concatenate([m1 + m4 - m5 + m7, m3 + m5], axis=1)
    bottom = jnp.concatenate([m2 + m4, m1 - m2 + m3 + m6], axis=1)
    return jnp.concatenate([top, bottom], axis=0)


def strassen(n: int = 1024, levels: int = 2):
    """Two-level Strassen block matrix multiplication (49 block products)."""

    def strassen(a, b):
        return _strassen(a, b, levels)

    return strassen, (_spec(n, n), _spec(n, n))


PROGRAMS: tuple[Program, ...] = (
    Program("mlp_forward", "mlp", "train", mlp_forward),
    Program("mlp_train", "mlp", "train", mlp_train),
    Program("mlp_adam_train", "mlp", "heldout", mlp_adam_train),
    Program("cnn_forward", "cnn", "train", cnn_forward),
    Program("cnn_train", "cnn", "heldout", cnn_train),
    Program("transformer_block", "transformer", "train", transformer_block),
    Program("lm_train", "transformer", "heldout", lm_train),
    Program("lm_train_2layer", "transformer", "train", lambda: lm_train(layers=2, vocab=1024)),
    Program("rnn_scan", "rnn", "train", rnn_scan),
    Program("rnn_scan_train", "rnn", "heldout", rnn_scan_train),
    Program("strassen", "strassen", "heldout", strassen),
    Program("strassen_512", "strassen", "train", lambda: strassen(n=512)),
)


def split_of(name: str, default: str = "train") -> str:
    """The split of a built-in or generated program's name (``default`` for any other)."""
    from mallocmuzero.env.generator import generated_split

    builtin = next((p.split for p in PROGRAMS if p.name == name), None)
    return builtin or generated_split(name) or default


def program(name: str) -> Program:
    """Look a built-in program up by name."""
    for p in PROGRAMS:
        if p.name == name:
            return p
    raise KeyError(name)


def build_program(prog: Program, keep_compiled: list[Any] | None = None) -> Workload:
    """Compile one built-in program and import it as a workload."""
    from mallocmuzero.env.importers.compile import import_jax_function

    fn, args = prog.build()
    return import_jax_function(fn, args, prog.name, keep_compiled=keep_compiled)


def build_suite(
    out_dir: str | Path, names: Sequence[str] | None = None, progress: bool = True
) -> list[Path]:
    """Build the suite (or the named programs) into ``out_dir/<name>.json``."""
    from tqdm import tqdm

    selected = [program(n) for n in names] if names else list(PROGRAMS)
    out = Path(out_dir)
    paths = []
    bar = tqdm(selected, desc="compiling workloads", unit="program", disable=not progress)
    for prog in bar:
        bar.set_postfix_str(prog.name)
        path = out / f"{prog.name}.json"
        save_workload(build_program(prog), path)
        paths.append(path)
    return paths
