"""The built-in synthetic multi-camera person re-identification benchmark.

`generate_synthetic_benchmark(out=..., ids=..., cams=..., images_per_id=..., height=...,
width=..., seed=...)` writes a Market-1501-layout tree (`bounding_box_train/`, `query/`,
`bounding_box_test/`, names `PPPP_cCsS_FFFFFF_BB.jpg`, cameras 1..cams, pids from 1) and a
`synthetic.json` with the parameters and counts. Parameters:

- `ids`: identities; the first half train, the second half test (query + gallery);
- `cams`: cameras (2..9), each with its own light, colour cast, blur, noise, framing, dominant
  viewpoints, scene and occlusion rate (`camera.py`);
- `images_per_id`: images of each identity over its 2+ cameras (`plan.py`);
- `height`, `width`: image size in pixels (128 x 64 is the Market-1501 convention);
- `seed`: the same seed gives byte-identical files, whatever the number of `workers`.

Identities differ by body shape, clothing colours and patterns, and accessories
(`identity.py`); images of one identity differ by pose, viewpoint, crop, background and
occlusion (`render.py`, `person.py`). The test gallery also holds pid 0 distractors and
`bounding_box_test` a few pid -1 junk crops, as Market-1501 does.
"""

from reid_platform.data.synthetic.writer import (
    MANIFEST,
    SyntheticSummary,
    generate_synthetic_benchmark,
    synthetic_parameters,
)

__all__ = ["MANIFEST", "SyntheticSummary", "generate_synthetic_benchmark", "synthetic_parameters"]
