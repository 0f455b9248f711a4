"""Speed measurement: alternating blocks, both backends in one call, sane units."""

import math
from collections.abc import Callable

from torch import nn

from reid_platform.export import OnnxExport, measure_backends, measure_speed
from reid_platform.export.speed import ONNXRUNTIME_CPU, PYTORCH_CPU


def test_each_backend_warms_up_then_runs_its_repeats() -> None:
    calls: list[tuple[str, int]] = []

    def backend(name: str) -> Callable[[int], Callable[[], object]]:
        return lambda batch: lambda: calls.append((name, batch))

    speeds = measure_backends(
        {"a": backend("a"), "b": backend("b")},
        throughput_batch=8,
        latency_repeats=3,
        throughput_repeats=2,
        warmup=1,
    )
    # Warm-up, then per round one untimed and the timed calls of a, then of b.
    assert calls.count(("a", 1)) == calls.count(("b", 1)) == 1 + 3 * (1 + 1)
    assert calls.count(("a", 8)) == calls.count(("b", 8)) == 1 + 2 * (1 + 1)
    latency_calls = [name for name, batch in calls if batch == 1]
    assert latency_calls[2:] == ["a", "a", "b", "b"] * 3
    assert speeds["a"].batch == 8 and speeds["a"].throughput > 0


def test_measure_speed_times_onnxruntime_and_pytorch_together(
    exported_variant: Callable[[str], tuple[nn.Module, OnnxExport]],
) -> None:
    model, exported = exported_variant("ibn")
    report = measure_speed(
        model, exported, throughput_batch=4, threads=1, latency_repeats=3, throughput_repeats=2,
        warmup=1,
    )  # fmt: skip
    assert (report.exported_backend, report.pytorch_backend) == (ONNXRUNTIME_CPU, PYTORCH_CPU)
    assert report.threads == 1 and report.device == "cpu"
    for speed in (report.exported, report.pytorch):
        assert speed.batch == 4 and speed.latency_ms > 0 and speed.throughput > 0
    assert math.isfinite(report.latency_ratio) and math.isfinite(report.throughput_ratio)
    assert model.training
