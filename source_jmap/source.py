"""Wires the configuration to a JMAP client and the streams."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    AirbyteStateType,
    ConfiguredAirbyteCatalog,
    Status,
)
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets

from .config import JmapConfig
from .failures import config_error, traced
from .jmap import JmapClient, JmapError, select_mail_accounts
from .reading import read_concurrently
from .streams import (
    AddressBookStream,
    AttachmentStream,
    CalendarEventStream,
    CalendarStream,
    ContactGroupStream,
    ContactStream,
    EmailSelection,
    EmailStream,
    IdentityStream,
    MailboxStream,
    QuotaStream,
    RawMessageStream,
    SieveScriptStream,
    ThreadStream,
    offered,
)
from .streams.base import JmapStream


class SourceJmap(AbstractSource):
    @staticmethod
    def read_config(config_path: str) -> MutableMapping[str, Any]:
        """Refuse a config file that is not a JSON object in one line (the CDK answers with a traceback),
        naming where it breaks and showing none of its content: it holds the credentials."""
        try:
            return AbstractSource.read_config(config_path)
        except ValueError as error:  # the CDK's, raised while handling the JSONDecodeError when there is one
            cause = error.__context__
            why = (f"is not valid JSON ({cause.msg.lower()}: line {cause.lineno}, column {cause.colno})"
                   if isinstance(cause, json.JSONDecodeError) else "is not a JSON object")
            raise config_error(f"The config file {config_path} {why}") from None

    @classmethod
    def read_state(cls, state_path: str) -> list[AirbyteStateMessage]:
        """Refuse a state file that is not Airbyte STATE messages with a message, not a traceback.

        This connector writes one STREAM state per stream: a GLOBAL (or LEGACY) state is not its own (the CDK
        fails on a GLOBAL state's shared_state with a traceback).
        """
        try:
            messages = super().read_state(state_path)
        except Exception:  # the CDK raises whatever its deserializer met: TypeError, KeyError, ValueError...
            raise config_error(
                "The state passed to read is not a list of Airbyte STATE messages; reset the connection's state"
            ) from None
        for message in messages:
            if message.type is not None and message.type != AirbyteStateType.STREAM:
                raise config_error(
                    f"The state passed to read is a {message.type.value} state; this connector writes one STREAM "
                    "state per stream: reset the connection's state"
                )
        return messages

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Report a failed check with the plain message (the CDK's default shows its repr)."""
        succeeded, message = self.check_connection(logger, config)
        if succeeded:
            return AirbyteConnectionStatus(status=Status.SUCCEEDED)
        return AirbyteConnectionStatus(status=Status.FAILED, message=message)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, str | None]:
        """Succeed only when a read would start: the session loads, every selected account's mailboxes are
        read and its mailbox filters resolved as the read does it (the same EmailSelection), and every stream
        it can serve answers the first page of its read (the read's own request and fallbacks, of one object)."""
        try:
            built = _Built(JmapConfig.parse(config))
            for account_id in built.accounts():
                logger.info("Account %s: %d mailboxes readable", account_id, len(built.selection.mailboxes(account_id)))
                built.selection.mailbox_ids(account_id)
                logger.info("Account %s offers %s", account_id,
                            offered(built.client.session.accounts[account_id].account_capabilities))
                for stream in built.streams:
                    if stream.supports_account(account_id):
                        stream.probe(account_id)
        except JmapError as error:
            return False, str(error)
        return True, None

    def read(
        self, logger: logging.Logger, config: Mapping[str, Any], catalog: ConfiguredAirbyteCatalog,
        state: list[AirbyteStateMessage] | None = None,
    ) -> Iterator[AirbyteMessage]:
        """Read the selected streams, each account of each a partition, side by side on the CDK's concurrent
        engine (`reading.read_concurrently`).

        A catalog that selects a stream this configuration does not provide is refused in one line: the
        CDK would end such a read with exit 0 and the stream incomplete."""
        built = _Built(_parsed(config))
        provided = {stream.name: stream for stream in built.streams}
        if missing := sorted({configured.stream.name for configured in catalog.streams} - set(provided)):
            hint = "; turn on include_raw_message for raw_messages" if "raw_messages" in missing else ""
            raise config_error(
                f"The catalog selects {', '.join(missing)}, which this configuration does not provide{hint}"
            )
        selected = [(provided[configured.stream.name], configured) for configured in catalog.streams]
        logger.info("Starting syncing %s", self.name)  # as the classic AbstractSource said it
        yield from read_concurrently(built.client, built.config, selected, state, logger)
        logger.info("Finished syncing %s", self.name)

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        """Build the streams without touching the network: discover must work offline of the data."""
        return _Built(_parsed(config)).streams  # type: ignore[return-value]  # AbstractSource.discover needs only as_airbyte_stream


def _parsed(config: Mapping[str, Any]) -> JmapConfig:
    try:
        return JmapConfig.parse(config)
    except JmapError as error:
        raise traced(error) from None


class _Built:
    """The client, the email selection and the streams of a config, built once for a read or a check."""

    def __init__(self, config: JmapConfig) -> None:
        self.config = config
        self.client = client = _client_for(config)
        self.accounts = functools.cache(lambda: select_mail_accounts(
            client.session, config.account_ids, every=config.read_all_accounts))
        accounts = self.accounts
        self.selection = selection = EmailSelection(client, config.start_date, config.mailboxes,
                                                    config.exclude_mailboxes)
        self.streams: list[JmapStream] = [
            MailboxStream(client, accounts),
            EmailStream(client, accounts, selection, config.body_values, config.max_body_value_bytes,
                        config.include_headers),
            # Threads follow the account: only start_date applies (threads.py says why).
            ThreadStream(client, accounts, EmailSelection(client, config.start_date, [], [])),
            IdentityStream(client, accounts),
            AttachmentStream(client, accounts, selection),
            *([RawMessageStream(client, accounts, selection, config.max_raw_message_bytes)]
              if config.include_raw_message else []),
            *(stream(client, accounts) for stream in (ContactStream, ContactGroupStream, AddressBookStream,
                                                       CalendarStream, CalendarEventStream, QuotaStream,
                                                       SieveScriptStream)),
        ]


def _client_for(config: JmapConfig) -> JmapClient:
    credentials = config.jmap_credentials()
    for secret in secrets_to_mask(credentials.secrets):
        add_to_secrets(secret)
    return JmapClient(config.session_url, credentials, request_timeout=config.request_timeout_seconds)


# Masking a secret this short would star its characters in every log line ("Sourc****Jmap" for the password "e")
# and hide little: shorter secrets are not masked (nor refused).
SHORTEST_MASKED_SECRET = 4


def secrets_to_mask(secrets: list[Any]) -> list[str]:
    """The secrets worth masking, longest first (the CDK replaces them in turn: a form before any part of it)."""
    texts = {str(secret) for secret in secrets if secret}
    return sorted((text for text in texts if len(text) >= SHORTEST_MASKED_SECRET), key=len, reverse=True)
