"""Build the platform's :class:`ResponseService` from settings: connectors, notifiers, playbooks, bus, cases."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from openmdr.bus import TOPIC_ACTIONS
from openmdr.models.action import ActionRecord
from openmdr.models.alert import Alert
from openmdr.respond.config import config_path, load_response_config
from openmdr.respond.playbook import PlaybookSet, builtin_playbooks, load_playbook_dir
from openmdr.respond.service import ResponseService

if TYPE_CHECKING:
    from openmdr.runtime import Platform

log = logging.getLogger(__name__)


def platform_playbooks(platform: Platform) -> PlaybookSet:
    """The built-in playbooks plus the ones in ``data_dir/playbooks`` (a local one replaces a built-in of its name)."""
    builtin = builtin_playbooks()
    folder = platform.settings.data_dir / "playbooks"
    if not folder.is_dir():
        return builtin
    local = load_playbook_dir(folder)
    names = {p.name for p in local.playbooks}
    return PlaybookSet([*(p for p in builtin.playbooks if p.name not in names), *local.playbooks],
                       [*builtin.problems, *local.problems])  # fmt: skip


def build_response_service(platform: Platform) -> ResponseService:
    """The response service of ``platform``: configured connectors, actions published on ``TOPIC_ACTIONS``,
    containment reported to the case service, confidence taken from the case's alerts."""
    config = load_response_config(config_path(platform.settings.data_dir))
    for problem in config.problems:
        log.warning("response configuration: %s", problem)

    def publish(record: ActionRecord) -> None:
        platform.bus.publish(TOPIC_ACTIONS, record.to_json_dict())

    def contained(tenant: str, case_id: str, at: datetime) -> None:
        try:
            cases = platform.cases
        except ImportError:  # the case service is not part of this build
            return
        try:
            cases.mark_contained(tenant, case_id, "response", at=at)
        except (LookupError, ValueError) as exc:  # a case the case service does not know (e.g. planned from a file)
            log.info("case %s/%s not marked contained: %s", tenant, case_id, exc)

    def alerts_for(tenant: str, case_id: str) -> list[Alert]:
        try:
            return list(platform.cases.alerts(tenant, case_id))
        except (ImportError, LookupError):
            return []

    return ResponseService(
        platform.state, config.connectors, clock=platform.clock, playbooks=platform_playbooks(platform),
        notifiers=config.notifiers, on_contained=contained, publish=publish, alerts_for=alerts_for,
    )  # fmt: skip
