"""The LMDB store (bottom layer of :mod:`cllstr.data`; no torch): ``format`` (keys, :class:`Record`), ``reader``,
``writer`` (atomic, resumable), and the ``cllstr data`` commands' back ends ``create``, ``validate``, ``inspection``,
``charsets``."""
