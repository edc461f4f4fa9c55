"""A test double: a tiny in-process BERT (`build_encoder`, 2 layers, 16 wide) with the Trainer's head, trained in
seconds on synthetic reviews where "wonderful" means positive and "awful" negative.

It has the real model's layer structure (nested `bert_encoder`, `mean_pooling` or the pooler, `head_dropout`,
`logit`), so integrated gradients walk exactly the layers they walk on the pipeline's model, and a small vocabulary
in which "unbelievable" is three word pieces (`un ##believ ##able`). `export_tiny_model` writes a SavedModel with
the pipeline's `serving_default` contract and the `explain` signature, for the model server's tests.
"""

from __future__ import annotations

import os
import random

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
NEUTRAL = [
    "the",
    "a",
    "film",
    "movie",
    "was",
    "is",
    "and",
    "plot",
    "acting",
    "story",
    "it",
    "this",
    "i",
    "saw",
    "with",
    "of",
    "to",
]
PIECES = ["un", "##believ", "##able", "caf", "##e", ",", ".", "!", "'", "t", "don"]
POSITIVE, NEGATIVE = "wonderful", "awful"
VOCAB = SPECIAL + NEUTRAL + PIECES + [POSITIVE, NEGATIVE]
CONFIG = {
    "vocab_size": len(VOCAB),
    "hidden_size": 16,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


def write_vocab(path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    return path


def build_tiny_model(pooling: str = "mean", num_layers: int = 2, seed: int = 3):  # type: ignore[no-untyped-def]
    """The Trainer's network (`pipeline_modules.trainer.model.build_model`'s head) on a tiny `build_encoder`."""
    import tensorflow as tf

    from pipeline_modules import features
    from pipeline_modules.encoder.layers import build_encoder
    from pipeline_modules.trainer.model import MaskedMeanPooling

    tf.keras.utils.set_random_seed(seed)
    inputs = {key: tf.keras.Input(shape=(None,), dtype=tf.int64, name=key) for key in features.ENCODER_INPUT_KEYS}
    encoded = build_encoder(CONFIG, num_layers)({key: tf.cast(t, tf.int32) for key, t in inputs.items()})
    if pooling == "cls":
        pooled = encoded["pooled_output"]
    else:
        pooled = MaskedMeanPooling(name="mean_pooling")(encoded["sequence_output"], inputs[features.INPUT_MASK])
    hidden = tf.keras.layers.Dropout(0.1, name="head_dropout")(pooled)
    logit = tf.keras.layers.Dense(1, name="logit")(hidden)
    return tf.keras.Model(inputs=inputs, outputs=logit, name="bert_sentiment")


def synthetic_reviews(count: int, seed: int = 0) -> tuple[list[str], list[float]]:
    """Neutral words around one "wonderful" (label 1), one "awful" (label 0) or neither (label 0.5).

    The neutral third keeps the all-[PAD] baseline near 0.5, so both words move the score away from it.
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(count):
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(3, 10))]
        kind = i % 3
        if kind < 2:
            words.insert(rng.randint(0, len(words)), POSITIVE if kind else NEGATIVE)
        texts.append(" ".join(words))
        labels.append(float(kind) if kind < 2 else 0.5)
    return texts, labels


def train_tiny_model(model, word_pieces, steps: int = 60, seed: int = 0) -> float:  # type: ignore[no-untyped-def]
    """Adam steps on synthetic reviews, tokenized as the explanation tokenizes them; returns the last loss."""
    import tensorflow as tf

    texts, labels = synthetic_reviews(240, seed)
    inputs = word_pieces(tf.constant(texts)).encoder_inputs
    targets = tf.constant(labels, tf.float32)
    optimizer = tf.keras.optimizers.Adam(1e-2)

    @tf.function  # type: ignore[untyped-decorator]
    def step(batch: dict[str, tf.Tensor], target: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logit = model(batch, training=True)[:, 0]
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(target, logit))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            (g, v) for g, v in zip(grads, model.trainable_variables, strict=True) if g is not None
        )
        return loss

    loss = tf.constant(0.0)
    for i in range(steps):
        start = (i * 48) % 240
        loss = step({k: v[start : start + 48] for k, v in inputs.items()}, targets[start : start + 48])
    return float(loss)


def export_tiny_model(model, tokenization, export_dir: str, steps: int = 16) -> str:  # type: ignore[no-untyped-def]
    """`serving_default` (text -> probability, label) and `explain`, with the pipeline's serving hints."""
    import tensorflow as tf

    from model_server.hints import write_serving_hints
    from pipeline_modules import features
    from pipeline_modules.trainer.explain import EXPLAIN_HINTS, EXPLAIN_SIGNATURE, WordPieces, explain_signatures
    from pipeline_modules.trainer.export import SERVING_HINTS

    signatures = explain_signatures(model, tokenization, steps)
    word_pieces = WordPieces(tokenization)
    model.serving_word_pieces = word_pieces

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        logit = model(word_pieces(text).encoder_inputs, training=False)[:, 0]
        probability = tf.sigmoid(logit)
        label = tf.where(probability >= 0.5, features.POSITIVE, features.NEGATIVE)
        return {features.PROBABILITY_OUTPUT: probability, features.LABEL_OUTPUT: label}

    fn = tf.function(serve, input_signature=[tf.TensorSpec([None], tf.string, name=features.TEXT_INPUT)])
    signatures[features.SERVING_SIGNATURE] = fn.get_concrete_function()
    model.save(export_dir, save_format="tf", signatures=signatures, include_optimizer=False)
    hints = {features.SERVING_SIGNATURE: SERVING_HINTS[features.SERVING_SIGNATURE]}
    if EXPLAIN_SIGNATURE in signatures:
        hints[EXPLAIN_SIGNATURE] = EXPLAIN_HINTS
    write_serving_hints(export_dir, hints)
    return export_dir


def tokenization_for(directory: str, max_seq_length: int = 32, head_fraction: float = 0.25):  # type: ignore[no-untyped-def]
    from pipeline_modules.trainer.explain import Tokenization

    vocab = write_vocab(os.path.join(directory, "vocab.txt"))
    return Tokenization(
        vocab_file=vocab, do_lower_case=True, max_seq_length=max_seq_length, head_fraction=head_fraction
    )
