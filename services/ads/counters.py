"""Budgets and frequency caps in Redis: one Lua script per decision, so every check and its
update are one atomic step across every ads process.

Keys, under the settings' prefix (one Redis primary; the script computes keys, so no Cluster):

    ads:c:<campaign>:n          settled impressions, all time
    ads:c:<campaign>:d:<day>    settled impressions of a UTC day (expire after 2 days)
    ads:c:<campaign>:r          live reservations: ZSET "<slot>|<customer>" -> expiry (ms)
    ads:c:<campaign>:f:<cust>   the customer's holds: ZSET slot -> time (ms), reserved or settled
    ads:s:<slot>                a settled slot's answer (its day, -1: no room), for an hour

Every call first drops the campaign's lapsed reservations (and their holds on caps). A
reservation is admitted when settled + live reservations < each budget and the customer's
holds in the rolling period < the cap; settling a live reservation converts it (its room was
already counted); a lapsed one needs room again. So the settled counts never pass a limit:
the largest overshoot is zero (docs/ads.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from libs.errors import CacheUnavailable
from libs.redis_client import connect
from services.ads.domain import Campaign, day_of
from services.ads.ports import BUDGET, CAP, DAILY, Counters

__all__ = ["RedisCounters"]

_SCRIPT = """
local p, cid, cust, slot = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local total, daily = tonumber(ARGV[7]), tonumber(ARGV[8])
local capn, capp = tonumber(ARGV[9]), tonumber(ARGV[10])
local day, today, mode, keep = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local base = p .. 'ads:c:' .. cid
local rkey = base .. ':r'
local nkey = base .. ':n'
local fkey = base .. ':f:' .. cust
local skey = p .. 'ads:s:' .. slot
local lapsed = redis.call('ZRANGEBYSCORE', rkey, '-inf', now)
for _, m in ipairs(lapsed) do
  local sep = string.find(m, '|', 1, true)
  redis.call('ZREM', base .. ':f:' .. string.sub(m, sep + 1), string.sub(m, 1, sep - 1))
end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', rkey, '-inf', now) end
local member = slot .. '|' .. cust
if mode == 'settle' then
  local done = redis.call('GET', skey)
  if done then return tonumber(done) end
  if redis.call('ZREM', rkey, member) == 1 then
    redis.call('INCR', nkey)
    redis.call('INCR', base .. ':d:' .. day)
    redis.call('EXPIRE', base .. ':d:' .. day, 172800)
    redis.call('SET', skey, day, 'EX', keep)
    return tonumber(day)
  end
end
local pending = redis.call('ZCARD', rkey)
local verdict = 1
if total > 0 and tonumber(redis.call('GET', nkey) or '0') + pending >= total then
  verdict = -1
elseif daily > 0
    and tonumber(redis.call('GET', base .. ':d:' .. today) or '0') + pending >= daily then
  verdict = -3
elseif capn > 0 and cust ~= '' then
  redis.call('ZREMRANGEBYSCORE', fkey, '-inf', now - capp)
  if redis.call('ZCARD', fkey) >= capn then verdict = -2 end
end
if mode == 'settle' then
  if verdict == 1 then
    redis.call('INCR', nkey)
    redis.call('INCR', base .. ':d:' .. today)
    redis.call('EXPIRE', base .. ':d:' .. today, 172800)
    if capn > 0 and cust ~= '' then
      redis.call('ZADD', fkey, now, slot)
      redis.call('PEXPIRE', fkey, capp + ttl)
    end
    redis.call('SET', skey, today, 'EX', keep)
    return tonumber(today)
  end
  redis.call('SET', skey, -1, 'EX', keep)
  return -1
end
if verdict ~= 1 then return verdict end
redis.call('ZADD', rkey, now + ttl, member)
if capn > 0 and cust ~= '' then
  redis.call('ZADD', fkey, now, slot)
  redis.call('PEXPIRE', fkey, capp + ttl)
end
return 1
"""
_MERGE = """
local src, dst = KEYS[1], KEYS[2]
if redis.call('EXISTS', src) == 0 then return 0 end
local ttl = math.max(redis.call('PTTL', src), redis.call('PTTL', dst))
redis.call('ZUNIONSTORE', dst, 2, dst, src, 'AGGREGATE', 'MAX')
if ttl > 0 then redis.call('PEXPIRE', dst, ttl) end
redis.call('DEL', src)
return 1
"""
# A settled slot's answer is kept for the retries in flight; a later retry of a recorded
# impression is answered from the database before it reaches the counters.
_KEEP_SECONDS = 3600


class RedisCounters(Counters):
    def __init__(self, url: str, prefix: str) -> None:
        self._redis = connect(url, socket_timeout=0.5, connect_timeout=0.5)
        self._prefix = prefix
        self._script = self._redis.register_script(_SCRIPT)
        self._merge = self._redis.register_script(_MERGE)

    async def _run(
        self,
        mode: str,
        campaign: Campaign,
        customer_id: str,
        slot_id: str,
        now: float,
        ttl: float,
        day: int,
        daily_limit: int,
    ) -> int:
        args: list[Any] = [
            self._prefix,
            campaign.campaign_id,
            customer_id,
            slot_id,
            int(now * 1000),
            int(ttl * 1000),
            campaign.total_impressions,
            daily_limit,
            campaign.cap_impressions if customer_id else 0,
            int(campaign.cap_period * 1000),
            day,
            day_of(now),
            mode,
            _KEEP_SECONDS,
        ]
        try:
            return int(await self._script(keys=[], args=args))
        except RedisError as exc:
            raise CacheUnavailable(f"ads counters: {type(exc).__name__}") from exc

    async def reserve(
        self,
        campaign: Campaign,
        customer_id: str,
        slot_id: str,
        now: float,
        ttl: float,
        daily_limit: int,
    ) -> str:
        verdict = await self._run(
            "reserve", campaign, customer_id, slot_id, now, ttl, day_of(now), daily_limit
        )
        return {1: "", -2: CAP, -3: DAILY}.get(verdict, BUDGET)

    async def settle(
        self, campaign: Campaign, customer_id: str, slot_id: str, selected_at: float, now: float
    ) -> int | None:
        verdict = await self._run(
            "settle",
            campaign,
            customer_id,
            slot_id,
            now,
            0.0,
            day_of(selected_at),
            campaign.daily_impressions,
        )
        return verdict if verdict >= 0 else None

    async def spent(self, campaign: Campaign) -> int:
        try:
            value = await self._redis.get(f"{self._prefix}ads:c:{campaign.campaign_id}:n")
        except RedisError as exc:
            raise CacheUnavailable(f"ads counters: {type(exc).__name__}") from exc
        return int(value or 0)

    async def release_lapsed(self, now: float) -> int:
        return 0  # every script call drops its campaign's lapsed reservations first

    async def erase_customer(self, customer_id: str, campaign_ids: Sequence[str]) -> None:
        keys = [f"{self._prefix}ads:c:{cid}:f:{customer_id}" for cid in campaign_ids]
        try:
            for start in range(0, len(keys), 500):
                await self._redis.delete(*keys[start : start + 500])
        except RedisError as exc:
            raise CacheUnavailable(f"ads counters: {type(exc).__name__}") from exc

    async def merge_customer(self, source: str, target: str, campaign_ids: Sequence[str]) -> None:
        try:
            for cid in campaign_ids:
                base = f"{self._prefix}ads:c:{cid}:f:"
                await self._merge(keys=[base + source, base + target], args=[])
        except RedisError as exc:
            raise CacheUnavailable(f"ads counters: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self._redis.aclose()
