"""Ray resources: data-parallel workers, their CPUs/GPUs, fault tolerance and shared storage."""

from pydantic import Field

from reid_platform.config.base import Section


class DistributedConfig(Section):
    """`storage_path` must be shared by every node on a multi-node cluster (NFS, s3://, gs://)."""

    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: int = Field(1, ge=1)
    gpus_per_worker: int = Field(1, ge=0)
    max_failures: int = Field(0, ge=-1)
    storage_path: str = "outputs/ray"
    all_gather_embeddings: bool = False
