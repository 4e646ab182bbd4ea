"""Type aliases shared across modules."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

EntryId: TypeAlias = str
Vector: TypeAlias = npt.NDArray[np.float32]
Matrix: TypeAlias = npt.NDArray[np.float32]
