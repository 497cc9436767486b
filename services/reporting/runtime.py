"""What one reporting process holds: configuration, PostgreSQL, senders, clock, metrics.

Built once by `__main__` (or a test) and handed to the faust agents with
`services.reporting.app.bind`; `close()` releases it in order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.reporting.calls import Waits
from services.reporting.channels import Mailer, Texter, WebhookPoster
from services.reporting.clock import Clock, FileClock
from services.reporting.config import Config
from services.reporting.sms import SmsSender
from services.reporting.store import Store
from services.reporting.voicemail_links import VoicemailLinks


@dataclass
class Runtime:
    config: Config
    store: Store
    clock: Clock
    mailer: Mailer
    texter: Texter
    webhooks: WebhookPoster
    links: VoicemailLinks
    metrics: Any = None
    random: random.Random = field(default_factory=random.Random)

    @property
    def waits(self) -> Waits:
        return Waits(
            timedelta(seconds=self.config.voicemail_wait_seconds),
            timedelta(seconds=self.config.voicemail_link_wait_seconds),
        )

    def close(self) -> None:
        self.store.close()


def build_runtime(config: Config) -> Runtime:
    sms = SmsSender(
        config.twilio_account_sid,
        config.twilio_auth_token,
        config.twilio_api_base_url,
        timeout=config.send_timeout_seconds,
    )
    return Runtime(
        config=config,
        store=Store.open(config.database_url),
        clock=FileClock(config.clock_file) if config.clock_file else Clock(),
        mailer=Mailer(config.smtp_url, config.send_timeout_seconds),
        texter=Texter(sms),
        webhooks=WebhookPoster(config.send_timeout_seconds),
        links=VoicemailLinks(
            config.recordings_url, config.admin_token, config.send_timeout_seconds
        ),
    )
