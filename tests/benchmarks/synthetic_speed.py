"""Generation speed of the synthetic benchmark: images per minute at 128x64 with 2 workers.

Run on demand (not part of the test suite):

    python tests/benchmarks/synthetic_speed.py [--ids 400 --workers 2]

The time covers planning, rendering, JPEG encoding and writing every file (train, query,
gallery, distractors and junk) into a temporary folder.
"""

import argparse
import tempfile
from pathlib import Path

from reid_platform.data.synthetic import generate_synthetic_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=400)
    parser.add_argument("--cams", type=int, default=4)
    parser.add_argument("--images-per-id", type=int, default=12)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        summary = generate_synthetic_benchmark(
            out=Path(scratch) / "synthetic",
            ids=args.ids,
            cams=args.cams,
            images_per_id=args.images_per_id,
            height=args.height,
            width=args.width,
            seed=0,
            workers=args.workers,
        )
    rate = summary.images / summary.seconds * 60.0
    print(
        f"{summary.images} images ({args.height}x{args.width}) in {summary.seconds:.1f} s "
        f"with {args.workers} workers: {rate:,.0f} images/minute"
    )


if __name__ == "__main__":
    main()
