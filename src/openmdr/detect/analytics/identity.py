"""Identity analytics: logons, credential attacks, account and group changes, bulk access.

Streaming by nature: events are processed one by one in time order, each updating the
user's profile after it has been judged against it.  Batch analysis is the same loop
over a whole time-sorted table, so both give the same alerts.  Per event the work is a
few dictionary look-ups; the time-zone conversion is cached per hour.

Analytics (see docs/analytics.md for the thresholds):

* **off-hours logon**: outside the tenant's working hours/days in its time zone AND
  unusual for the user (share of the user's past logons within one hour at most
  ``offhours_max_share``; a user with no logon at that time of day yet, e.g. a dormant
  account, is unusual; the alert is low severity until the profile is established);
* **new country**: a country the user (or, for users without history, the tenant) has
  not logged on from;
* **impossible travel**: great-circle distance between consecutive geolocated logons
  divided by the time between them above ``travel_max_speed_kmh`` (private and
  unlocated addresses are ignored);
* **brute force / password spraying / success after failures**: sliding windows of
  failures per source and per user;
* **first-seen host or source** of a user with an established profile;
* **privileged group change** and **account creation**;
* **bulk file access**: file/share access events per user and window against the
  user's own baseline.

Logon records come from Windows 4624/4625 (Kerberos 4768/4771 and NTLM 4776 count as
credential checks: they feed brute-force detection only), Linux sshd and sudo, VPN
and cloud logins: any event whose action names a logon/login.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

from openmdr.detect.analytics.alerting import build_alert, utc
from openmdr.detect.analytics.baseline import BaselineStore, IdentityTenantProfile, UserProfile
from openmdr.detect.analytics.settings import AnalyticsSettings
from openmdr.detect.analytics.sketches import LruMap
from openmdr.detect.analytics.stats import haversine_km
from openmdr.models.alert import Alert
from openmdr.models.tenant import TenantInfo

DAY = 86_400.0


@dataclass(slots=True)
class FailureTracker:
    """Recent failures of one source or one user within the sliding window (bounded)."""

    events: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=4096))
    cooldown: dict[str, float] = field(default_factory=dict)

    def add(self, ts: float, other: str, event_id: str, window: float) -> None:
        """Record a failure at ``ts`` involving ``other`` (user or source) and expire old ones."""
        events = self.events
        events.append((ts, other, event_id))
        horizon = ts - window
        while events and events[0][0] < horizon:
            events.popleft()

    def recent(self, ts: float, window: float) -> int:
        """Failures within ``window`` before ``ts``."""
        horizon = ts - window
        events = self.events
        while events and events[0][0] < horizon:
            events.popleft()
        return len(events)

    def armed(self, kind: str, ts: float) -> bool:
        """True if an alert of ``kind`` may fire now (one per window per tracker)."""
        return self.cooldown.get(kind, -math.inf) <= ts

    def fire(self, kind: str, ts: float, window: float) -> None:
        """Silence ``kind`` for one window after it fired."""
        self.cooldown[kind] = ts + window


class LocalClock:
    """Converts epoch seconds to (hour, weekday) in one time zone, cached per UTC hour."""

    def __init__(self, timezone: str) -> None:
        try:
            self.zone: ZoneInfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.zone = ZoneInfo("UTC")
        self._cache: dict[int, tuple[int, int]] = {}

    def hour_weekday(self, ts: float) -> tuple[int, int]:
        """Local hour (0-23) and weekday (0 = Monday) of ``ts``."""
        key = int(ts // 3600)
        hit = self._cache.get(key)
        if hit is None:
            local = datetime.fromtimestamp(key * 3600 + 1800, UTC).astimezone(self.zone)
            hit = (local.hour, local.weekday())
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = hit
        return hit


@lru_cache(maxsize=65_536)
def source_network(ip: str, external: bool) -> str:
    """What "the same source" means for first-seen: the address itself for internal hosts,
    its /24 (IPv4) or /48 (IPv6) for external ones, whose home and mobile addresses churn
    inside the provider's prefix.  Text that is not an address is kept as it is."""
    if not external:
        return ip
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"  # the common case without ipaddress parsing
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def in_working_time(hour: int, weekday: int, info: TenantInfo, margin: int = 0) -> bool:
    """True when ``hour``/``weekday`` (tenant local) fall in the tenant's working time,
    widened by ``margin`` hours at both ends."""
    if weekday not in info.working_days:
        return False
    start, end = info.working_hours
    start, end = (start - margin) % 24, (end + margin) % 24
    if margin and (info.working_hours[1] - info.working_hours[0]) % 24 + 2 * margin >= 24:
        return True
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


