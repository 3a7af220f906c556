"""Job records, dedupe, leases and limits in Redis: every state change is one Lua script.

Key layout (all under `selfheal:`):
    job:<id>              hash: the job record (state, events, attempts, request JSON, outcome)
    job:<id>:deliveries   list: the newest delivery ids counted on the job
    jobs                  zset: job id -> created time (the index `jobs list` reads)
    delivery:<key>        string: a delivery id seen -> its job (kept >= 7 days)
    fp:<fingerprint>      string: the job that owns a fingerprint (while active, then cooldown)
    running               zset: running job id -> lease expiry
    deferred              zset: queued job id -> when it may run (installation hourly limit)
    quarantined           zset: job id -> when it was set aside
    repo-lock:<repo>      string: the one job running for a repo (expires with the lease)
    rate:<inst>:<hour>    counter: jobs started by an installation in that clock hour
    installation:<id>     hash: account, repository selection; installation:<id>:repos set
    repo-installation     hash: owner/repo -> installation id
    merges:<repo>:<day>   counter: Selfheal's merges on a repo that UTC day (policy daily cap)
    pull:<repo>#<number>  string: the last job that delivered to that pull request
    cancel:<id>           string: `/selfheal stop` asked job <id> to stop before delivering

Admission pushes the Dramatiq message in the same script that creates the record, so an
accepted job is never without its message. May import: bot.jobs, bot.errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import typing
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
import hiredis
import orjson
import redis
import redis.asyncio as aioredis
import redis.exceptions
from redis.connection import parse_url

from bot.jobs import JobRecord, JobRequest

PREFIX = "selfheal"
DRAMATIQ_NAMESPACE = "selfheal.dramatiq"
QUEUE_NAME = "selfheal-jobs"
ACTOR_NAME = "selfheal_run_job"
MAX_DELIVERIES_KEPT = 100
# The web process's deadline for one Redis exchange, so a webhook gets its 503 well inside
# Sentry's 1 s budget. One asyncio.timeout per call: redis-py's own socket_timeout would wrap
# every send in asyncio.wait_for (a task per command), which costs more than the command.
REDIS_DEADLINE = 0.8  # default; the web app passes each vendor's own (bot.web.app.DEADLINES)


def queue_key() -> str:
    return f"{DRAMATIQ_NAMESPACE}:{QUEUE_NAME}"


def queue_msgs_key() -> str:
    return f"{DRAMATIQ_NAMESPACE}:{QUEUE_NAME}.msgs"


def encode_message(job_id: str) -> tuple[str, bytes]:
    """A Dramatiq message for the job actor, as the Redis broker stores it: (redis id, bytes)."""
    redis_id = str(uuid.uuid4())
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=QUEUE_NAME,
        actor_name=ACTOR_NAME,
        args=(job_id,),
        kwargs={},
        options={"redis_message_id": redis_id},
    )
    return redis_id, message.encode()


def new_job_id() -> str:
    """Sortable, short, unique: time in ms (hex) and 6 random hex digits."""
    return f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:6]}"


_ADMIT = """
local p = ARGV[1]
local now = ARGV[2]
local dkey = ARGV[3]
local dttl = tonumber(ARGV[4])
local fp = ARGV[5]
local job_id = ARGV[6]
local keep = tonumber(ARGV[16])
if dkey ~= '' then
  local seen = redis.call('GET', p .. ':delivery:' .. dkey)
  if seen then return {'duplicate', seen, 'delivery'} end
end
local fpkey = p .. ':fp:' .. fp
local owner = redis.call('GET', fpkey)
if owner and redis.call('EXISTS', p .. ':job:' .. owner) == 1 then
  local jk = p .. ':job:' .. owner
  redis.call('HINCRBY', jk, 'events', 1)
  redis.call('HSET', jk, 'updated_at', now)
  if dkey ~= '' then
    redis.call('SET', p .. ':delivery:' .. dkey, owner, 'EX', dttl)
    redis.call('LPUSH', jk .. ':deliveries', dkey)
    redis.call('LTRIM', jk .. ':deliveries', 0, keep - 1)
  end
  return {'duplicate', owner, 'fingerprint'}
