"""Which records form the training stream (middle layer of :mod:`cllstr.data`): ``select_data`` (the reference's
select-data strings, caps, batch ratios, data-root layout), ``spec`` (:class:`MixSpec`, mixture files) and
``sampler`` (fixed per-source shares of every batch)."""
