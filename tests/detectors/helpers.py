"""Small builders shared by the detector tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from detectors.profile import ProfileSettings, ReferenceProfile, build_profile
from detectors.window import WindowState


def profile_of(**columns: Any) -> ReferenceProfile:
    return build_profile(pd.DataFrame(columns))


def window_of(profile: ReferenceProfile, **columns: Any) -> WindowState:
    return WindowState.empty(profile).update(profile, columns)


def numeric_profile(values: np.ndarray, **settings: Any) -> ReferenceProfile:
    return build_profile(pd.DataFrame({"x": values}), settings=ProfileSettings(**settings))
