"""A classification model's answer for one frame: its top classes with confidences.

Example:
    >>> import numpy as np
    >>> c = Classification.from_probabilities(np.array([0.1, 0.7, 0.2], np.float32), top_k=2,
    ...                                       class_names=("cat", "dog", "fox"))
    >>> c.category, [round(float(v), 2) for v in c.confidence], c.top[0]
    (['dog', 'fox'], [0.7, 0.2], 'dog')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Classification:
    """``class_id`` (k,) and ``confidence`` (k,), best first."""

    class_id: np.ndarray
    confidence: np.ndarray
    class_names: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.class_id = np.asarray(self.class_id, np.int64).reshape(-1)
        self.confidence = np.asarray(self.confidence, np.float32).reshape(len(self.class_id))

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray, top_k: int = 5, confidence: float = 0.0,
                           class_names: Sequence[str] = ()) -> Classification:
        """The ``top_k`` classes of a probability vector (nc,) at or above ``confidence``."""
        p = np.asarray(probabilities, np.float32).reshape(-1)
        k = min(max(1, top_k), len(p))
        top = np.argpartition(-p, k - 1)[:k] if k < len(p) else np.arange(len(p))
        top = top[np.lexsort((top, -p[top]))]  # best first; equal scores by class id, as a stable sort gives
        top = top[p[top] >= confidence]
        return cls(top, p[top], class_names)

    def __len__(self) -> int:
        return len(self.class_id)

    @property
    def category(self) -> list[str]:
        names = self.class_names
        return [names[c] if 0 <= c < len(names) else str(c) for c in self.class_id.tolist()]

    @property
    def top(self) -> tuple[str, float] | None:
        """The best class and its confidence (None when nothing passed the threshold)."""
        return (self.category[0], float(self.confidence[0])) if len(self) else None
