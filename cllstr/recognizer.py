"""Inference API: ``Recognizer.from_checkpoint(path).predict(images)`` → text (logical order) + confidence.

Images are prepared exactly as in training (decode, RGB or grey, fixed or keep-ratio resize to the checkpoint's
size, bicubic, ``[-1, 1]``), run in batches under the device's autocast precision, and decoded greedily
(``cllstr.ops.ctc_greedy_decode``) or by prefix beam search with an optional lexicon (``cllstr.ops.ctc_beam_search``,
``decoder="beam"``); right-to-left predictions are returned in logical (reading) order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cllstr.checkpoint import load_model
from cllstr.data.loading.decode import decode_image, prepare_image, resize_fixed, resize_keep_ratio, to_batch_tensor
from cllstr.decoding.ctc import DecoderConfig, Hypothesis, beam_decode_logits
from cllstr.decoding.heads import check_decoder, decode_head, forward_logits
from cllstr.device import autocast, resolve_amp_dtype, resolve_device
from cllstr.models import prediction_kind
from cllstr.scripts import SCRIPT_ORDER, guess_script
from cllstr.text.charset import Charset
from cllstr.text.lexicon import Lexicon, load_lexicon

__all__ = ["Prediction", "Recognizer"]

ImageInput = str | Path | Image.Image | bytes


@dataclass(frozen=True)
class Prediction:
    """One recognised word: ``text`` in logical order and ``confidence`` in [0, 1].

    With the beam decoder, ``confidence`` is the probability of the labelling (summed over alignments) and
    ``alternatives`` holds the ``top_k`` hypotheses, best first (the first is ``text``).
    """

    text: str
    confidence: float
    alternatives: tuple[Hypothesis, ...] = ()
    # identified script: a script head's answer and its probability (``grouped`` models), else the script of the
    # recognised letters (``guess_script``; no probability); None when the text has no letter of a known script
    script: str | None = None
    script_prob: float | None = None


def _script(text: str, script: str | None, prob: float | None) -> tuple[str | None, float | None]:
    """The script head's answer, or for a model without one the script of the recognised letters (no probability)."""
    return (script, prob) if script is not None else (guess_script(text), None)


