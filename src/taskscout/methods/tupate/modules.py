"""The PEFT modules TuPaTE tunes: BitFit (biases), LoRA (through peft) and prefixes (P-Tuning v2,
implemented here; see the package docstring for why)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from taskscout.errors import TaskscoutError
from taskscout.methods.tupate.config import VARIANTS, TuPaTEConfig


class PrefixEncoder(nn.Module):
    """P-Tuning v2 on a BERT-like encoder: trainable keys and values prepended in every self-attention.

    ``prefix`` has shape ``(layers, 2, heads, length, head_dim)`` (index 1: 0 = keys, 1 = values). The
    wrapped encoder's own weights stay frozen. Token type ids and position ids are kept as without prefix.
    """

    def __init__(self, encoder: nn.Module, length: int = 20, init_std: float = 1.0) -> None:
        super().__init__()
        config = encoder.config
        heads = int(config.num_attention_heads)
        if int(config.hidden_size) % heads:
            raise TaskscoutError("prefix tuning needs hidden_size divisible by num_attention_heads")
        self.encoder = encoder
        self.config = config
        self.length = length
        # transformers renamed ``past_key_values`` to ``cache`` (5.2x; the old name goes in 5.40).
        parameters = inspect.signature(encoder.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        shape = (int(config.num_hidden_layers), 2, heads, length, int(config.hidden_size) // heads)
        self.prefix = nn.Parameter(torch.randn(shape) * init_std)

    def named_prefix(self) -> dict[str, torch.Tensor]:
        """Per-layer views ``layer.<i>.key`` / ``layer.<i>.value`` for :func:`layerwise_embedding`."""
        out = {}
        for index in range(self.prefix.shape[0]):
            out[f"layer.{index}.key"] = self.prefix[index, 0]
            out[f"layer.{index}.value"] = self.prefix[index, 1]
        return out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        from transformers import DynamicCache

        batch, length = input_ids.shape
        cache = DynamicCache(config=self.config)
        for index in range(self.prefix.shape[0]):
            keys = self.prefix[index, 0].unsqueeze(0).expand(batch, -1, -1, -1)
            values = self.prefix[index, 1].unsqueeze(0).expand(batch, -1, -1, -1)
            cache.update(keys, values, index)
        mask = torch.cat([attention_mask.new_ones(batch, self.length), attention_mask], dim=1)
        positions = torch.arange(length, device=input_ids.device).unsqueeze(0).expand(batch, -1)
        return self.encoder(
            input_ids=input_ids,
            attention_mask=mask,
            token_type_ids=token_type_ids,
            position_ids=positions,
            use_cache=False,
            **{self._cache_argument: cache},
            **kwargs,
        )


def attach_peft(
    variant: str, encoder: nn.Module, config: TuPaTEConfig
) -> tuple[nn.Module, Callable[[], dict[str, torch.Tensor]]]:
    """Freeze ``encoder`` and add ``variant``'s trainable parameters (seeded); return (module, PEFT params).

    The returned function gives the live PEFT parameters by name (for snapshots and embeddings).
    """
    for param in encoder.parameters():
        param.requires_grad_(False)
    torch.manual_seed(config.seed)
    if variant == "bitfit":
        biases = {n: p for n, p in encoder.named_parameters() if n.endswith("bias")}
        if not biases:
            raise TaskscoutError("BitFit needs an encoder with bias terms; this one has none")
        for param in biases.values():
            param.requires_grad_(True)
        return encoder, lambda: biases
    if variant == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=list(config.lora_targets),
            lora_dropout=0.0,
            bias="none",
        )
        try:
            encoder = inject_adapter_in_model(lora, encoder)
        except ValueError as exc:
            raise TaskscoutError(f"LoRA cannot be attached to this encoder: {exc}") from None
        params = {n: p for n, p in encoder.named_parameters() if "lora_" in n}
        for param in params.values():
            param.requires_grad_(True)
        return encoder, lambda: params
    if variant == "prefix":
        wrapped = PrefixEncoder(encoder, config.prefix_length, config.prefix_init_std)
        return wrapped, wrapped.named_prefix
    raise TaskscoutError(f"unknown TuPaTE variant {variant!r}; choose one of {', '.join(VARIANTS)}")
