"""Memory-budgeted one-shot NAS (the MCUFormer method) for edgeviz.

Parts, each importing only those before it (and edgeviz's core): ``budget`` (size strings), ``space``
(search space as data), ``settings`` (the search's settings), ``supernet`` (weight-sharing ViT with
low-rank factors), ``train`` (sandwich training, DDP; the ``train`` job), ``standalone`` (training one
ViT), ``judge`` (memory by the planner, accuracy by the supernet), ``evolution`` (the evolutionary
search), ``baselines`` (random search, uniform ViTs), ``finalists`` (the fine-tuning stage),
``space_evolution`` (MCUFormer's search-space evolution), ``run`` (the ``search`` job), ``cli``.
Memory is judged only by ``edgeviz.lower.plan_config``.
"""
