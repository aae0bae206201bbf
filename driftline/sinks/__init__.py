"""Local stand-ins for the services Driftline notifies (Slack, SMTP), for the demo and tests."""
