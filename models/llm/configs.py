"""The built-in generative models: Llama-architecture configurations by name, with the facts derived from them.

Standard library only: the planner imports it (head_dim and batch constraints are refused at plan time) as well as
the torch environment, where models/llm/checkpoint.py builds LlamaForCausalLM(LlamaConfig(**llama_config(name))).

Sizes follow what every runtime's kernels and quantizers are designed for (FINDINGS): head_dim 64, hidden and
intermediate sizes multiples of 256 (K-quant super-blocks, int4 group sizes 32/128), vocabulary 32,000.
"""
from __future__ import annotations

from typing import Any

# Fields every built-in model shares, as LlamaConfig names them: token ids 0-2 are pad, bos and eos
# (models/llm/prompts.py draws prompt ids above them); RoPE with its default parameters; no biases.
_COMMON: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "tie_word_embeddings": True,
    "attention_bias": False,
    "mlp_bias": False,
    "rope_theta": 10000.0,
}


def _llama(layers: int, hidden: int, heads: int, kv_heads: int, intermediate: int) -> dict[str, Any]:
    return {**_COMMON, "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "head_dim": hidden // heads, "intermediate_size": intermediate}


# name -> (description, LlamaConfig fields)
_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-tiny": ("Llama-architecture test model: 2 layers, hidden 256, 4 heads (head_dim 64), 2 KV heads, "
                   "intermediate 768, vocabulary 32000, tied embeddings", _llama(2, 256, 4, 2, 768)),
    "llama-175m": ("Llama-architecture ~175M: 24 layers, hidden 768, 12 heads (head_dim 64), 4 KV heads, "
                   "intermediate 2048, vocabulary 32000, tied embeddings", _llama(24, 768, 12, 4, 2048)),
    "llama-500m": ("Llama-architecture ~0.5B: 28 layers, hidden 1280, 20 heads (head_dim 64), 4 KV heads, "
                   "intermediate 3328, vocabulary 32000, tied embeddings", _llama(28, 1280, 20, 4, 3328)),
}

# The facts derived from the fields, added beside them in GENERATIVE_MODELS (not LlamaConfig fields).
DERIVED = ("parameters",)


def head_dim(config: dict[str, Any]) -> int:
    """The attention head size: the config's own head_dim, or hidden_size / num_attention_heads (LlamaConfig's)."""
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def parameter_count(config: dict[str, Any]) -> int:
    """Parameters of a LlamaForCausalLM with this config (tied embeddings counted once)."""
    hidden, vocab, inter = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    d = head_dim(config)
    attention = hidden * heads * d * 2 + hidden * kv_heads * d * 2  # q and o; k and v
    if config.get("attention_bias"):
        attention += heads * d + 2 * kv_heads * d + hidden
    mlp = 3 * hidden * inter + (2 * inter + hidden if config.get("mlp_bias") else 0)
    layer = attention + mlp + 2 * hidden  # two RMSNorm weights
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    return embeddings + config["num_hidden_layers"] * layer + hidden  # + the final norm


def derived_facts(config: dict[str, Any]) -> dict[str, Any]:
    """What the planner and the report read of a config (a built-in one or a user's config.json)."""
    return {"head_dim": head_dim(config), "parameters": parameter_count(config)}


# name -> LlamaConfig fields + the derived facts (head_dim, also a field; parameters).
GENERATIVE_MODELS: dict[str, dict[str, Any]] = {
    name: {**fields, **derived_facts(fields)} for name, (_, fields) in _MODELS.items()}
DESCRIPTIONS: dict[str, str] = {name: description for name, (description, _) in _MODELS.items()}


def llama_config(name: str) -> dict[str, Any]:
    """The LlamaConfig keyword arguments of the built-in model `name` (a fresh copy); KeyError naming the valid
    ones."""
    if name not in _MODELS:
        raise KeyError(f"unknown generative model {name!r}; valid: {', '.join(_MODELS)}")
    return {key: (list(value) if isinstance(value, list) else value)
            for key, value in GENERATIVE_MODELS[name].items() if key not in DERIVED}
