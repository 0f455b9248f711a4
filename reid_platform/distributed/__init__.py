"""Ray only: training on Ray Train (TorchTrainer around `training.loop`), cluster connection.

`training/` never imports Ray: the worker function here builds the placement (rank, world
size, device), wraps the model for DDP and turns the loop's hooks into `ray.train.report`
calls; the Train controller forwards the reports to `tracking/` through a `UserCallback`.
"""
