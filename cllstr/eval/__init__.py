"""Evaluation of trained checkpoints: ``checkpoint`` (the one checkpoint-evaluation function, and script
identification) and ``gallery`` (error sheets); the scores themselves come from :mod:`cllstr.scoring`."""
