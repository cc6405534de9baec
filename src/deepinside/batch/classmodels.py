"""Class models over a Ray cluster: the batches of a
:class:`~deepinside.visualization.job.ClassModelJob` spread over a pool of
actors, each holding the model once. The job's own files mark what is done,
so a rerun goes on where a stopped one left off, as it does locally; the
output folder must be one every actor's machine can write (shared storage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..models.classifier import Classifier
from ..visualization.job import ClassModelJob, Record
from .ray_engine import join_quietly, require_ray


def render_on_ray(
    job: ClassModelJob,
    model: Classifier,
    batches: Sequence[Sequence[int]],
    *,
    address: str | None = None,
    actors: int = 1,
    gpus_per_actor: float | None = None,
    threads_per_actor: int = 1,
    on_batch: Callable[[list[Record]], None] | None = None,
) -> int:
    """Render ``batches`` (from :meth:`ClassModelJob.start`) on Ray; return
    how many classes were rendered. ``on_batch`` gets each batch's records
    as it finishes (in the order they finish)."""
    require_ray()
    import ray
    from ray.util import ActorPool

    if not batches:
        return 0
    join_quietly(address, job.out)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    remote = ray.remote(num_cpus=1, num_gpus=gpus_per_actor)(_ClassModelActor)
    model_ref = ray.put(model)
    pool = ActorPool([remote.remote(model_ref, threads_per_actor) for _ in range(min(actors, len(batches)))])
    for records in pool.map_unordered(lambda actor, b: actor.render.remote(job, list(b)), list(batches)):
        if on_batch:
            on_batch(records)
    return sum(map(len, batches))


class _ClassModelActor:
    def __init__(self, model: Classifier, threads: int):
        import ray
        import torch

        torch.set_num_threads(threads)
        self.model = model.to("cuda") if ray.get_gpu_ids() else model

    def render(self, job: ClassModelJob, batch: list[int]) -> list[Record]:
        return job.render(self.model, batch)


__all__ = ["render_on_ray"]