class Recognizer:
    """A trained model, its charset and its input format.

    Args:
        model: Images ``(B, C, H, W)`` to logits ``(B, T, charset.num_classes)``.
        charset: The model's charset.
        img_h: Input height.
        img_w: Input width.
        rgb: Three input channels, else one.
        keep_ratio: Keep-ratio resize with padding instead of the fixed resize.
        device: ``auto``, ``cpu``, ``cuda``...
        precision: ``auto``, ``bf16``, ``fp16`` or ``fp32``.
        batch_size: Images per forward pass.
        decoder: ``"greedy"``, ``"beam"`` or a :class:`~cllstr.decoding.ctc.DecoderConfig` (then the next four
            arguments are ignored).
        beam_width: Beams of the beam decoder.
        lexicon: A :class:`~cllstr.text.lexicon.Lexicon`, a word-list file or ``wordfreq:LANGS[:N]`` (beam only).
        top_k: Hypotheses kept in :attr:`Prediction.alternatives` (beam only).
        oov_penalty: Log-probability a non-word pays with a lexicon.
    """

    def __init__(self, model: torch.nn.Module, charset: Charset, img_h: int = 32, img_w: int = 100, rgb: bool = True,
                 keep_ratio: bool = False, device: str | torch.device = "auto", precision: str = "auto",
                 batch_size: int = 256, decoder: str | DecoderConfig = "greedy", beam_width: int = 10,
                 lexicon: Lexicon | str | Path | None = None, top_k: int = 1, oov_penalty: float = -10.0) -> None:
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.charset = charset
        self.img_h, self.img_w, self.rgb, self.keep_ratio = img_h, img_w, rgb, keep_ratio
        self.amp_dtype = resolve_amp_dtype(precision, self.device)
        self.batch_size = batch_size
        if isinstance(decoder, DecoderConfig):
            self.decoder = decoder
        else:
            if lexicon is not None and not isinstance(lexicon, Lexicon):
                lexicon = load_lexicon(lexicon, charset)
            self.decoder = DecoderConfig(str(decoder), beam_width, top_k, lexicon, oov_penalty)
        self.prediction = prediction_kind(model)
        check_decoder(self.prediction, self.decoder)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto", precision: str = "auto",
                        batch_size: int = 256, **decoding: Any) -> Recognizer:
        """Load a cllstr checkpoint (``best.pt``/``last.pt``); only its model, charset and image format are used.
        ``decoding`` takes the decoder arguments of :class:`Recognizer` (``decoder``, ``beam_width``, ``lexicon``,
        ``top_k``, ``oov_penalty``)."""
        loaded = load_model(path)
        image = loaded.image
        return cls(loaded.model, loaded.charset, image["img_h"], image["img_w"], image["rgb"], image["keep_ratio"],
                   device, precision, batch_size, **decoding)

    def load(self, item: ImageInput) -> np.ndarray:
        """One image (a path, encoded bytes or a PIL image) decoded as a viewer shows it and resized.

        Returns:
            ``uint8`` array ``(img_h, img_w, C)``.

        Raises:
            FileNotFoundError / ValueError: a path that cannot be read / does not decode (the message names it).
        """
        mode = "RGB" if self.rgb else "L"
        if isinstance(item, Image.Image):
            img = prepare_image(item, mode, upright=True)
        elif isinstance(item, bytes):
            img = decode_image(item, mode, (self.img_w, self.img_h), upright=True)
        elif isinstance(item, (str, Path)):
            try:
                data = Path(item).read_bytes()
            except OSError as e:
                raise FileNotFoundError(f"cannot read image {item}: {e}") from e
            try:
                img = decode_image(data, mode, (self.img_w, self.img_h), upright=True)
            except Exception as e:
                raise ValueError(f"cannot decode image {item}: {e}") from e
        else:
            raise TypeError(f"unsupported image input {type(item).__name__}; use a path, bytes or a PIL image")
        resize = resize_keep_ratio if self.keep_ratio else resize_fixed
        return resize(img, self.img_w, self.img_h)

    def preprocess(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Load and resize images (paths, encoded bytes or PIL images) into a batch ``(B, C, H, W)`` in [-1, 1]."""
        return to_batch_tensor([self.load(item) for item in images])

    def predict_tensor(self, images: torch.Tensor) -> list[Prediction]:
        """Recognise a prepared batch ``(B, C, H, W)`` in [-1, 1]."""
        if images.dim() != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(images.shape)}")
        out: list[Prediction] = []
        routed = getattr(self.model, "forward_routed", None)
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start:start + self.batch_size]
            scripts: list[tuple[str | None, float | None]] = [(None, None)] * chunk.shape[0]
            if routed is not None:  # one pass gives the routed logits and the script of each word
                with torch.inference_mode(), autocast(self.device, self.amp_dtype):
                    logits, script_logits = routed(chunk.to(self.device))
                logits = logits.float()
                prob, idx = script_logits.float().softmax(dim=-1).max(dim=-1)
                scripts = [(SCRIPT_ORDER[i], float(p)) for i, p in zip(idx.tolist(), prob.tolist(), strict=True)]
            else:
                logits = forward_logits(self.model, chunk, self.device, self.amp_dtype)
            if self.decoder.kind == "beam":
                for hyps, (sc, sp) in zip(beam_decode_logits(logits, self.charset, self.decoder), scripts, strict=True):
                    best = hyps[0] if hyps else Hypothesis("", float("-inf"))
                    out.append(Prediction(best.text, math.exp(best.log_prob), tuple(hyps), *_script(best.text, sc, sp)))
                continue
            texts, confs = decode_head(logits, self.charset, self.decoder, self.prediction)
            out.extend(Prediction(t, c, (), *_script(t, sc, sp))
                       for t, c, (sc, sp) in zip(texts, confs, scripts, strict=True))
        return out

    def predict(self, images: torch.Tensor | Iterable[ImageInput] | ImageInput) -> list[Prediction]:
        """Recognise images: a tensor batch, or paths / bytes / PIL images (one or a list)."""
        if isinstance(images, torch.Tensor):
            return self.predict_tensor(images)
        if isinstance(images, (str, Path, bytes, Image.Image)):
            images = [images]
        items: list[Any] = list(images)
        out: list[Prediction] = []
        for start in range(0, len(items), self.batch_size):
            out.extend(self.predict_tensor(self.preprocess(items[start:start + self.batch_size])))
        return out
