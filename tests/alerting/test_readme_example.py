"""The README's alert example is a working configuration: the rules validate and the routing
file loads, with its secrets, into the receivers it describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from alerting.integrations import build_integrations
from alerting.routing import load_routing
from tests.stream_app import scenario

README = Path(__file__).resolve().parents[2] / "README.md"


def block(language: str, after: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(after)
    found = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    assert found is not None, f"no {language} block after {after!r}"
    return found.group(1)


def test_the_readme_rules_validate() -> None:
    rules = json.loads("{" + block("json", "**Rules** are part") + "}")["alerts"]
    config = scenario.model_config(alerts=rules)
    assert [r.kind for r in config.alerts.effective_rules()][:3] == [
        "feature_drift",
        "dataset_drift",
        "metric",
    ]


def test_the_readme_routing_file_loads_with_its_secrets(tmp_path: Path) -> None:
    yaml_text = block("yaml", "complete example, Slack and e-mail")
    token = tmp_path / "slack-bot-token"
    token.write_text("xoxb-1-2-test\n")
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml_text.replace("/run/secrets/slack-bot-token", str(token)))
    routing = load_routing(path)
    environ = {"SLACK_ML_WEBHOOK": "https://hooks.slack.com/services/T/B/x", "SMTP_PASSWORD": "pw"}
    built = build_integrations(routing.receivers, environ)
    assert {name: sorted(found) for name, found in built.items()} == {
        "ml-team": ["slack[0]"],
        "ml-oncall": ["email[0]", "slack[0]"],
        "risk-team": ["email[0]"],
    }
    critical_risk = {"severity": "critical", "team": "risk", "rule": "auc-low", "model": "churn"}
    assert [r.receiver for r in routing.routes_for(critical_risk)] == ["ml-oncall", "risk-team"]
    assert [r.receiver for r in routing.routes_for({"severity": "warning"})] == ["ml-team"]
