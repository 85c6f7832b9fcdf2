"""1-D attention decoder (stage "Pred" = Attn of the four-stage framework; Bahdanau-style, as in RARE / DTRB).

At step ``t`` the decoder scores every encoder column ``H_j`` against its previous state, ``e_j = w^T tanh(W_i H_j +
W_h s_{t-1} + b)``, pools ``context = sum_j softmax(e)_j H_j``, and updates its recurrent cell (LSTM by default, or
GRU) on ``[context, embed(y_{t-1})]``; the classifier (owned by the model, named ``head`` so that cascade learning
remaps it by token) maps the state to class scores.

Class 0 of the classifier is the end-of-sequence token (it is the CTC blank's slot in the shared class table). The
start token fed at step 0 is ``sos_id``: by default an extra input class ``num_classes`` that is never predicted;
imported reference models set it to their ``[GO]``/``[SOS]`` class. ``embed_dim=0`` feeds one-hot vectors instead of
learned embeddings (deep-text-recognition-benchmark's decoder).

Training feeds the ground truth (teacher forcing, ``inputs = [sos, y_1, ..., y_L]``); inference feeds the decoder's
own greedy predictions for ``max_length + 1`` steps (25 characters and the end token). Both run the same step
function, so feeding inference's predictions as teacher inputs reproduces inference's scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AttentionDecoder"]


class AttentionDecoder(nn.Module):
    """Attention decoder over encoder features ``(B, T, input_size)``.

    Args:
        input_size: Encoder feature width.
        hidden_size: Decoder state width (the classifier's input).
        num_classes: Output classes (class 0 = end of sequence).
        embed_dim: Width of the learned input-token embedding; 0 for one-hot inputs.
        sos_id: Input id of the start token (default: ``num_classes``, an input-only class).
        max_length: Longest label; inference runs ``max_length + 1`` steps.
        cell: ``"lstm"`` (the reference) or ``"gru"``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, embed_dim: int = 256,
                 sos_id: int | None = None, max_length: int = 25, cell: str = "lstm") -> None:
        super().__init__()
        self.sos_id = num_classes if sos_id is None else int(sos_id)
        if not 0 < self.sos_id <= num_classes:
            raise ValueError(f"sos_id must be in 1..{num_classes}, got {self.sos_id}")
        self.num_inputs = max(num_classes, self.sos_id + 1)
        self.hidden_size = hidden_size
        self.max_length = max_length
        self.embed = nn.Embedding(self.num_inputs, embed_dim) if embed_dim > 0 else None
        in_width = embed_dim if embed_dim > 0 else self.num_inputs
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        cells = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}
        if cell not in cells:
            raise ValueError(f"cell must be one of {', '.join(cells)}, got {cell!r}")
        self.cell_type = cell
        self.rnn = cells[cell](input_size + in_width, hidden_size)

    def _tokens(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.embed is not None:
            return self.embed(ids)
        return F.one_hot(ids, self.num_inputs).to(dtype)

    def _step(self, state: tuple[torch.Tensor, ...], feats: torch.Tensor, proj: torch.Tensor,
              ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = state[0]
        e = self.score(torch.tanh(proj + self.h2h(h).unsqueeze(1)))  # (B, T, 1)
        alpha = torch.softmax(e, dim=1)
        context = torch.bmm(alpha.transpose(1, 2), feats).squeeze(1)  # (B, F)
        x = torch.cat([context, self._tokens(ids, context.dtype)], 1)
        if self.cell_type == "lstm":
            return self.rnn(x, state)
        return (self.rnn(x, h),)

    def forward(self, feats: torch.Tensor, head: nn.Module, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Decode.

        Args:
            feats: Encoder features ``(B, T, input_size)``.
            head: Classifier ``hidden_size -> num_classes``.
            inputs: Teacher-forcing input ids ``(B, L)`` starting with ``sos_id``; None for greedy decoding.

        Returns:
            Logits ``(B, L, num_classes)`` (teacher forcing) or ``(B, max_length + 1, num_classes)`` (greedy).
        """
        b = feats.shape[0]
        zeros = feats.new_zeros(b, self.hidden_size)
        state: tuple[torch.Tensor, ...] = (zeros, zeros) if self.cell_type == "lstm" else (zeros,)
        proj = self.i2h(feats)
        if inputs is not None:
            hiddens = []
            for t in range(inputs.shape[1]):
                state = self._step(state, feats, proj, inputs[:, t])
                hiddens.append(state[0])
            return head(torch.stack(hiddens, 1))
        ids = torch.full((b,), self.sos_id, dtype=torch.long, device=feats.device)
        steps = []
        for _ in range(self.max_length + 1):
            state = self._step(state, feats, proj, ids)
            logits = head(state[0])
            steps.append(logits)
            ids = logits.argmax(-1)
        return torch.stack(steps, 1)
