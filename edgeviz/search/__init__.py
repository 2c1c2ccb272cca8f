"""Memory-budgeted one-shot NAS (the MCUFormer method) for edgeviz.

Parts: ``space`` (search space as data), ``data`` (datasets), ``supernet`` (weight-sharing ViT with
low-rank factors), ``train`` (sandwich training, DDP), ``evolve`` (evolutionary / random search and
baselines), ``budget`` (size strings), ``run`` (the ``train`` and ``search`` jobs), ``cli``.
Memory is judged only by ``edgeviz.compiler.plan_config``.
"""
