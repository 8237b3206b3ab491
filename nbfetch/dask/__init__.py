from .cluster import FetchResult, Progress, fetch_many_distributed, percentile, run_batch

__all__ = ["FetchResult", "Progress", "fetch_many_distributed", "percentile", "run_batch"]