class IdentityAnalytics:
    """Identity analytics of one tenant, with its baselines."""

    def __init__(self, tenant: TenantInfo, settings: AnalyticsSettings) -> None:
        self.info = tenant
        self.tenant = tenant.name
        self.settings = settings
        cfg = settings.identity
        cap, alpha = cfg.max_items_per_user, settings.volume_alpha
        self.users: BaselineStore[UserProfile] = BaselineStore(
            "identity.user",
            cfg.max_users,
            lambda: UserProfile(cap, alpha),
            lambda s: UserProfile.from_state(s, cap, alpha),
        )
        self.tenant_profile: BaselineStore[IdentityTenantProfile] = BaselineStore(
            "identity.tenant", 1, IdentityTenantProfile, IdentityTenantProfile.from_state
        )
        self.by_source: LruMap[str, FailureTracker] = LruMap(cfg.max_sources)
        self.by_user: LruMap[str, FailureTracker] = LruMap(cfg.max_sources)
        self.clock = LocalClock(tenant.timezone)
        self._ignore = {u.lower() for u in cfg.ignore_users}
        self._privileged = {g.lower() for g in cfg.privileged_groups}
        self._offhours_types = set(cfg.offhours_logon_types)

    def stores(self) -> list[BaselineStore[Any]]:
        """Every persisted store (failure trackers are short-lived and not persisted)."""
        return [self.users, self.tenant_profile]

    # ------------------------------------------------------------------------- driver

    def process(self, view: pa.Table) -> list[Alert]:
        """Judge every row of an identity view (:data:`~.frame.IDENTITY_SCHEMA`, time-ordered)."""
        if view.num_rows == 0:
            return []
        alerts: list[Alert] = []
        tenant_profile = self.tenant_profile.profile("*")
        cols = [view.column(name).to_pylist() for name in view.schema.names]
        by_source, by_user = self.by_source, self.by_user
        for row in zip(*cols, strict=True):
            (
                ts,
                eid,
                kind,
                failed,
                code,
                user,
                host,
                src,
                src_int,
                country,
                lat,
                lon,
                ltype,
                group,
                member,
                actor,
                _,
            ) = row
            if tenant_profile.first_seen is None:
                tenant_profile.first_seen = ts
            if kind == "logon" or kind == "credential":
                valid_user = self._valid_user(user)
                if failed:
                    self._failure(ts, eid or "", src, user if valid_user else None, alerts)
                else:
                    # most successes follow no failure at all: skip the tracker look-ups then
                    if (src and src in by_source) or (valid_user and user in by_user):
                        self._success(ts, eid or "", src, user if valid_user else None, alerts)
                    if kind == "logon" and valid_user:
                        self._logon(
                            tenant_profile,
                            ts,
                            eid or "",
                            user,
                            host,
                            src,
                            src_int,
                            country,
                            lat,
                            lon,
                            ltype,
                            alerts,
                        )
            elif kind == "group_add":
                self._group_change(ts, eid or "", group, member, actor, host, alerts)
            elif kind == "user_add":
                self._account_created(ts, eid or "", user, member, actor, host, code, alerts)
            elif kind == "file" and self._valid_user(user):
                self._file_access(ts, eid or "", user, host, code, alerts)
        return alerts

    def _valid_user(self, user: str | None) -> bool:
        return bool(user) and not user.endswith("$") and user not in self._ignore  # type: ignore[union-attr]

    def _alert(self, analytic: str, title: str, severity: str, first: float, last: float, **kw: Any) -> Alert:
        return build_alert(
            self.tenant, analytic, title, severity, first, last, max_evidence=self.settings.max_evidence, **kw
        )

    def _event_alert(self, analytic: str, title: str, severity: str, ts: float, eid: str, **kw: Any) -> Alert:
        """An alert raised by one event ``eid`` at ``ts``: it spans that instant and is its only evidence."""
        return self._alert(analytic, title, severity, ts, ts, evidence=[eid], event_count=1, **kw)

    def _warm(self, profile: IdentityTenantProfile, ts: float) -> bool:
        first = profile.first_seen
        return first is not None and ts - first >= self.settings.warmup.tenant_days * DAY

    # ------------------------------------------------------------- credential attacks

    def _failure(self, ts: float, eid: str, src: str | None, user: str | None, alerts: list[Alert]) -> None:
        cfg = self.settings.identity
        window = float(cfg.brute_window_seconds)
        if src:
            tracker = self.by_source.setdefault_factory(src, FailureTracker)
            tracker.add(ts, user or "", eid, window)
            n = len(tracker.events)
            users = {u for _, u, _ in tracker.events if u}
            per_user = n / max(len(users), 1)
            if len(users) >= cfg.spray_users and per_user <= cfg.spray_max_attempts_per_user:
                if tracker.armed("spray", ts):
                    tracker.fire("spray", ts, window)
                    alerts.append(self._spray_alert(src, tracker, users, per_user, window))
            elif n >= cfg.brute_source_failures and tracker.armed("brute", ts):
                tracker.fire("brute", ts, window)
                alerts.append(self._brute_source_alert(src, tracker, users, window))
        if user:
            tracker = self.by_user.setdefault_factory(user, FailureTracker)
            tracker.add(ts, src or "", eid, window)
            if len(tracker.events) >= cfg.brute_user_failures and tracker.armed("brute", ts):
                tracker.fire("brute", ts, window)
                sources = sorted({s for _, s, _ in tracker.events if s})
                n = len(tracker.events)
                alerts.append(
                    self._alert(
                        "brute_force_user",
                        f"Brute force against user {user}",
                        "high" if len(sources) > 1 else "medium",
                        tracker.events[0][0],
                        ts,
                        attack=["T1110.001"],
                        tactics=["credential-access"],
                        entities={"user": user, "src_ip": sources[:20]},
                        evidence=[e for _, _, e in tracker.events],
                        event_count=n,
                        explanation=(
                            f"{n} failed logons for {user} within {int(window)}s from {len(sources)} "
                            f"source(s) >= threshold {cfg.brute_user_failures}"
                        ),
                        details={
                            "failures": n,
                            "threshold": cfg.brute_user_failures,
                            "window_s": window,
                            "sources": sources[:50],
                        },
                        confidence=0.75,
                    )
                )

    def _source_burst_alert(
        self,
        analytic: str,
        title: str,
        severity: str,
        technique: str,
        src: str,
        tracker: FailureTracker,
        users: set[str],
        **kw: Any,
    ) -> Alert:
        """A credential-access alert over one source's burst of failed logons (spraying or brute force).

        Spans the tracker's failures, names the source and up to 20 targeted users, and carries every
        failure as evidence; ``kw`` (explanation, details, confidence) is the analytic's own part.
        """
        return self._alert(
            analytic,
            title,
            severity,
            tracker.events[0][0],
            tracker.events[-1][0],
            attack=[technique],
            tactics=["credential-access"],
            entities={"src_ip": src, "user": sorted(users)[:20]},
            evidence=[e for _, _, e in tracker.events],
            event_count=len(tracker.events),
            **kw,
        )

    def _spray_alert(self, src: str, tracker: FailureTracker, users: set[str], per_user: float, window: float) -> Alert:
        cfg = self.settings.identity
        n = len(tracker.events)
        return self._source_burst_alert(
            "password_spray",
            f"Password spraying from {src} against {len(users)} users",
            "high",
            "T1110.003",
            src,
            tracker,
            users,
            explanation=(
                f"{src} failed logons for {len(users)} distinct users within {int(window)}s "
                f"(>= {cfg.spray_users}) with {per_user:.1f} attempts per user (<= "
                f"{cfg.spray_max_attempts_per_user:g})"
            ),
            details={
                "failures": n,
                "distinct_users": len(users),
                "attempts_per_user": per_user,
                "users_threshold": cfg.spray_users,
                "window_s": window,
                "users": sorted(users)[:100],
            },
            confidence=0.8,
        )

    def _brute_source_alert(self, src: str, tracker: FailureTracker, users: set[str], window: float) -> Alert:
        cfg = self.settings.identity
        n = len(tracker.events)
        return self._source_burst_alert(
            "brute_force_source",
            f"Brute force from {src}",
            "high" if len(users) > 1 else "medium",
            "T1110.001",
            src,
            tracker,
            users,
            explanation=(
                f"{n} failed logons from {src} within {int(window)}s >= threshold "
                f"{cfg.brute_source_failures} ({len(users)} user(s) targeted)"
            ),
            details={
                "failures": n,
                "threshold": cfg.brute_source_failures,
                "window_s": window,
                "users": sorted(users)[:100],
            },
            confidence=0.75,
        )

    def _success(self, ts: float, eid: str, src: str | None, user: str | None, alerts: list[Alert]) -> None:
        cfg = self.settings.identity
        window = float(cfg.brute_window_seconds)
        for key, trackers, what in ((src, self.by_source, "source"), (user, self.by_user, "user")):
            if not key:
                continue
            tracker = trackers.peek(key)
            if tracker is None or len(tracker.events) < cfg.success_after_failures:
                continue  # expiring old failures only lowers the count: no need to look closer
            n = tracker.recent(ts, window)
            if n < cfg.success_after_failures or not tracker.armed("success", ts):
                continue
            tracker.fire("success", ts, window)
            others = sorted({o for _, o, _ in tracker.events if o})
            entities: dict[str, Any] = {"src_ip": src} if src else {}
            if user:
                entities["user"] = user
            alerts.append(
                self._alert(
                    "logon_after_failures",
                    f"Successful logon after {n} failures ({what} {key})",
                    "high",
                    tracker.events[0][0],
                    ts,
                    attack=["T1110", "T1078"],
                    tactics=["credential-access", "initial-access"],
                    entities=entities,
                    evidence=[e for _, _, e in tracker.events] + [eid],
                    event_count=n + 1,
                    explanation=(
                        f"logon succeeded for {user or '?'} from {src or '?'} after {n} failures of the same "
                        f"{what} within {int(window)}s (threshold {cfg.success_after_failures})"
                    ),
                    details={
                        "failures": n,
                        "threshold": cfg.success_after_failures,
                        "window_s": window,
                        "keyed_by": what,
                        "other_party": others[:50],
                    },
                    confidence=0.8,
                )
            )
            # the burst is consumed: later successes need new failures
            tracker.events.clear()
            break

    # -------------------------------------------------------------------------- logons

    def _logon(
        self,
        tenant_profile: IdentityTenantProfile,
        ts: float,
        eid: str,
        user: str,
        host: str | None,
        src: str | None,
        src_int: bool | None,
        country: str | None,
        lat: float | None,
        lon: float | None,
        ltype: str | None,
        alerts: list[Alert],
    ) -> None:
        cfg = self.settings.identity
        warm_cfg = self.settings.warmup
        profile = self.users.profile(user)
        warm = self._warm(tenant_profile, ts)
        established = profile.logons >= warm_cfg.user_events
        interactive = ltype is None or ltype in self._offhours_types
        hour, weekday = self.clock.hour_weekday(ts)
        external = src_int is False and bool(src)
        entities: dict[str, Any] = {"user": user}
        if host:
            entities["host"] = host
        if src:
            entities["src_ip"] = src

        if (
            cfg.offhours_enabled
            and warm
            and interactive
            and not in_working_time(hour, weekday, self.info)
            and (established or not in_working_time(hour, weekday, self.info, cfg.offhours_margin_hours))
        ):
            share = profile.hour_share(hour)
            if share <= cfg.offhours_max_share:
                basis = (
                    f"{share:.1%} of the user's {profile.logons} past logons fall within an hour of it "
                    f"(<= {cfg.offhours_max_share:.0%})"
                )
                if not established:
                    needed = warm_cfg.user_events
                    basis += f"; the profile is not established yet ({profile.logons}/{needed} logons)"
                start, end = self.info.working_hours
                alerts.append(
                    self._event_alert(
                        "offhours_logon",
                        f"Logon by {user} outside working hours",
                        "medium" if established else "low",
                        ts,
                        eid,
                        attack=["T1078"],
                        tactics=["initial-access", "persistence"],
                        entities=entities,
                        explanation=(
                            f"{user} logged on at {hour:02d}:00 {self.info.timezone} on "
                            f"{_DAYS[weekday]}, outside working time {start:02d}-{end:02d} "
                            f"{'/'.join(_DAYS[d] for d in self.info.working_days)}; {basis}"
                        ),
                        details={
                            "local_hour": hour,
                            "weekday": weekday,
                            "timezone": self.info.timezone,
                            "working_hours": list(self.info.working_hours),
                            "user_hour_share": share,
                            "threshold_share": cfg.offhours_max_share,
                            "user_logons": profile.logons,
                            "logon_type": ltype,
                        },
                        confidence=0.6 if established else 0.45,
                    )
                )

        if external and country:
            if cfg.new_country_enabled and warm:
                self._new_country(tenant_profile, profile, ts, eid, user, src or "", country, entities, alerts)
            tenant_profile.add_country(country, ts)
            profile.countries.add(country, ts)
            profile.geo_logons += 1
        if external and lat is not None and lon is not None:
            if cfg.travel_enabled and profile.last_geo is not None:
                self._travel(profile, ts, eid, user, src or "", country, lat, lon, entities, alerts)
            profile.last_geo = [ts, lat, lon, country, src, eid]

        source_key = source_network(src, external) if src else None
        # an account with little history is judged only on remote-desktop logons (LogonType 10) outside
        # working time: a new hire's or an admin's first days make every host "new", but a barely known
        # account opening a desktop at night is rare
        remote_desktop = ltype == "10" and not in_working_time(hour, weekday, self.info, cfg.offhours_margin_hours)
        if cfg.first_seen_enabled and warm and interactive and (established or remote_desktop):
            for what, value, key, seen in (
                ("host", host, host, profile.hosts),
                ("source", src, source_key, profile.sources),
            ):
                if not established and what == "source":
                    continue
                if value and key and key not in seen:
                    where = f"{'to' if what == 'host' else 'from'} {value}"
                    if key != value:
                        where += f" (network {key})"
                    basis = (
                        f"{user} has {profile.logons} logons on record and none {where}"
                        if established
                        else f"remote-desktop logon {where} outside working time by {user}, an account with only "
                        f"{profile.logons} logons on record (profile not established)"
                    )
                    alerts.append(
                        self._event_alert(
                            f"first_seen_{what}",
                            f"First logon of {user} {where}",
                            "low",
                            ts,
                            eid,
                            attack=["T1078"],
                            tactics=["initial-access", "lateral-movement"],
                            entities=entities,
                            explanation=(
                                f"{basis} (remembering the last {cfg.max_items_per_user} {what}s)"
                                if established
                                else basis
                            ),
                            details={
                                what: value,
                                f"{what}_key": key,
                                "user_logons": profile.logons,
                                "profile_established": established,
                                "logon_type": ltype,
                                f"known_{what}s": len(seen),
                            },
                            confidence=0.4,
                        )
                    )
        profile.logons += 1
        profile.add_hour(hour)
        if profile.first_seen is None:
            profile.first_seen = ts
        profile.last_seen = ts
        if host:
            profile.hosts.add(host, ts)
        if source_key:
            profile.sources.add(source_key, ts)

    def _new_country(
        self,
        tenant_profile: IdentityTenantProfile,
        profile: UserProfile,
        ts: float,
        eid: str,
        user: str,
        src: str,
        country: str,
        entities: dict[str, Any],
        alerts: list[Alert],
    ) -> None:
        cfg = self.settings.identity
        tenant_known = tenant_profile.geo_logons >= cfg.new_country_min_tenant_logons
        tenant_new = tenant_known and country not in tenant_profile.countries
        tenant_share = tenant_profile.country_share(country)
        user_known = profile.geo_logons >= cfg.new_country_min_user_logons
        if user_known and country not in profile.countries:
            if tenant_known and tenant_share >= cfg.new_country_common_share:
                return  # one of the tenant's usual countries: the user is coming home, not going abroad
            known = ", ".join(profile.countries.keys())
            basis = f"{user}'s {profile.geo_logons} located logons came from {known}"
            basis += (
                f"; no user of the tenant logged on from {country} before"
                if tenant_new
                else f"; {tenant_share:.1%} of the tenant's {tenant_profile.geo_logons} located logons come from it"
                f" (< {cfg.new_country_common_share:.0%})"
            )
        elif not user_known and tenant_new:
            basis = (
                f"{user} has no located logons on record and none of the tenant's {tenant_profile.geo_logons} came "
                f"from {country}"
            )
        else:
            return
        alerts.append(
            self._event_alert(
                "new_country_logon",
                f"Logon by {user} from new country {country}",
                "high" if tenant_new else "medium",
                ts,
                eid,
                attack=["T1078"],
                tactics=["initial-access"],
                entities={**entities, "src_ip": src},
                explanation=f"{user} logged on from {src} in {country}; {basis}",
                details={
                    "country": country,
                    "user_countries": profile.countries.keys(),
                    "user_located_logons": profile.geo_logons,
                    "new_for_tenant": tenant_new,
                    "tenant_located_logons": tenant_profile.geo_logons,
                    "tenant_country_share": tenant_share,
                },
                confidence=0.7 if tenant_new else 0.6,
            )
        )

    def _travel(
        self,
        profile: UserProfile,
        ts: float,
        eid: str,
        user: str,
        src: str,
        country: str | None,
        lat: float,
        lon: float,
        entities: dict[str, Any],
        alerts: list[Alert],
    ) -> None:
        cfg = self.settings.identity
        last = profile.last_geo
        assert last is not None
        last_ts, last_lat, last_lon, last_country, last_src = last[0], last[1], last[2], last[3], last[4]
        last_eid = last[5] if len(last) > 5 else ""
        distance = haversine_km(last_lat, last_lon, lat, lon)
        if distance < cfg.travel_min_distance_km:
            return
        hours = max(ts - last_ts, 0.0) / 3600.0
        speed = distance / hours if hours > 0 else math.inf
        if speed <= cfg.travel_max_speed_kmh:
            return
        speed_text = "instantly" if math.isinf(speed) else f"at {speed:,.0f} km/h"
        alerts.append(
            self._alert(
                "impossible_travel",
                f"Impossible travel for {user}: {last_country or '?'} -> {country or '?'}",
                "high",
                last_ts,
                ts,
                attack=["T1078"],
                tactics=["initial-access"],
                entities={**entities, "src_ip": [x for x in (last_src, src) if x]},
                evidence=[e for e in (last_eid, eid) if e],
                event_count=2,
                explanation=(
                    f"{user} logged on from {last_src} ({last_country or '?'}) and "
                    f"{hours * 60:.0f} min later from {src} ({country or '?'}), "
                    f"{distance:,.0f} km apart: {speed_text} > {cfg.travel_max_speed_kmh:g} km/h"
                ),
                details={
                    "distance_km": distance,
                    "elapsed_s": ts - last_ts,
                    "speed_kmh": None if math.isinf(speed) else speed,
                    "threshold_kmh": cfg.travel_max_speed_kmh,
                    "from": {"ip": last_src, "country": last_country, "lat": last_lat, "lon": last_lon},
                    "to": {"ip": src, "country": country, "lat": lat, "lon": lon},
                },
                confidence=0.75,
            )
        )

    # --------------------------------------------------------------- account changes

    def _group_change(
        self,
        ts: float,
        eid: str,
        group: str | None,
        member: str | None,
        actor: str | None,
        host: str | None,
        alerts: list[Alert],
    ) -> None:
        name = (group or "").strip()
        if name.lower() not in self._privileged:
            return
        # both accounts are entities: the new member and the account that made the change
        # (the latter is what ties the change to the rest of an intrusion)
        users = [member or "?"]
        if actor and actor not in ("-", member) and not actor.endswith("$"):
            users.append(actor)
        entities: dict[str, Any] = {"user": users[0] if len(users) == 1 else users}
        if host:
            entities["host"] = host
        alerts.append(
            self._event_alert(
                "privileged_group_change",
                f"{member or 'An account'} added to privileged group {name}",
                "high",
                ts,
                eid,
                attack=["T1098"],
                tactics=["persistence", "privilege-escalation"],
                entities=entities,
                explanation=(
                    f"{actor or 'someone'} added {member or '?'} to {name} on {host or '?'}; "
                    f"{name} is in the privileged group list"
                ),
                details={"group": name, "member": member, "actor": actor},
                confidence=0.7,
            )
        )

    def _account_created(
        self,
        ts: float,
        eid: str,
        user: str | None,
        member: str | None,
        actor: str | None,
        host: str | None,
        code: str | None,
        alerts: list[Alert],
    ) -> None:
        account = user or member or "?"
        entities: dict[str, Any] = {"user": account}
        if host:
            entities["host"] = host
        windows = code == "4720"  # local SAM or domain: the event alone does not say which
        hour, weekday = self.clock.hour_weekday(ts)
        working = in_working_time(hour, weekday, self.info)
        # routine helpdesk work in office hours; a local account on a Linux server at night is not
        severity = {(True, True): "informational", (True, False): "low", (False, True): "low"}.get(
            (windows, working), "medium"
        )
        when = "in" if working else "outside"
        alerts.append(
            self._event_alert(
                "account_created",
                f"Account {account} created on {host or '?'}",
                severity,
                ts,
                eid,
                attack=["T1136"] if windows else ["T1136.001"],
                tactics=["persistence"],
                entities=entities,
                explanation=(
                    f"{actor or 'someone'} created account {account} on {host or '?'} {when} working time "
                    f"({hour:02d}:00 {self.info.timezone} on {_DAYS[weekday]})"
                ),
                details={"account": account, "actor": actor, "event_code": code, "working_time": working},
                confidence=0.5,
            )
        )

    # --------------------------------------------------------------------- bulk access

    def _file_access(
        self, ts: float, eid: str, user: str, host: str | None, code: str | None, alerts: list[Alert]
    ) -> None:
        cfg = self.settings.identity
        window = int(ts // cfg.bulk_window_seconds)
        profile = self.users.profile(user)
        if profile.bulk_window != window:
            if profile.bulk_window >= 0:
                profile.bulk_stat.update(profile.bulk_count)
            profile.bulk_window = window
            profile.bulk_count = 0
            profile.bulk_fired = False
            profile.bulk_evidence = []
        profile.bulk_count += 1
        if len(profile.bulk_evidence) < self.settings.max_evidence:
            profile.bulk_evidence.append(eid)
        if profile.bulk_fired:
            return
        stat = profile.bulk_stat
        warm = stat.n >= self.settings.warmup.volume_windows
        threshold = max(float(cfg.bulk_min_events), stat.threshold(cfg.bulk_sigma)) if warm else cfg.bulk_cold_events
        if profile.bulk_count < threshold:
            return
        profile.bulk_fired = True
        start = window * cfg.bulk_window_seconds
        baseline = (
            f"baseline mean {stat.mean:.0f} sd {stat.std:.0f} over {stat.n} active windows"
            if warm
            else f"no baseline yet ({stat.n}/{self.settings.warmup.volume_windows} windows): cold threshold"
        )
        entities: dict[str, Any] = {"user": user}
        if host:
            entities["host"] = host
        alerts.append(
            self._alert(
                "bulk_file_access",
                f"Bulk file access by {user}",
                "medium",
                float(start),
                ts,
                attack=["T1039" if code == "5145" else "T1005"],
                tactics=["collection"],
                entities=entities,
                evidence=list(profile.bulk_evidence),
                event_count=profile.bulk_count,
                explanation=(
                    f"{user} made {profile.bulk_count} file/share accesses since {utc(start).isoformat()} "
                    f">= threshold {threshold:.0f} ({baseline})"
                ),
                details={
                    "count": profile.bulk_count,
                    "threshold": threshold,
                    "baseline_mean": stat.mean,
                    "baseline_sd": stat.std,
                    "baseline_windows": stat.n,
                    "window_s": cfg.bulk_window_seconds,
                },
                confidence=0.6,
            )
        )

    def baseline_rows(self) -> Iterator[tuple[str, str, bytes]]:
        """``(analytic, entity, state)`` rows of every identity baseline."""
        for store in self.stores():
            for entity, data in store.rows():
                yield store.analytic, entity, data


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
