"""Benchmarks: the SIR-HCL paper's tables, the baselines, ablations, the anomaly-ratio sweep and speed, by one
command (``python -m crossemo_core benchmark --suite {paper,ablation,ratio,speed} ...``) with a resumable run cache.

    profile = Profile.resolve("ravdess", "../shared/data/ravdess")
    result = run_benchmark("paper", profile, "runs/bench", jobs=2)     # writes paper-ravdess.{md,json,html}
"""
from crossemo_core.benchmark.protocols import DataSpec, RunSpec, execute
from crossemo_core.benchmark.runner import BenchmarkResult, run_benchmark
from crossemo_core.benchmark.suites import SUITES, Profile, suite_runs

__all__ = ["SUITES", "BenchmarkResult", "DataSpec", "Profile", "RunSpec", "execute", "run_benchmark", "suite_runs"]
