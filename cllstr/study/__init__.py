"""Studies: a grid of training runs from one file or preset, run resumably, reported in the paper's layout.

Modules: :mod:`~cllstr.study.spec` (typed spec, grid expansion, run hash), :mod:`~cllstr.study.presets`,
:mod:`~cllstr.study.runner` (data preparation, execution, resume), :mod:`~cllstr.study.worker` (one run),
:mod:`~cllstr.study.progress`, :mod:`~cllstr.study.report` and :mod:`~cllstr.study.plots`. Nothing is imported
here so that ``python -m cllstr.study.worker`` starts cleanly.
"""
