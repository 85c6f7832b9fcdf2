"""Model outputs → text, below training, evaluation and inference: ``ctc`` (greedy and beam decoding of CTC logits,
:class:`~cllstr.decoding.ctc.DecoderConfig`) and ``heads`` (dispatch by prediction head, attention decoding, the
forward pass under autocast)."""
