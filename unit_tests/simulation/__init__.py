"""The deterministic simulation of histories (issue 18): a model JMAP server, histories, an oracle."""
