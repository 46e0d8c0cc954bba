"""Shape names, canonicalised once.

OCI spells shapes with mixed case (``BM.GPU.A100-v2.8``); configs, ADS and users upper-case them or
mistype them.  :class:`ShapeCatalog` maps any spelling to the one canonical name and is the only
place names are compared, so a canonical name is what every output carries.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..domain import GpuSpec, Shape
from ..errors import NotFound

# Names in the bundled GPU index that differ from OCI's own spelling (shared/data/README.md):
# the index upper-cases A100-v2 and lists the bare-metal V100 shape as a VM.
INDEX_NAME_FIXES = {
    "BM.GPU.A100-V2.8": "BM.GPU.A100-v2.8",
    "VM.GPU3.8": "BM.GPU3.8",
}


class ShapeCatalog:
    """An immutable set of shapes with case-insensitive lookup."""

    def __init__(self, shapes: Iterable[Shape]):
        self._by_key: dict[str, Shape] = {}
        for shape in shapes:
            self._by_key.setdefault(shape.name.upper(), shape)

    def __iter__(self) -> Iterator[Shape]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._by_key

    def find(self, name: str) -> Shape | None:
        return self._by_key.get(name.strip().upper())

    def get(self, name: str) -> Shape:
        shape = self.find(name)
        if shape is None:
            raise NotFound("shape", name, self.suggest(name))
        return shape

    def canonical(self, name: str) -> str:
        """OCI's spelling of ``name`` when we know the shape, else ``name`` unchanged."""
        shape = self.find(name)
        return shape.name if shape else name.strip()

    def suggest(self, name: str) -> str:
        names = [s.name for s in self]
        by_upper = {n.upper(): n for n in names}
        upper = name.strip().upper()
        # VM/BM mix-ups are the usual mistake (e.g. VM.GPU.A10.4 for BM.GPU.A10.4): suggest that first
        swapped = {"VM.": "BM.", "BM.": "VM."}.get(upper[:3], "") + upper[3:]
        close = [swapped] if swapped in by_upper else []
        close += [c for c in difflib.get_close_matches(upper, list(by_upper), n=3, cutoff=0.6) if c not in close]
        close = close[:3]
        if close:
            return "did you mean " + " or ".join(repr(by_upper[c]) for c in close) + "?"
        return f"known shapes: {', '.join(sorted(names))}"

    def gpu_shapes(self) -> list[Shape]:
        return [s for s in self if s.gpu_count > 0]

    def merged_with(self, offered: Iterable[Shape]) -> ShapeCatalog:
        """The shapes a platform offers, with GPU specs filled from this catalog where the platform
        does not give them (OCI's ``ListModelDeploymentShapes`` has no GPU fields)."""
        merged = []
        for shape in offered:
            known = self.find(shape.name)
            if known is not None:
                shape = shape.model_copy(
                    update={
                        "name": known.name,
                        "gpu_specs": shape.gpu_specs or known.gpu_specs,
                        "quantization": shape.quantization or known.quantization,
                        "ranking": shape.ranking or known.ranking,
                    }
                )
            elif shape.gpu_specs is None:
                shape = unknown_gpu_shape(shape)
            merged.append(shape)
        return ShapeCatalog(merged)


GPU_SERIES = ("NVIDIA_GPU", "AMD_GPU", "GPU")
_TRAILING_COUNT = re.compile(r"\.(\d+)$")
MEMORY_UNKNOWN = "GPU memory unknown: the shape is not in the bundled GPU index (GPU count read from its name)"


def is_gpu_series(shape: Shape) -> bool:
    series = (shape.shape_series or "").upper()
    return series in GPU_SERIES or ".GPU" in shape.name.upper()


def unknown_gpu_shape(shape: Shape) -> Shape:
    """A GPU shape the bundled index does not know yet (OCI adds shapes before any bundled file
    does): its GPU count is the number its name ends with, as ADS reads it (``VM.GPU.UNKNOWN.4`` →
    4); its memory stays unknown and says so."""
    if not is_gpu_series(shape):
        return shape
    found = _TRAILING_COUNT.search(shape.name)
    if not found:
        return shape.model_copy(update={"notes": [*shape.notes, "GPU count unknown: not in the bundled GPU index"]})
    return shape.model_copy(
        update={"gpu_specs": GpuSpec(gpu_count=int(found.group(1))), "notes": [*shape.notes, MEMORY_UNKNOWN]}
    )


def shapes_from_gpu_index(index: Mapping[str, Any]) -> list[Shape]:
    """Shapes from OCI's ``gpu_shapes_index.json`` (``{"shapes": {name: spec}}``), canonical names."""
    shapes = []
    for raw_name, spec in index.get("shapes", {}).items():
        name = INDEX_NAME_FIXES.get(raw_name, raw_name)
        shapes.append(
            Shape(
                name=name,
                core_count=spec.get("cpu_count"),
                memory_in_gbs=spec.get("cpu_memory_in_gbs"),
                shape_series="NVIDIA_GPU" if "MI300" not in name else "AMD_GPU",
                gpu_specs=GpuSpec(
                    gpu_count=spec.get("gpu_count", 0),
                    gpu_memory_in_gbs=spec.get("gpu_memory_in_gbs"),
                    gpu_type=spec.get("gpu_type"),
                ),
                quantization=list(spec.get("quantization", [])),
                ranking=dict(spec.get("ranking", {})),
            )
        )
    return sorted(shapes, key=shape_order)


def shape_order(shape: Shape) -> tuple[int, int, str]:
    """Cheapest first: by GPU count, then the index's cost ranking, then name."""
    return (shape.gpu_count, shape.ranking.get("cost", 0), shape.name)
