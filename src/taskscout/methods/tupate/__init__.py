"""TuPaTE (Zhou, Xu, McAuley, EMNLP 2022): efficiently tuned parameters are task embeddings.

Every task (each source in P1, the target in P2) is tuned from the *same* base encoder and the *same*
seeded initial PEFT parameters with one parameter-efficient method:

- ``bitfit``: only the bias terms of the encoder train (plus the task head);
- ``lora``: rank-``r`` updates ``W + (alpha / r) B A`` of the attention query and value projections
  (r = alpha = 8, as in the paper), via peft's ``LoraConfig`` injected into the bare encoder;
- ``prefix`` (P-Tuning v2): ``m`` = 20 trainable key and value vectors per layer and attention head,
  prepended to every self-attention layer's keys and values.

The task embedding is built from the tuned PEFT parameters (never the head, whose shape depends on the
label set): with ``theta_l`` the tuned parameters of Transformer layer ``l`` flattened and concatenated
in a fixed name order, and ``theta_l^0`` their shared initial values,

    e = 1/L * sum_l (theta_l - theta_l^0)        (dimension = PEFT parameters per layer)

and a source ``s`` scores ``cos(e_target, e_s)``. The ensemble averages the three cosines.

Design decisions (see the tests for the checks):

- **Init subtraction** (``subtract_init=True``). Cosines of *raw* parameters are dominated by what every
  task shares: for BitFit the pretrained biases, for LoRA the random ``A`` matrices (``B`` starts at
  zero, and early in training ``A`` barely moves because its gradient is ``B^T (...)``), for prefixes the
  random initial prefix. All sources then score ~1 and the ranking is noise. The update
  ``theta - theta^0`` is what the task wrote into the parameters. For LoRA the update of ``B`` is ``B``
  itself; the function-space update ``Delta W = (alpha/r) B A`` would be a H x H matrix per module
  (295K per layer for MiniLM), and because ``A ~ A^0`` is shared and near-orthogonal its cosine is
  close to the cosine of the ``B`` parts, which the parameter delta already contains.
- **Same initialisation**: PEFT parameters are created right after ``torch.manual_seed(seed)`` and the
  head after ``torch.manual_seed(seed + 1)``, for sources and targets alike; the data order comes from
  ``numpy.random.default_rng(seed)``. Tuning the same rows twice gives the same embedding.
- **No weight decay on PEFT parameters**: decay pulls every task's parameters towards zero by the same
  ``lr * wd * theta^0`` per step, a shared drift that would inflate every cosine.
- **Constant learning rate** (no decay): the early embedding is then the same snapshot whether or not a
  longer "late" run follows, so early embeddings of sources built with a late budget and of targets
  tuned with the early budget only are comparable.
- **Budgets** (:class:`TuPaTEConfig`): the paper tunes 20 epochs and reports an "early" embedding after
  2 epochs (losing little, ~90% cheaper) and a "late" one at the best validation score. On this 2-core
  CPU machine one MiniLM-L6 step on 32 rows of 128 tokens costs seconds, so the default is the early
  budget only (2 epochs of the source's training sample, at least ``min_steps`` steps); set
  ``late_epochs`` (e.g. 10) to also store late embeddings (validation each epoch on the source's
  held-out rows, or on 20% of the training rows when there are none).
- **Prefixes are implemented here**, not with peft's ``PrefixTuningConfig``: peft 0.21 does run on a bare
  ``BertModel`` (task type FEATURE_EXTRACTION), but it drops ``token_type_ids`` (it warns "Token type
  ids are not supported") which breaks the segment encoding of pair tasks, and as it passes no position
  ids the encoder counts the cached prefix as past tokens and shifts every position id by its length.
  Here the prefix is passed as a ``DynamicCache`` through ``past_key_values`` (transformers 5.x BERT
  self-attention prepends cached keys and values), with the attention mask extended by ones and explicit
  ``position_ids`` from 0. Checked: a masked-out prefix reproduces the plain encoder exactly, and
  results do not depend on padding.
- The paper's per-layer sizes for BERT-base are BitFit 8.3K, LoRA 25.0K, prefix 15.4K. Here a prefix
  layer holds keys *and* values (2 x 20 x H = 30.7K for BERT-base, 15.4K for MiniLM-L6's H = 384);
  MiniLM-L6 gives BitFit 4,224 and LoRA 12,288 per layer.

Tuned embeddings are cached on disk under ``$TASKSCOUT_HOME/tupate`` by (base weights, rows and labels,
variant, protocol), so re-ranking a target, or building the ensemble after the single methods, is free.

The parts: :mod:`.config` (the protocol), :mod:`.maths` (embedding from parameters), :mod:`.modules`
(PEFT modules), :mod:`.training` (tuning), :mod:`.cache` (on-disk cache), :mod:`.methods` (the
selection methods).
"""

from taskscout.methods.tupate.cache import tuned_embeddings
from taskscout.methods.tupate.config import (
    DEFAULT_LEARNING_RATES,
    EMBEDDINGS_FILE,
    STAGES,
    VARIANTS,
    TunedEmbeddings,
    TuPaTEConfig,
)
from taskscout.methods.tupate.maths import layerwise_embedding
from taskscout.methods.tupate.methods import (
    METHODS,
    TuPaTE,
    TuPaTEBitFit,
    TuPaTEEnsemble,
    TuPaTELoRA,
    TuPaTEPrefix,
)
from taskscout.methods.tupate.modules import PrefixEncoder, attach_peft
from taskscout.methods.tupate.training import tune

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "EMBEDDINGS_FILE",
    "METHODS",
    "STAGES",
    "VARIANTS",
    "PrefixEncoder",
    "TuPaTE",
    "TuPaTEBitFit",
    "TuPaTEConfig",
    "TuPaTEEnsemble",
    "TuPaTELoRA",
    "TuPaTEPrefix",
    "TunedEmbeddings",
    "attach_peft",
    "layerwise_embedding",
    "tune",
    "tuned_embeddings",
]
