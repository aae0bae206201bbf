"""Registering a model checks its alert rules against the reference: a rule watching a
feature the model does not have would never fire, so it is refused naming the key."""

from __future__ import annotations

import pytest

from driftline.errors import ConfigurationError
from registration import register_model
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from tests.stream_app import scenario


def test_a_rule_naming_an_unknown_feature_is_refused_at_registration() -> None:
    engine = make_engine("sqlite://")
    upgrade(engine)
    sessions = session_factory(engine)
    rules = {"rules": [{"name": "drift", "kind": "feature_drift", "features": ["income", "zip"]}]}
    refused = pytest.raises(ConfigurationError, match=r"alerts.rules\[0\].features: \['zip'\]")
    with refused, sessions.begin() as session:
        register_model(session, scenario.model_config(alerts=rules), scenario.reference())
    good = {"rules": [{"name": "drift", "kind": "feature_drift", "features": ["income"]}]}
    with sessions.begin() as session:
        assert register_model(session, scenario.model_config(alerts=good), scenario.reference())
