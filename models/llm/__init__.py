"""Generative decoder models (issue 24): Llama-architecture configurations with seeded weights, their prompts, the
Hugging Face checkpoint every generative runtime is converted from, and generation fidelity. docs/generative.md."""