end
local jk = p .. ':job:' .. job_id
redis.call('HSET', jk, 'id', job_id, 'kind', ARGV[8], 'source', ARGV[9], 'repo', ARGV[10],
  'installation_id', ARGV[11], 'fingerprint', fp, 'state', 'queued', 'events', 1,
  'attempts', 0, 'created_at', now, 'updated_at', now, 'request', ARGV[7])
redis.call('SET', fpkey, job_id)
redis.call('ZADD', p .. ':jobs', now, job_id)
if dkey ~= '' then
  redis.call('SET', p .. ':delivery:' .. dkey, job_id, 'EX', dttl)
  redis.call('LPUSH', jk .. ':deliveries', dkey)
end
redis.call('HSET', ARGV[13], ARGV[14], ARGV[15])
redis.call('RPUSH', ARGV[12], ARGV[14])
return {'queued', job_id, ''}
"""

# The first half of _ADMIT alone, for many events at once: count each event on the job that
# owns its delivery or fingerprint. Storm events take only this path. ARGV: prefix, now,
# deliveries kept, then (delivery key, delivery ttl, fingerprint) per event; the reply is
# (status, job, via) per event, in order, so an event sees the ones before it in the batch.
_JOIN = """
local p = ARGV[1]
local now = ARGV[2]
local keep = tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 3 do
  local dkey, fp = ARGV[i], ARGV[i + 2]
  local status, job, via = 'new', '', ''
  local seen = false
  if dkey ~= '' then seen = redis.call('GET', p .. ':delivery:' .. dkey) end
  if seen then
    status, job, via = 'duplicate', seen, 'delivery'
  else
    local owner = redis.call('GET', p .. ':fp:' .. fp)
    if owner and redis.call('EXISTS', p .. ':job:' .. owner) == 1 then
      local jk = p .. ':job:' .. owner
      redis.call('HINCRBY', jk, 'events', 1)
      redis.call('HSET', jk, 'updated_at', now)
      if dkey ~= '' then
        redis.call('SET', p .. ':delivery:' .. dkey, owner, 'EX', tonumber(ARGV[i + 1]))
        redis.call('LPUSH', jk .. ':deliveries', dkey)
        redis.call('LTRIM', jk .. ':deliveries', 0, keep - 1)
      end
      status, job, via = 'duplicate', owner, 'fingerprint'
    end
  end
  out[#out + 1] = status
  out[#out + 1] = job
  out[#out + 1] = via
end
return out
"""

_JOIN_SHA = hashlib.sha1(_JOIN.encode()).hexdigest()  # what SCRIPT LOAD answers

_CLAIM = """
local p = ARGV[1]
local job_id = ARGV[2]
local now = tonumber(ARGV[3])
local worker = ARGV[4]
local lease = tonumber(ARGV[5])
local max_attempts = tonumber(ARGV[6])
local limit = tonumber(ARGV[7])
local hour = ARGV[8]
local next_hour = ARGV[9]
local inst = ARGV[10]
local jk = p .. ':job:' .. job_id
local state = redis.call('HGET', jk, 'state')
if not state then return {'gone', ''} end
if state ~= 'queued' then return {'stale', state} end
local nb = tonumber(redis.call('HGET', jk, 'not_before') or '0')
if nb > now then return {'early', tostring(nb)} end
local attempts = tonumber(redis.call('HGET', jk, 'attempts') or '0')
local repo = redis.call('HGET', jk, 'repo')
local lk = p .. ':repo-lock:' .. repo
-- Comment commands (stop, explain, merge...) only read and enqueue: they never wait behind
-- the repo's running job, so `/selfheal stop` can reach it.
local kind = redis.call('HGET', jk, 'kind')
local light = kind == 'command' or kind == 'checks'
local holder = redis.call('GET', lk)
if holder and holder ~= job_id and not light then return {'busy', holder} end
if attempts == 0 and not light then
  local rk = p .. ':rate:' .. inst .. ':' .. hour
  local used = tonumber(redis.call('GET', rk) or '0')
  if used >= limit then
    redis.call('HSET', jk, 'not_before', next_hour, 'updated_at', now,
      'note', 'waiting: installation ' .. inst .. ' started ' .. used .. ' jobs this hour')
    redis.call('ZADD', p .. ':deferred', next_hour, job_id)
    return {'limited', next_hour}
  end
  redis.call('INCR', rk)
  redis.call('EXPIRE', rk, 7200)
end
if not light then redis.call('SET', lk, job_id, 'PX', math.floor(lease * 1000)) end
redis.call('HSET', jk, 'state', 'running', 'attempts', attempts + 1, 'worker', worker,
  'started_at', now, 'updated_at', now, 'note', '')
redis.call('ZADD', p .. ':running', now + lease, job_id)
return {'claimed', tostring(attempts + 1)}
"""

_RENEW = """
local p = ARGV[1]
local job_id = ARGV[2]
local now = tonumber(ARGV[3])
local worker = ARGV[4]
local lease = tonumber(ARGV[5])
local jk = p .. ':job:' .. job_id
if redis.call('HGET', jk, 'state') ~= 'running' or redis.call('HGET', jk, 'worker') ~= worker then
  return 0
end
redis.call('ZADD', p .. ':running', now + lease, job_id)
local kind = redis.call('HGET', jk, 'kind')
if kind ~= 'command' and kind ~= 'checks' then
  local repo = redis.call('HGET', jk, 'repo')
  redis.call('SET', p .. ':repo-lock:' .. repo, job_id, 'PX', math.floor(lease * 1000))
end
return 1
"""

# Shared by finish and quarantine: release the repo, start the fingerprint cooldown, expire.
_END = """
local function end_job(p, job_id, jk, state, now, outcome, cooldown, retention)
  redis.call('HSET', jk, 'state', state, 'updated_at', now, 'finished_at', now,
    'outcome', outcome)
  redis.call('ZREM', p .. ':running', job_id)
  redis.call('ZREM', p .. ':deferred', job_id)
  local repo = redis.call('HGET', jk, 'repo')
  local lk = p .. ':repo-lock:' .. repo
  if redis.call('GET', lk) == job_id then redis.call('DEL', lk) end
  local fpkey = p .. ':fp:' .. redis.call('HGET', jk, 'fingerprint')
  if redis.call('GET', fpkey) == job_id then
    if cooldown > 0 then redis.call('EXPIRE', fpkey, cooldown) else redis.call('DEL', fpkey) end
  end
  redis.call('EXPIRE', jk, retention)
  redis.call('EXPIRE', jk .. ':deliveries', retention)
  redis.call('HINCRBY', p .. ':stats', 'jobs_' .. state, 1)
end
"""

_FINISH = (
    _END
    + """
local p = ARGV[1]
local job_id = ARGV[2]
local jk = p .. ':job:' .. job_id
if redis.call('HGET', jk, 'state') ~= 'running' or redis.call('HGET', jk, 'worker') ~= ARGV[3] then
  return 0
end
end_job(p, job_id, jk, ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
return 1
"""
)

# A running job whose lease ran out: its worker died. Requeue it, or set it aside.
_REAP = (
    _END
    + """
local p = ARGV[1]
local job_id = ARGV[2]
local now = tonumber(ARGV[3])
local max_attempts = tonumber(ARGV[4])
local jk = p .. ':job:' .. job_id
local expiry = redis.call('ZSCORE', p .. ':running', job_id)
if not expiry or tonumber(expiry) > now then return {'alive'} end
if redis.call('HGET', jk, 'state') ~= 'running' then
  redis.call('ZREM', p .. ':running', job_id)
  return {'gone'}
end
local attempts = tonumber(redis.call('HGET', jk, 'attempts') or '0')
if attempts >= max_attempts then
  local outcome = cjson.encode({ok=false, summary='quarantined: the worker died during each of '
    .. attempts .. ' attempts', decision=cjson.null, url=cjson.null, details={attempts=attempts}})
  end_job(p, job_id, jk, 'quarantined', ARGV[3], outcome, tonumber(ARGV[8]), tonumber(ARGV[9]))
  redis.call('ZADD', p .. ':quarantined', now, job_id)
  return {'quarantined'}
end
redis.call('ZREM', p .. ':running', job_id)
local repo = redis.call('HGET', jk, 'repo')
local lk = p .. ':repo-lock:' .. repo
if redis.call('GET', lk) == job_id then redis.call('DEL', lk) end
redis.call('HSET', jk, 'state', 'queued', 'worker', '', 'updated_at', ARGV[3],
  'note', 'requeued: the worker running attempt ' .. attempts .. ' stopped renewing its lease')
redis.call('HSET', ARGV[6], ARGV[7], ARGV[10])
redis.call('RPUSH', ARGV[5], ARGV[7])
return {'requeued'}
"""
)

# A queued job whose wait is over (deferred) or that needs a fresh message: push one.
_RELEASE = """
local p = ARGV[1]
local job_id = ARGV[2]
local jk = p .. ':job:' .. job_id
redis.call('ZREM', p .. ':deferred', job_id)
if redis.call('HGET', jk, 'state') ~= 'queued' then return 0 end
redis.call('HDEL', jk, 'not_before')
redis.call('HSET', ARGV[4], ARGV[5], ARGV[6])
redis.call('RPUSH', ARGV[3], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Admission:
    """What admitting an event did: `queued` a new job or joined one as a `duplicate`."""

    status: str  # queued | duplicate
    job_id: str
    reason: str = ""  # for duplicates: delivery | fingerprint


@dataclass(frozen=True)
class Claim:
    """The worker's attempt to start a job: claimed (with attempt number) or why not."""

    status: str  # claimed | gone | stale | early | busy | limited
    detail: str = ""

    @property
    def attempt(self) -> int:
        return int(self.detail) if self.status == "claimed" else 0


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _join_head() -> list[Any]:
    """The arguments of _JOIN before its per-event groups."""
    return [PREFIX, repr(time.time()), MAX_DELIVERIES_KEPT]


def _admit_args(
    request: JobRequest, delivery_key: str | None, delivery_ttl: int
) -> list[str | bytes | float | int]:
    redis_id, message = encode_message(request.job_id)
    return [
        PREFIX,
        repr(request.created_at or time.time()),
        delivery_key or "",
        delivery_ttl,
        request.fingerprint,
        request.job_id,
        orjson.dumps(request.to_dict()),
        request.kind,
        request.source,
        request.repo,
        request.installation_id or "",
        queue_key(),
        queue_msgs_key(),
        redis_id,
        message,
        MAX_DELIVERIES_KEPT,
    ]


class _Waiter(typing.Protocol):
    """What waits for one reply: an asyncio future, or a _JoinBatch."""

    def done(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


class _RespProtocol(asyncio.Protocol):
    """Replies of one Redis connection, matched to waiting calls in order (RESP is FIFO)."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[_Waiter] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.outgoing: list[bytes] = []

    def send(self, command: bytes, future: _Waiter, *, now: bool = False) -> None:
        """Queue a command; everything queued in one event-loop tick is written at once.
        `now` writes it (and anything queued before it) at once, for a caller that is
        itself the end of a tick's gathering (a join batch)."""
        self.waiters.append(future)
        if now:
            self.outgoing.append(command)
            self._flush()
            return
        if not self.outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self.outgoing.append(command)

    def _flush(self) -> None:
        if not self.outgoing:  # written early by a `now` send
            return
        data, self.outgoing = b"".join(self.outgoing), []
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiters.popleft()
            if not future.done():  # a caller past its deadline no longer waits
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_exception(ConnectionError("the Redis connection closed"))


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no reply from Redis within the deadline"))


class _Multiplexer:
    """One pipelined connection for the web process's hot path: each script call is written
    as it comes and its reply read in order, so concurrent webhooks share round trips and
    no connection-pool or per-command task overhead is paid (redis-py costs ~300 us of CPU
    per call here; this ~20 us)."""

    def __init__(self, url: str) -> None:
        options = parse_url(url)
        self.host = str(options.get("host") or "127.0.0.1")
        self.port = int(options.get("port") or 6379)
        self.db = int(options.get("db") or 0)
        self.username = options.get("username")
        self.password = options.get("password")
        self.protocol: _RespProtocol | None = None
        self.lock = asyncio.Lock()
        self.batch: _JoinBatch | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def supports(url: str) -> bool:
        return url.startswith("redis://")

    async def _connect(self) -> _RespProtocol:
        protocol = self.protocol
        if protocol is not None and not protocol.closed:
            return protocol
        async with self.lock:
            if self.protocol is None or self.protocol.closed:
                loop = asyncio.get_running_loop()
                _, fresh = await loop.create_connection(_RespProtocol, self.host, self.port)
                self.protocol = fresh
                if self.password:
                    auth = [self.username, self.password] if self.username else [self.password]
                    await self._send(fresh, "AUTH", *auth)
                if self.db:
                    await self._send(fresh, "SELECT", self.db)
            return self.protocol

    @staticmethod
    async def _send(protocol: _RespProtocol, *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.send(hiredis.pack_command(args), future)
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            raise redis.exceptions.ResponseError(str(reply))
        return reply

    async def evalsha(
        self, script: str, sha: str, args: list[Any], deadline: float = REDIS_DEADLINE
    ) -> Any:
        """One script call, answered or failed (TimeoutError) within `deadline` seconds. The
        deadline is a timer on the reply's future, not an asyncio.timeout around the call:
        that would arm and disarm task cancellation on every webhook."""
        protocol = self.protocol
        if protocol is None or protocol.closed:
            async with asyncio.timeout(deadline):
                protocol = await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        timer = loop.call_later(deadline, _expire, future)
        protocol.send(hiredis.pack_command(("EVALSHA", sha, 0, *args)), future)
        try:
            reply = await future
        finally:
            timer.cancel()
        if not isinstance(reply, hiredis.ReplyError):
            return reply
        if not str(reply).startswith("NOSCRIPT"):
            raise redis.exceptions.ResponseError(str(reply))
        async with asyncio.timeout(deadline):  # Redis restarted or was flushed: load it again
            await self._send(protocol, "SCRIPT", "LOAD", script)
            return await self._send(protocol, "EVALSHA", sha, 0, *args)

    def join_batch(self, deadline: float) -> _JoinBatch:
        """The _JOIN call this event-loop tick is gathering (one is opened and its send
        scheduled on first use): a storm's concurrent webhooks share one script call."""
        batch = self.batch
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self.batch = _JoinBatch(self, loop.create_future(), deadline)
            loop.call_soon(self._send_batch)
        elif deadline < batch.deadline:
            batch.deadline = deadline
        return batch

    def _send_batch(self) -> None:
        batch, self.batch = self.batch, None
        if batch is None:
            return
        protocol = self.protocol
        if protocol is None or protocol.closed:  # first call, or Redis went away: reconnect
            self.retry(batch)
            return
        batch.timer = asyncio.get_running_loop().call_later(batch.deadline, batch.expire)
        protocol.send(hiredis.pack_command(("EVALSHA", _JOIN_SHA, 0, *batch.args)), batch, now=True)

    def retry(self, batch: _JoinBatch) -> None:
        """Send a batch through `evalsha` (which connects and reloads a flushed script)."""

        async def again() -> None:
            try:
                reply = await self.evalsha(_JOIN, _JOIN_SHA, batch.args, batch.deadline)
            except Exception as exc:  # every waiter of the batch gets the failure
                if not batch.future.done():
                    batch.future.set_exception(exc)
            else:
                if not batch.future.done():
                    batch.future.set_result(reply)

        task = asyncio.get_running_loop().create_task(again())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()


class _JoinBatch:
    """The joins asked for in one event-loop tick: one EVALSHA carries them all and one future
    answers them all; each caller reads its own (status, job, via) from the reply."""

    __slots__ = ("args", "deadline", "future", "mux", "timer")

    def __init__(self, mux: _Multiplexer, future: asyncio.Future[Any], deadline: float) -> None:
        self.mux = mux
        self.future = future
        self.deadline = deadline
        self.args = _join_head()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, delivery_key: str, delivery_ttl: int, fingerprint: str) -> int:
        """Add one event; returns where its three reply fields start."""
        at = len(self.args) - 3
        self.args += (delivery_key, delivery_ttl, fingerprint)
        return at

    # The _Waiter side: the connection hands the reply (or its loss) here.
    def done(self) -> bool:
        return self.future.done()

    def set_result(self, reply: Any, /) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not isinstance(reply, hiredis.ReplyError):
            self.future.set_result(reply)
        elif str(reply).startswith("NOSCRIPT"):  # Redis restarted or was flushed
            self.mux.retry(self)
        else:
            self.future.set_exception(redis.exceptions.ResponseError(str(reply)))

    def set_exception(self, exception: BaseException, /) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.future.set_exception(exception)

    def expire(self) -> None:
        _expire(self.future)


class AsyncIntake:
    """The web process's view of Redis: admit events, record installations, readiness."""

    def __init__(self, url: str) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=REDIS_DEADLINE
        )
        self._admit = self.client.register_script(_ADMIT)
        self._join = self.client.register_script(_JOIN)
        self._mux = _Multiplexer(url) if _Multiplexer.supports(url) else None

    async def _script(self, script: Any, args: list[Any], deadline: float) -> Any:
        if self._mux is not None:
            return await self._mux.evalsha(script.script, script.sha, args, deadline)
        async with asyncio.timeout(deadline):  # rediss://, unix://: redis-py's own connections
            return await script(args=args)

    async def join(
        self,
        fingerprint: str,
        delivery_key: str | None,
        delivery_ttl: int,
        deadline: float = REDIS_DEADLINE,
    ) -> Admission | None:
        """Count the event on the job that owns its delivery or fingerprint; None if none.

        Joins made in the same event-loop tick go to Redis as one script call."""
        if self._mux is None:
            args = [*_join_head(), delivery_key or "", delivery_ttl, fingerprint]
            async with asyncio.timeout(deadline):  # rediss://, unix://: redis-py's connections
                reply = await self._join(args=args)
            at = 0
        else:
            batch = self._mux.join_batch(deadline)
            at = batch.add(delivery_key or "", delivery_ttl, fingerprint)
            reply = await batch.future
        if reply[at] == b"new":
            return None
        return Admission(reply[at].decode(), reply[at + 1].decode(), reply[at + 2].decode())

    async def admit(
        self,
        request: JobRequest,
        delivery_key: str | None,
        delivery_ttl: int,
        deadline: float = REDIS_DEADLINE,
    ) -> Admission:
        args = _admit_args(request, delivery_key, delivery_ttl)
        result = await self._script(self._admit, args, deadline)
        return Admission(_s(result[0]), _s(result[1]), _s(result[2]))

    async def record_installation(
        self,
        installation_id: str,
        info: dict[str, Any] | None,
        added: Iterable[str] = (),
        removed: Iterable[str] = (),
        replace: bool = False,
    ) -> None:
        """Remember an installation and the repositories it grants (None info: deleted)."""
        key = f"{PREFIX}:installation:{installation_id}"
        repos_key = f"{key}:repos"
        added, removed = list(added), list(removed)
        async with (
            asyncio.timeout(REDIS_DEADLINE * 4),
            self.client.pipeline(transaction=True) as pipe,
        ):
            if info is None:
                old = await self.client.smembers(repos_key)
                pipe.delete(key, repos_key)
                if old:
                    pipe.hdel(f"{PREFIX}:repo-installation", *[_s(r) for r in old])
            else:
                pipe.hset(key, mapping={k: json.dumps(v) for k, v in info.items()})
                if replace:
                    pipe.delete(repos_key)
                if added:
                    pipe.sadd(repos_key, *added)
                    pipe.hset(
                        f"{PREFIX}:repo-installation", mapping=dict.fromkeys(added, installation_id)
                    )
                if removed:
                    pipe.srem(repos_key, *removed)
                    pipe.hdel(f"{PREFIX}:repo-installation", *removed)
            await pipe.execute()

    async def ping(self) -> bool:
        async with asyncio.timeout(REDIS_DEADLINE):
            return bool(await self.client.ping())

    async def counts(self) -> dict[str, int]:
        """Queue depth and sizes of the running, deferred and quarantined sets (for /metrics)."""
        async with asyncio.timeout(REDIS_DEADLINE), self.client.pipeline(transaction=False) as pipe:
            pipe.llen(queue_key())
            pipe.zcard(f"{PREFIX}:running")
            pipe.zcard(f"{PREFIX}:deferred")
            pipe.zcard(f"{PREFIX}:quarantined")
            pipe.hgetall(f"{PREFIX}:stats")
            depth, running, deferred, quarantined, stats = await pipe.execute()
        counts = {
            "queue_depth": int(depth),
            "running": int(running),
            "deferred": int(deferred),
            "quarantined": int(quarantined),
        }
        for key, value in stats.items():
            counts[_s(key)] = int(value)
        return counts

    async def close(self) -> None:
        if self._mux is not None:
            self._mux.close()
        await self.client.aclose()


class JobStore:
    """The worker's and the CLI's view of Redis (synchronous)."""

    def __init__(self, url: str, client: redis.Redis | None = None) -> None:
        self.client: redis.Redis = client or redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2
        )
        self._admit = self.client.register_script(_ADMIT)
        self._claim = self.client.register_script(_CLAIM)
        self._renew = self.client.register_script(_RENEW)
        self._finish = self.client.register_script(_FINISH)
        self._reap = self.client.register_script(_REAP)
        self._release = self.client.register_script(_RELEASE)

    # -- admission (tests and tools; the web process uses AsyncIntake) --
    def admit(
        self, request: JobRequest, delivery_key: str | None = None, delivery_ttl: int = 604800
    ) -> Admission:
        result = self._admit(args=_admit_args(request, delivery_key, delivery_ttl))
        return Admission(_s(result[0]), _s(result[1]), _s(result[2]))

    # -- the worker's protocol --
    def claim(
        self,
        job_id: str,
        worker: str,
        lease: float,
        max_attempts: int,
        jobs_per_hour: int,
        installation: str,
        now: float | None = None,
    ) -> Claim:
        now = time.time() if now is None else now
        hour = int(now // 3600)
        result = self._claim(
            args=[
                PREFIX,
                job_id,
                repr(now),
                worker,
                lease,
                max_attempts,
                jobs_per_hour,
                hour,
                (hour + 1) * 3600,
                installation,
            ]
        )
        return Claim(_s(result[0]), _s(result[1]))

    def renew(self, job_id: str, worker: str, lease: float) -> bool:
        return bool(self._renew(args=[PREFIX, job_id, repr(time.time()), worker, lease]))

    def finish(
        self,
        job_id: str,
        worker: str,
        state: str,
        outcome: dict[str, Any],
        cooldown: int,
        retention: int,
    ) -> bool:
        """Record the end of a run; False when the lease was lost (another worker took over)."""
        return bool(
            self._finish(
                args=[
                    PREFIX,
                    job_id,
                    worker,
                    state,
                    repr(time.time()),
                    json.dumps(outcome, default=str),
                    cooldown,
                    retention,
                ]
            )
        )

    def expired_leases(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return [_s(x) for x in self.client.zrangebyscore(f"{PREFIX}:running", "-inf", now)]

    def reap(self, job_id: str, max_attempts: int, cooldown: int, retention: int) -> str:
        redis_id, message = encode_message(job_id)
        result = self._reap(
            args=[
                PREFIX,
                job_id,
                repr(time.time()),
                max_attempts,
                queue_key(),
                queue_msgs_key(),
                redis_id,
                cooldown,
                retention,
                message,
            ]
        )
        return _s(result[0])

    def due_deferred(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return [_s(x) for x in self.client.zrangebyscore(f"{PREFIX}:deferred", "-inf", now)]

    def defer(self, job_id: str, until: float) -> None:
        """Offer a queued job again at `until` (its repo is busy)."""
        self.client.zadd(f"{PREFIX}:deferred", {job_id: until})

    def release(self, job_id: str) -> bool:
        redis_id, message = encode_message(job_id)
        return bool(
            self._release(args=[PREFIX, job_id, queue_key(), queue_msgs_key(), redis_id, message])
        )

    def note(self, job_id: str, text: str) -> None:
        self.client.hset(
            f"{PREFIX}:job:{job_id}", mapping={"note": text[:500], "updated_at": time.time()}
        )

    def save_request(self, request: JobRequest) -> None:
        """Store an enriched request back on the record (for `jobs show` and later attempts)."""
        self.client.hset(
            f"{PREFIX}:job:{request.job_id}",
            "request",
            json.dumps(request.to_dict(), separators=(",", ":")),
        )

    def installation_for(self, repo: str) -> str | None:
        value = self.client.hget(f"{PREFIX}:repo-installation", repo)
        return _s(value) if value is not None else None

    # -- reading records --
    def get(self, job_id: str) -> JobRecord | None:
        key = f"{PREFIX}:job:{job_id}"
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.lrange(f"{key}:deliveries", 0, -1)
            raw, deliveries = pipe.execute()
        if not raw:
            return None
        data = {_s(k): _s(v) for k, v in raw.items()}
        return _record(data, [_s(d) for d in deliveries])

    def request(self, job_id: str) -> JobRequest | None:
        raw = self.client.hget(f"{PREFIX}:job:{job_id}", "request")
        if raw is None:
            return None
        return JobRequest.from_dict(json.loads(raw))

    def recent(self, limit: int = 50) -> list[JobRecord]:
        """The newest jobs first; index entries whose record expired are dropped."""
        ids = [_s(x) for x in self.client.zrevrange(f"{PREFIX}:jobs", 0, max(limit, 1) * 2)]
        records: list[JobRecord] = []
        gone: list[str] = []
        for job_id in ids:
            record = self.get(job_id)
            if record is None:
                gone.append(job_id)
            elif len(records) < limit:
                records.append(record)
        if gone:
            self.client.zrem(f"{PREFIX}:jobs", *gone)
        return records

    def find(self, prefix: str) -> list[str]:
        """Job ids starting with `prefix` (so `jobs show` accepts a unique prefix)."""
        if self.client.exists(f"{PREFIX}:job:{prefix}"):
            return [prefix]
        return [
            _s(x) for x in self.client.zrange(f"{PREFIX}:jobs", 0, -1) if _s(x).startswith(prefix)
        ]

    def quarantined(self) -> list[str]:
        return [_s(x) for x in self.client.zrange(f"{PREFIX}:quarantined", 0, -1)]

    # -- what jobs leave behind for later jobs and commands --
    def merges_today(self, repo: str, now: float | None = None) -> int:
        """Auto-merges Selfheal made on `repo` this UTC day (the policy's daily cap)."""
        value = self.client.get(_merges_key(repo, now))
        return int(value) if value is not None else 0

    def count_merge(self, repo: str, now: float | None = None) -> int:
        key = _merges_key(repo, now)
        with self.client.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * 86400)
            count, _ = pipe.execute()
        return int(count)

    def remember_pull(
        self, repo: str, number: int, job_id: str, retention: int = 90 * 86400
    ) -> None:
        """The last job that delivered to pull request `number` (for merge, explain, revise)."""
        self.client.set(f"{PREFIX}:pull:{repo}#{number}", job_id, ex=retention)

    def job_for_pull(self, repo: str, number: int) -> str | None:
        value = self.client.get(f"{PREFIX}:pull:{repo}#{number}")
        return _s(value) if value is not None else None

    def request_cancel(self, job_id: str, ttl: int = 86400) -> None:
        """`/selfheal stop`: the job ends before it delivers (or before it starts)."""
        self.client.set(f"{PREFIX}:cancel:{job_id}", "1", ex=ttl)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.client.exists(f"{PREFIX}:cancel:{job_id}"))

    def try_lock(self, name: str, seconds: int) -> bool:
        """A named lock held for `seconds` (periodic tasks that one worker should run)."""
        return bool(self.client.set(f"{PREFIX}:lock:{name}", "1", nx=True, ex=max(seconds, 1)))


def _merges_key(repo: str, now: float | None = None) -> str:
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
    return f"{PREFIX}:merges:{repo}:{day}"


def _record(data: dict[str, str], deliveries: list[str]) -> JobRecord:
    outcome = json.loads(data["outcome"]) if data.get("outcome") else None
    request = json.loads(data["request"]) if data.get("request") else None
    return JobRecord(
        id=data.get("id", ""),
        kind=data.get("kind", ""),
        source=data.get("source", ""),
        repo=data.get("repo", ""),
        fingerprint=data.get("fingerprint", ""),
        state=data.get("state", ""),
        events=int(data.get("events") or 0),
        attempts=int(data.get("attempts") or 0),
        created_at=float(data.get("created_at") or 0),
        updated_at=float(data.get("updated_at") or 0),
        installation_id=data.get("installation_id") or None,
        outcome=outcome,
        note=data.get("note") or None,
        deliveries=tuple(deliveries),
        request=request,
    )
