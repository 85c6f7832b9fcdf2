"""Training: typed configs (``config``), CTC loss (``ctc``), atomic checkpoints (``checkpoint``), cascade init
(``cascade``), resumable batch stream (``data_stream``), data setup (``data``), logs (``monitor``), precision
(``precision``) and the loop (``engine``: ``Trainer``, ``train``). Import the submodules you need.
"""
