/**
 * Lua sources of every state transition. Each job transition touches the keys of ONE queue (one hash tag,
 * one Cluster slot). Exceptions, listed in docs/redis.md ("Limits", "Flows"): `enqueue` and `fire` also write the
 * global id index and queue registry, `bulk` with action `move` touches a second queue, and flow scripts
 * (FLOW, ENQUEUE_FLOW, BLOCK) touch the global flow keys and other queues' jobs. Conventions for
 * queue scripts:
 *
 * - `KEYS[1]` = the queue's meta hash (`<qp>m`); `qp` (the queue's key prefix) is derived from it, so the
 *   slot is declared and every other key is built from the same hash tag.
 * - `ARGV[1]` = pub/sub channel, `ARGV[2]` = queue name; script-specific arguments follow.
 * - Time is always the server's (`TIME`), so worker hosts with skewed clocks agree on lease expiry.
 * - Numbers written back are formatted with `fmt` (`%.0f`): Redis would otherwise turn a Lua number into
 *   `%.14g` text, which loses digits of a 16-digit seq.
 *
 * Job hash fields (short names keep small hashes in the compact listpack encoding; the payload lives in its
 * own string key `<qp>p:<id>` when over 60 bytes, so a 1 KiB payload does not convert the hash to a full
 * hashtable; a small payload is the hash field `p`):
 * s state, t task, pr priority, ra runAt, ca createdAt, sq seq, sa startedAt, fa finishedAt, a attempt,
 * ma maxAttempts, bo backoff, to timeoutMs, uk uniqueKey, uu uniqueUntil, tg tags, rt retention, pi parentId,
 * lt leaseToken, le leaseExpiresAt, w workerId, cr cancelRequested, r result, pg progress, e errors, rs reason;
 * flows (FLOW): fd has dependents, fu has dependencies, pd pending dependencies, bi batchId, fb counted in batch.
 * limits: lk limitKey (the key indexes <qp>kw: kq ka: kr: kh are described at kw_add and in docs/redis.md).
 */
import { MAX_QUOTED_ERROR } from "../../core/flows.js";
import type { JobState } from "../../core/job.js";
import {
  CANCEL_AT_ONCE_STATES,
  CANCELLED_REASON,
  CANCELLED_WHILE_ACTIVE_REASON,
  MOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRIED_REASON,
  RETRYABLE_STATES,
} from "../../core/states.js";
import { splitDefinitions, withHelpers } from "./lua-helpers.js";

/** A Lua string literal of a constant, built into a script's text. */
function luaString(text: string): string {
  return `'${text.replace(/[\\']/g, "\\$&")}'`;
}

/** A Lua set of states, `{ dead = true, … }`, from a constant of core/states.ts: `SET[s]` tests membership. */
function luaStateSet(states: readonly JobState[]): string {
  return `{ ${states.map((state) => `${state} = true`).join(", ")} }`;
}

/** Events past the cap a write tolerates before it trims (the cap is approximate by this much, per write). */
export const EVENTS_SLACK = 100;
/** Most events one write trims (a lowered cap is reached over several writes, never in one long script). */
const EVENTS_TRIM_MOST = 10_000;

/**
 * Deletes the oldest entries of the events stream beyond `keep`, at most `most`, exactly; returns how many.
 * The last one goes by XDEL, which records its id as the stream's max-deleted-entry-id (XTRIM does not on
 * Redis 7.0): `readEvents` resets a reader whose `after` is older.
 */
const TRIM_EVENTS = `
local function trim_events(key, len, keep, most)
  local n = math.min(len - keep, most)
  if n <= 0 then return 0 end
  if n > 1 then redis.call('XTRIM', key, 'MAXLEN', '=', len - n + 1) end
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
  if #first == 0 then return n - 1 end
  redis.call('XDEL', key, first[1][1])
  return n
end
`;

/** Helpers shared by every queue script. */
const PRELUDE = `
local qp = string.sub(KEYS[1], 1, -2)
local CHANNEL = ARGV[1]
local QUEUE = ARGV[2]
local SET = { waiting = 'w', scheduled = 's', active = 'a', completed = 'c', dead = 'd', cancelled = 'x', blocked = 'b' }

local TIME = redis.call('TIME')
local function now_ms()
  return tonumber(TIME[1]) * 1000 + math.floor(tonumber(TIME[2]) / 1000)
end
-- Microseconds since the epoch (< 2^53 until the year 2255): the floor of a new job's seq, so seqs of
-- different queues (separate counters, separate slots) still follow creation order.
local function now_us()
  return tonumber(TIME[1]) * 1000000 + tonumber(TIME[2])
end
local function fmt(n) return string.format('%.0f', n) end
local function jkey(id) return qp .. 'j:' .. id end
-- The global hash tag's key prefix ('{<prefix>}:'), from the channel '{<prefix>}:signal', and the key prefix
-- of any queue: flow scripts reach the global flow keys and other queues' jobs (docs/redis.md, "Flows").
local G = string.sub(CHANNEL, 1, -7)
local PFX = string.sub(G, 2, -3)
local IDS = G .. 'ids'
local function xqp(q) return '{' .. PFX .. ':q:' .. q .. '}:' end
-- Flow keys' prefix (docs/redis.md, "Flows" and "Redis Cluster"): the global tag on one server; on a
-- cluster this queue's own tag, since a flow there never leaves its queue (the store refuses one that would).
local FG = G
if CLUSTER then FG = qp end
-- The queue of job id, for flows: the id index on one server; on a cluster, this queue when the job is in
-- it (the id index is in another slot there, and a flow's jobs are all in this queue).
local function qof(id)
  if CLUSTER then
    if redis.call('EXISTS', qp .. 'j:' .. id) == 1 then return QUEUE end
    return false
  end
  return redis.call('HGET', IDS, id)
end

-- Waiting member: fixed-width (priority + 1e6, runAt, seq) then the id. All scores are 0, so the ZSET
-- sorts by these bytes: priority, then runAt, then seq. The id starts at byte 38.
local function wmember(pr, ra, sq, id)
  return string.format('%07.0f%014.0f%016.0f', tonumber(pr) + 1000000, math.max(tonumber(ra), 0), tonumber(sq)) .. id
end
local function wid(member) return string.sub(member, 38) end

-- Limits (docs/redis.md, "Limits"). A job's limit key is its hash field 'lk'. Only jobs WITH a key pay for
-- these indexes; every key is under the queue's tag (p = its key prefix), so one slot:
-- <p>kw:<key> ZSET: the key's waiting jobs, same members as <p>w (claim order within the key);
-- <p>kq ZSET: one entry per key that has waiting jobs, its head's 37-byte order prefix then the key, so a
--   limited claim walks keys in the order of their first job and skips a full key in one step, whatever
--   its backlog; <p>m 'kwn' = how many waiting jobs have a key (ZCARD w - kwn = waiting jobs without one);
-- <p>ka:<key> SET: the key's active jobs (claimed ahead included).
local function kq_entry(member, lk) return string.sub(member, 1, 37) .. lk end
local function kw_add(p, lk, member)
  if not lk then return end
  local kw = p .. 'kw:' .. lk
  if redis.call('ZADD', kw, 0, member) == 0 then return end
  redis.call('HINCRBY', p .. 'm', 'kwn', 1)
  if redis.call('ZRANK', kw, member) == 0 then
    local nxt = redis.call('ZRANGE', kw, 1, 1)[1]
    if nxt then redis.call('ZREM', p .. 'kq', kq_entry(nxt, lk)) end
    redis.call('ZADD', p .. 'kq', 0, kq_entry(member, lk))
  end
end
local function kw_rem(p, lk, member)
  if not lk then return end
  local kw = p .. 'kw:' .. lk
  if redis.call('ZREM', kw, member) == 0 then return end
  redis.call('HINCRBY', p .. 'm', 'kwn', -1)
  -- No ZRANK first (a claim removes the key's head almost always): dropping the member's entry is a no-op
  -- when it was not the head, and re-adding the head's entry then adds what is already there.
  redis.call('ZREM', p .. 'kq', kq_entry(member, lk))
  local head = redis.call('ZRANGE', kw, 0, 0)[1]
  if head then redis.call('ZADD', p .. 'kq', 0, kq_entry(head, lk)) end
end
local function ka_rem(p, lk, id) if lk then redis.call('SREM', p .. 'ka:' .. lk, id) end end
-- A job of a queue with limits left active: a slot (queue or key) may have opened, so the fleet's workers
-- look again (a plain queue's freed slot is its own worker's to fill; the claim that follows needs no wake).
local function wake_if_limited()
  if redis.call('HEXISTS', qp .. 'm', 'lim') == 1 then redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE) end
end
-- The job's limit key: lk as given (false = none, from an HMGET), or read when the caller did not say (nil).
local function lk_of(id, lk)
  if lk == nil then return redis.call('HGET', jkey(id), 'lk') end
  return lk
end
-- Waiting index writes of queue prefix p (this queue or another), key indexes included.
local function wadd(p, id, pr, ra, sq, lk)
  local member = wmember(pr, ra, sq, id)
  redis.call('ZADD', p .. 'w', 0, member)
  kw_add(p, lk, member)
end
local function wrem(p, id, pr, ra, sq, lk)
  local member = wmember(pr, ra, sq, id)
  redis.call('ZREM', p .. 'w', member)
  kw_rem(p, lk, member)
end
-- Out of active (this queue): the active and held indexes, and the key's active set.
local function arem(p, id, lk)
  redis.call('ZREM', p .. 'a', id)
  redis.call('ZREM', p .. 'h', id)
  ka_rem(p, lk, id)
end

-- Adds / removes a job to / from the index of its state. f = { pr, ra, sq } for waiting; lk = its limit key
-- (false = none; nil = read it from the hash).
local function index(id, s, score, pr, ra, sq, lk)
  if s == 'waiting' then
    wadd(qp, id, pr, ra, sq, lk_of(id, lk))
  else
    redis.call('ZADD', qp .. SET[s], score, id)
  end
end
local function unindex(id, s, pr, ra, sq, lk)
  if s == 'waiting' then
    wrem(qp, id, pr, ra, sq, lk_of(id, lk))
  elseif SET[s] then
    redis.call('ZREM', qp .. SET[s], id)
    if s == 'active' then
      redis.call('ZREM', qp .. 'h', id)
      ka_rem(qp, lk_of(id, lk), id)
    end
  end
end

-- A held job (claimed ahead, not started: active with no 'sa') is waiting as users see it. <qp>h indexes
-- the held jobs (counts, listings, bulk actions); every way out of active leaves it too.
local function seen_state(s, sa)
  if s == 'active' and not sa then return 'waiting' end
  return s
end
-- Undoes a held job's claim: back to waiting, its attempt given back; its holder's start is then refused.
local function unhold(id, h, pr, ra, sq)
  local lk = redis.call('HGET', h, 'lk')
  arem(qp, id, lk)
  local a = tonumber(redis.call('HGET', h, 'a') or '1')
  redis.call('HSET', h, 's', 'waiting', 'a', fmt(math.max(a - 1, 0)))
  redis.call('HDEL', h, 'le')
  index(id, 'waiting', 0, pr, ra, sq, lk)
end

-- Batched writes: one ZADD / ZREM / DEL per 1,000 arguments instead of one call per job (Lua's C stack
-- allows a few thousand unpacked values).
local function many(cmd, key, args)
  for i = 1, #args, 1000 do
    local j = math.min(i + 999, #args)
    if key then redis.call(cmd, key, unpack(args, i, j)) else redis.call(cmd, unpack(args, i, j)) end
  end
end
local function push(t, ...)
  for _, v in ipairs({ ... }) do t[#t + 1] = v end
end

-- Appends one AttemptError (JSON text) to the job's error list without decoding the list.
local function push_error(h, err)
  local e = redis.call('HGET', h, 'e')
  if e and #e > 2 then e = string.sub(e, 1, -2) .. ',' .. err .. ']' else e = '[' .. err .. ']' end
  redis.call('HSET', h, 'e', e)
end

-- Deletes a job and every trace of it in this queue's slot. Returns true when it existed.
local function delete_job(id)
  local h = jkey(id)
  local f = redis.call('HMGET', h, 's', 'pr', 'ra', 'sq', 'uk', 'fd', 'fu', 'pi', 'lk')
  if not f[1] then return false end
  unindex(id, f[1], f[2], f[3], f[4], f[9])
  -- Flow keys (global slot), only for jobs that have them: edges from / to it, its children, its parent's list.
  if f[6] then redis.call('DEL', FG .. 'fdn:' .. id) end
  if f[7] then redis.call('DEL', FG .. 'fup:' .. id) end
  -- (A parent's children list empties as its children go: an empty ZSET is no key.)
  if f[8] then redis.call('ZREM', FG .. 'fch:' .. f[8], id) end
  redis.call('ZREM', qp .. 'all', id)
  redis.call('ZREM', qp .. 'e', id)
  redis.call('ZREM', qp .. 'n', id)
  if f[5] and redis.call('HGET', qp .. 'u', f[5]) == id then redis.call('HDEL', qp .. 'u', f[5]) end
  redis.call('DEL', h, qp .. 'p:' .. id, qp .. 'l:' .. id)
  return true
end

-- Optional string arguments arrive as '-' (absent) or '=' .. value.
local function opt(v) if string.sub(v, 1, 1) == '=' then return string.sub(v, 2) end return nil end

-- payloadField filter, from its argument: opt JSON '[path, equals]' (cjson keeps JSON null as cjson.null, so
-- equals = null is a value, not a missing one). nil = no filter.
local function field_filter(v)
  v = opt(v)
  if not v then return nil end
  local pf = cjson.decode(v)
  return { path = pf[1], equals = pf[2] }
end
-- The payload at pf.path equals pf.equals, same JSON type (7 ~= '7'; null only matches JSON null). Path
-- segments are object keys taken as data; an array is never entered (its keys are numbers, not strings).
local function payload_matches(id, pf)
  local text = redis.call('HGET', jkey(id), 'p') or redis.call('GET', qp .. 'p:' .. id)
  if not text then return false end
  local ok, v = pcall(cjson.decode, text)
  if not ok then return false end
  for _, key in ipairs(pf.path) do
    if type(v) ~= 'table' then return false end
    v = v[key]
    if v == nil then return false end
  end
  return type(v) == type(pf.equals) and v == pf.equals
end

-- Filter check for listing and bulk actions. states = set (table) or nil for any; prefix = literal id
-- prefix; pf = field_filter(...); fl = flow_filter(...).
local function matches(id, states, task, tag, before, prefix, pf, fl)
  if prefix and string.sub(id, 1, #prefix) ~= prefix then return nil end
  local f = redis.call('HMGET', jkey(id), 's', 't', 'tg', 'ca', 'sq', 'sa', 'bi', 'pi')
  if not f[1] then return nil end
  if fl and ((fl.bi and f[7] ~= fl.bi) or (fl.pi and f[8] ~= fl.pi)) then return nil end
  if states and not states[seen_state(f[1], f[6])] then return nil end
  if task and f[2] ~= task then return nil end
  if before and tonumber(f[4]) >= before then return nil end
  if tag then
    if not f[3] then return nil end
    local found = false
    for _, t in ipairs(cjson.decode(f[3])) do if t == tag then found = true break end end
    if not found then return nil end
  end
  if pf and not payload_matches(id, pf) then return nil end
  return f
end

-- batchId / parentId filters from their two opt arguments; nil = neither.
local function flow_filter(bi, pi)
  bi, pi = opt(bi), opt(pi)
  if not bi and not pi then return nil end
  return { bi = bi, pi = pi }
end

local function state_set(csv)
  if csv == '' then return nil end
  local set = {}
  for s in string.gmatch(csv, '[^,]+') do set[s] = true end
  return set
end

local function job_reply(id)
  local h = jkey(id)
  local fields = redis.call('HGETALL', h)
  if #fields == 0 then return false end
  local payload = redis.call('HGET', h, 'p') or redis.call('GET', qp .. 'p:' .. id) or false
  return { id, fields, payload }
end
`;

/**
 * Fleet events (core/fleet-events.ts), for the scripts that write them (`eventScript`): KEYS[2] = the events
 * stream, ARGV[3] = the most entries it keeps ('' = events off: nothing is written), so their own arguments
 * start at ARGV[4]. One entry per event, written by XADD in the transition's own script: an event exists
 * exactly when its transition did, and stream ids (server ms - seq) grow in commit order. Every entry has
 * the same fields in the same order (the stream then stores the names once per node): t type, q queue,
 * j job id, k task, a attempt, d data JSON ('' = null). The event's time is its id's ms.
 *
 * Bounding: the first event of a script, and every 100th after it, checks the length; past the cap by
 * EVENTS_SLACK it trims exactly the oldest surplus (at most EVENTS_TRIM_MOST at once). The newest id trimmed
 * must become the stream's max-deleted-entry-id (readers need it to know they lost events: reset), which
 * XTRIM / XADD MAXLEN do not record on Redis 7.0 but XDEL does: so XTRIM leaves the last one and XDEL
 * deletes it. No entry is read but that one, so a trim costs a fraction of an XADD per event.
 */
const EVENTS = `
local EVENTS, EV_MAX = KEYS[2], tonumber(ARGV[3])
local ev_count = 0
${TRIM_EVENTS}
local function emit(kind, queue, id, task, attempt, data)
  if not EV_MAX then return end
  redis.call('XADD', EVENTS, '*', 't', kind, 'q', queue, 'j', id or '', 'k', task or '', 'a', attempt or '', 'd', data or '')
  ev_count = ev_count + 1
  if ev_count % 100 == 1 then
    local len = redis.call('XLEN', EVENTS)
    if len > EV_MAX + ${EVENTS_SLACK} then trim_events(EVENTS, len, EV_MAX, ${EVENTS_TRIM_MOST}) end
  end
end
`;

/**
 * Flows (core/flows.ts), for the scripts whose transitions can make a job final (`flowScript`). Keys, all
 * documented in docs/redis.md ("Flows"): global slot `{p}:fup:<id>` HASH dependency id → policy char (f / c
 * / i) .. resolved ('0' / '1'); `{p}:fdn:<id>` HASH dependent id → policy char; `{p}:fch:<id>` ZSET child
 * id by seq; `{p}:bt:<id>` HASH the batch; `{p}:batches` ZSET batch id by createdAt. Job hash fields: `fd`
 * '1' = some edge points at it (settle looks for edges only then), `fu` '1' = it has edges of its own, `pd`
 * unresolved dependencies, `bi` batch id, `fb` '1' = counted in its batch. A dependent, child or callback
 * job may live in another queue: found through the id index, changed in its own queue's keys.
 *
 * A script queues each job it made final with `fl_final(queue, id, outcome)` and calls `fl_settle(now)`
 * before it returns (before deleting a job it settles: settle reads the job's hash). Settle walks a work
 * list, so a chain that fails to its end, or a cancel that cascades to grand-children, is a loop, never a
 * recursion. Batch counters are summed per batch over the whole script call and written once per batch.
 */
const FLOW = `
local CANCEL_AT_ONCE_FL = ${luaStateSet(CANCEL_AT_ONCE_STATES)}
local fl_work, fl_done, fl_batch, fl_wake, fl_cancel = {}, 0, {}, {}, false
local function fl_final(q, id, outcome) fl_work[#fl_work + 1] = { q, id, outcome } end
local function fl_delta(bid, k, n)
  local b = fl_batch[bid]
  if not b then
    b = { tot = 0, c = 0, d = 0, x = 0 }
    fl_batch[bid] = b
  end
  b[k] = b[k] + n
end
-- The latest error message of a job (its last AttemptError), else its reason, else nil.
local function fl_error(h)
  local e = redis.call('HGET', h, 'e')
  if e then
    local ok, list = pcall(cjson.decode, e)
    if ok and type(list) == 'table' and type(list[#list]) == 'table' and type(list[#list].message) == 'string' then
      return list[#list].message
    end
  end
  return redis.call('HGET', h, 'rs') or nil
end
-- dependencyFailedMessage (core/flows.ts).
local function fl_message(id, task, state, err)
  local m = 'dependency ' .. id .. ' (' .. (task or '') .. ') ended ' .. state
  -- Cut at MAX_QUOTED_ERROR (core/flows.ts; Lua counts bytes): along a chain each link quotes the one before.
  if err and err ~= '' then
    if #err > ${MAX_QUOTED_ERROR} then err = string.sub(err, 1, ${MAX_QUOTED_ERROR}) .. '…' end
    m = m .. ': ' .. err
  end
  return m
end
-- A new edge id → r (policy pol, its first letter) written with the dependency's state now (enqueue and
-- block): '1' resolved (final or gone) or '0' pending, and the kill message when the policy is fail and the
-- dependency did not complete. r learns it has a dependent (fdn, its 'fd' flag) when it exists.
local function fl_add_edge(id, r, pol)
  local rq = qof(r)
  local rh = rq and (xqp(rq) .. 'j:' .. r)
  local rf = rh and redis.call('HMGET', rh, 's', 't') or {}
  local res, kill = '1', nil
  if not rf[1] then
    if pol == 'f' then kill = fl_message(r, nil, 'deleted', nil) end
  elseif rf[1] == 'dead' or rf[1] == 'cancelled' then
    if pol == 'f' then kill = fl_message(r, rf[2], rf[1], fl_error(rh)) end
  elseif rf[1] ~= 'completed' then
    res = '0'
  end
  redis.call('HSET', FG .. 'fup:' .. id, r, pol .. res)
  if rf[1] then
    redis.call('HSET', FG .. 'fdn:' .. r, id, pol)
    redis.call('HSET', rh, 'fd', '1')
  end
  return res, kill
end
-- Next seq of queue q (the rule of ENQUEUE: max(previous + 1, now in µs)), written back at once.
local function fl_seq(q)
  local m = xqp(q) .. 'm'
  local seq = math.max(tonumber(redis.call('HGET', m, 'seq') or '0') + 1, now_us())
  redis.call('HSET', m, 'seq', fmt(seq))
  return seq
end
-- A blocked dependent goes dead by policy (its attempt error says which dependency); settled in turn.
local function fl_kill(q, id, h, msg, now)
  local f = redis.call('HMGET', h, 'a', 't')
  local p = xqp(q)
  redis.call('ZREM', p .. 'b', id)
  redis.call('HSET', h, 's', 'dead', 'fa', fmt(now), 'rs', msg)
  push_error(h, cjson.encode({ attempt = tonumber(f[1] or '0'), outcome = 'dependency-failed',
    name = 'DependencyFailedError', code = 'DEPENDENCY_FAILED', message = msg, at = now }))
  redis.call('ZADD', p .. 'd', fmt(now), id)
  emit('dead', q, id, f[2], f[1] or '0', '{"error":' .. cjson.encode(msg) .. ',"reason":' .. cjson.encode(msg) .. '}')
  fl_final(q, id, 'dead')
end
-- A blocked dependent with nothing left to wait for: waiting (scheduled while its runAt is ahead).
local function fl_release(q, id, h, now)
  local f = redis.call('HMGET', h, 'pr', 'ra', 'sq', 't', 'a', 'lk')
  local p = xqp(q)
  redis.call('ZREM', p .. 'b', id)
  local state = 'waiting'
  if tonumber(f[2] or '0') > now then state = 'scheduled' end
  redis.call('HSET', h, 's', state)
  if state == 'waiting' then
    wadd(p, id, f[1], f[2], f[3], f[6])
    fl_wake[q] = true
  else
    redis.call('ZADD', p .. 's', f[2], id)
  end
  emit('unblocked', q, id, f[4], f[5], '{"state":"' .. state .. '"}')
end
-- Rule 4: an unfinished child of a cancelled parent is cancelled at once, or by request when running.
local function fl_cancel_child(parent, q, id, now)
  local p = xqp(q)
  local h = p .. 'j:' .. id
  local f = redis.call('HMGET', h, 's', 'pr', 'ra', 'sq', 'sa', 'cr', 't', 'a', 'lk')
  local s = f[1]
  if not s then return end
  if s == 'active' and not f[5] then
    -- Held (claimed ahead, not started): undo the claim; its holder's start is then refused.
    arem(p, id, f[9])
    redis.call('HDEL', h, 'le')
    redis.call('HSET', h, 'a', fmt(math.max(tonumber(f[8] or '1') - 1, 0)))
    s = 'held'
  elseif CANCEL_AT_ONCE_FL[s] then
    if s == 'waiting' then wrem(p, id, f[2], f[3], f[4], f[9]) else redis.call('ZREM', p .. SET[s], id) end
  elseif s == 'active' then
    if f[6] ~= '1' then
      redis.call('HSET', h, 'cr', '1')
      fl_cancel = true
    end
    return
  else
    return
  end
  local reason = 'cancelled with its parent ' .. parent
  redis.call('HSET', h, 's', 'cancelled', 'fa', fmt(now), 'rs', reason)
  redis.call('ZADD', p .. 'x', fmt(now), id)
  emit('cancelled', q, id, f[7], nil, '{"reason":' .. cjson.encode(reason) .. '}')
  fl_final(q, id, 'cancelled')
end
-- Writes a new waiting job into queue q (a batch callback): skipped when the id exists (idempotent).
-- fields = the template's hash fields (flat list).
local function fl_create(q, id, payload, fields, now)
  if qof(id) then return end
  local p = xqp(q)
  local h = p .. 'j:' .. id
  local seq = fl_seq(q)
  local sq = fmt(seq)
  local at = fmt(now)
  redis.call('HSET', h, 's', 'waiting', 'sq', sq, 'ca', at, 'ra', at, unpack(fields))
  if #payload <= 60 then redis.call('HSET', h, 'p', payload) else redis.call('SET', p .. 'p:' .. id, payload) end
  local f = redis.call('HMGET', h, 'pr', 't', 'pi')
  redis.call('ZADD', p .. 'all', sq, id)
  redis.call('ZADD', p .. 'w', 0, wmember(f[1] or '0', at, sq, id))
  if f[3] then redis.call('ZADD', FG .. 'fch:' .. f[3], sq, id) end
  if not CLUSTER then redis.call('HSET', IDS, id, q) end
  if not CLUSTER then redis.call('SADD', G .. 'queues', q) end
  emit('enqueued', q, id, f[2], nil, '{"state":"waiting"}')
  fl_wake[q] = true
end
-- Fires a batch callback once: its job from the stored template, payload BatchCallbackPayload.
local function fl_fire(bid, bk, ev, v, now)
  if redis.call('HEXISTS', bk, 'cf:' .. ev) == 1 then return end
  local tpl = redis.call('HGET', bk, 'cb:' .. ev)
  if not tpl then return end
  redis.call('HSET', bk, 'cf:' .. ev, fmt(now))
  local t = cjson.decode(tpl)
  local payload = '{"batchId":' .. cjson.encode(bid) .. ',"event":"' .. ev .. '","total":' .. fmt(v[1]) ..
    ',"completed":' .. fmt(v[2]) .. ',"dead":' .. fmt(v[3]) .. ',"cancelled":' .. fmt(v[4]) ..
    ',"data":' .. (redis.call('HGET', bk, 'data') or 'null') .. '}'
  fl_create(t[1], bid .. ':' .. ev, payload, t[2], now)
end
-- One write per batch per counter for the whole script call, then the callbacks the new counts call for.
local function fl_flush(bid, dl, now)
  local bk = FG .. 'bt:' .. bid
  if redis.call('EXISTS', bk) == 0 then return end
  for _, k in ipairs({ 'tot', 'c', 'd', 'x' }) do
    if dl[k] ~= 0 then redis.call('HINCRBY', bk, k, dl[k]) end
  end
  local r = redis.call('HMGET', bk, 'tot', 'c', 'd', 'x', 'fa')
  local v = { tonumber(r[1] or '0'), tonumber(r[2] or '0'), tonumber(r[3] or '0'), tonumber(r[4] or '0') }
  if v[3] > 0 then fl_fire(bid, bk, 'death', v, now) end
  if not r[5] and v[1] - v[2] - v[3] - v[4] <= 0 then
    redis.call('HSET', bk, 'fa', fmt(now))
    fl_fire(bid, bk, 'complete', v, now)
    if v[3] == 0 and v[4] == 0 then fl_fire(bid, bk, 'success', v, now) end
  end
end
-- Settles every job queued by fl_final (rule 2: its unresolved edges, each exactly once; rule 3: its batch,
-- the first time; rule 4: children of a cancelled job), including the jobs this makes final in turn.
local function fl_run(now)
  while fl_done < #fl_work do
    fl_done = fl_done + 1
    local q, id, outcome = fl_work[fl_done][1], fl_work[fl_done][2], fl_work[fl_done][3]
    local h = xqp(q) .. 'j:' .. id
    local f = redis.call('HMGET', h, 'fd', 'bi', 'fb', 't')
    if f[1] == '1' then
      local why = nil
      local dn = redis.call('HGETALL', FG .. 'fdn:' .. id)
      for k = 1, #dn, 2 do
        local x = dn[k]
        local up = FG .. 'fup:' .. x
        local e = redis.call('HGET', up, id)
        -- Read and marked resolved in this one script: a second settle of the same job finds it resolved.
        if e and string.sub(e, 2, 2) == '0' then
          local pol = string.sub(e, 1, 1)
          redis.call('HSET', up, id, pol .. '1')
          local xq = qof(x)
          local xh = xq and (xqp(xq) .. 'j:' .. x)
          local xs = xh and redis.call('HGET', xh, 's')
          if xs then
            local pd = redis.call('HINCRBY', xh, 'pd', -1)
            -- Only a blocked dependent moves: one an operator cancelled, deleted or moved on keeps its state.
            if xs == 'blocked' then
              if outcome ~= 'completed' and pol == 'f' then
                why = why or fl_message(id, f[4], outcome, fl_error(h))
                fl_kill(xq, x, xh, why, now)
              elseif pd <= 0 then
                fl_release(xq, x, xh, now)
              end
            end
          end
        end
      end
    end
    if f[2] and f[3] ~= '1' then
      redis.call('HSET', h, 'fb', '1')
      local k = 'x'
      if outcome == 'completed' then k = 'c' elseif outcome == 'dead' then k = 'd' end
      fl_delta(f[2], k, 1)
    end
    if outcome == 'cancelled' then
      for _, c in ipairs(redis.call('ZRANGE', FG .. 'fch:' .. id, 0, -1)) do
        local cq = qof(c)
        if cq then fl_cancel_child(id, cq, c, now) end
      end
    end
  end
end
local function fl_settle(now)
  fl_run(now)
  for bid, dl in pairs(fl_batch) do fl_flush(bid, dl, now) end
  fl_batch = {}
  for q in pairs(fl_wake) do redis.call('PUBLISH', CHANNEL, 'j' .. q) end
  fl_wake = {}
  if fl_cancel then redis.call('PUBLISH', CHANNEL, 'c') end
  fl_cancel = false
end
`;

const ENQUEUE = `
-- ARGV[4] = job count n, ARGV[5] = shape count k, then k shapes of 14 fields: idempotent, task, priority,
-- runAt, maxAttempts, backoff, timeoutMs, uniqueKey, uniqueStates (',a,b,'), uniqueUntil, tags, retention,
-- parentId ('' = none), limitKey ('' = none); then n jobs of 3: id, payload, shape index (0-based). Jobs of a batch mostly share
-- every field but id and payload, so each distinct shape is sent and prepared once (codec.ts).
-- Returns per job '1' .. state (created) or '0' .. state .. ':' .. id of the existing job returned.
-- KEYS[3] = the global id index, KEYS[4] = the queue registry: written here (entries of created jobs only)
-- so a single-queue enqueue is one call. (On Cluster these two writes would go as separate commands.)
-- Each created job writes its 'enqueued' event (KEYS[2]); a job returned instead (idempotent id, unique
-- key) writes none.
local now = now_ms()
local n, k = tonumber(ARGV[4]), tonumber(ARGV[5])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local created_at = fmt(now)
local shapes = {}
for j = 0, k - 1 do
  local b = 6 + j * 14
  local idem, task, pr, ra, ma, bo, to, uk, us, uu, tg, rt, pi, lk = unpack(ARGV, b, b + 13)
  local state = 'waiting'
  if tonumber(ra) > now then state = 'scheduled' end
  -- The hash fields of every job of this shape; [2] = state, [4] = seq (per job), payload last when inline.
  local f = { 's', state, 'sq', '', 'ca', created_at, 't', task, 'pr', pr, 'ra', ra, 'ma', ma, 'rt', rt }
  if bo ~= '' then f[#f + 1] = 'bo'; f[#f + 1] = bo end
  if to ~= '' then f[#f + 1] = 'to'; f[#f + 1] = to end
  if uu ~= '' then f[#f + 1] = 'uu'; f[#f + 1] = uu end
  if tg ~= '' then f[#f + 1] = 'tg'; f[#f + 1] = tg end
  if pi ~= '' then f[#f + 1] = 'pi'; f[#f + 1] = pi end
  if uk ~= '' then f[#f + 1] = 'uk'; f[#f + 1] = uk end
  if lk ~= '' then f[#f + 1] = 'lk'; f[#f + 1] = lk end
  local fp = { unpack(f) }
  fp[#fp + 1] = 'p'; fp[#fp + 1] = ''
  shapes[j] = {
    idem = idem == '1', uk = uk, us = us, state = state, ra = ra, f = f, fp = fp, task = task, pi = pi,
    lk = lk ~= '' and lk or false,
    edata = '{"state":"' .. state .. '"}',
    -- wmember's first two parts (priority, runAt); the seq part is added per job.
    wpre = string.format('%07.0f%014.0f', tonumber(pr) + 1000000, math.max(tonumber(ra), 0)),
  }
end
local out = {}
local created = false
local all, waiting, scheduled, ids = {}, {}, {}, {}
local jb = 6 + k * 14
for i = 0, n - 1 do
  local b = jb + i * 3
  local id, payload, sh = ARGV[b], ARGV[b + 1], shapes[tonumber(ARGV[b + 2])]
  local h = jkey(id)
  -- Only a caller-chosen id can already exist (generated ids are unique), so only those pay the lookup.
  local existing = nil
  if sh.idem then existing = redis.call('HGET', h, 's') end
  local holder = nil
  if not existing and sh.uk ~= '' and sh.us ~= '' then
    local hid = redis.call('HGET', qp .. 'u', sh.uk)
    if hid then
      local hf = redis.call('HMGET', jkey(hid), 's', 'uu', 'sa')
      local hs = hf[1] and seen_state(hf[1], hf[3])
      if hs and string.find(sh.us, ',' .. hs .. ',', 1, true) and (not hf[2] or tonumber(hf[2]) > now) then
        holder = { hid, hs }
      end
    end
  end
  if existing then
    out[#out + 1] = '0' .. existing .. ':' .. id
  elseif holder then
    out[#out + 1] = '0' .. holder[2] .. ':' .. holder[1]
  else
    seq = math.max(seq + 1, now_us())
    local sq = fmt(seq)
    -- A small payload stays inside the hash (still listpack-encoded: values <= 64 bytes); a large one gets
    -- its own string key so the hash does not convert to a full hashtable (~30% more memory per job).
    local f
    if #payload <= 60 then
      f = sh.fp
      f[#f] = payload
    else
      f = sh.f
      redis.call('SET', qp .. 'p:' .. id, payload)
    end
    f[4] = sq
    redis.call('HSET', h, unpack(f))
    local na = #all
    all[na + 1] = sq; all[na + 2] = id
    ids[na + 1] = id; ids[na + 2] = QUEUE
    if sh.state == 'scheduled' then
      local ns = #scheduled
      scheduled[ns + 1] = sh.ra; scheduled[ns + 2] = id
    else
      local nw = #waiting
      local member = sh.wpre .. string.format('%016.0f', seq) .. id
      waiting[nw + 1] = '0'; waiting[nw + 2] = member
      kw_add(qp, sh.lk, member)
    end
    -- Written at once (not batched) so a later job of this batch with the same key sees it.
    if sh.uk ~= '' then redis.call('HSET', qp .. 'u', sh.uk, id) end
    -- The parent's children list (global slot, docs/redis.md "Flows"): a cancelled parent cancels them.
    if sh.pi ~= '' then redis.call('ZADD', FG .. 'fch:' .. sh.pi, sq, id) end
    out[#out + 1] = '1' .. sh.state
    emit('enqueued', QUEUE, id, sh.task, nil, sh.edata)
    created = true
  end
end
if created then
  if KEYS[3] then many('HSET', KEYS[3], ids) end
  if KEYS[4] then redis.call('SADD', KEYS[4], QUEUE) end
  many('ZADD', qp .. 'all', all)
  many('ZADD', qp .. 'w', waiting)
  many('ZADD', qp .. 's', scheduled)
  redis.call('HSET', KEYS[1], 'seq', fmt(seq))
  redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE)
end
return out
`;

/**
 * Fires a schedule: the enqueue script's arguments, then schedule name, dueAt, nextAt ('' = none),
 * lastTickAt. Compare-and-set on the schedule's next tick (kept in this queue's slot), then the enqueue
 * itself, in one script: a tick fires once however many schedulers race. Returns false when the stored next
 * tick is not dueAt (someone fired it first) or the schedule is paused (<qp>schp), else what the enqueue
 * returns.
 */
const FIRE = `
do
  local tail = 6 + tonumber(ARGV[5]) * 14 + tonumber(ARGV[4]) * 3
  local name = ARGV[tail]
  if redis.call('HGET', qp .. 'schn', name) ~= ARGV[tail + 1] then return false end
  if redis.call('HEXISTS', qp .. 'schp', name) == 1 then return false end
  if ARGV[tail + 2] == '' then
    redis.call('HDEL', qp .. 'schn', name)
  else
    redis.call('HSET', qp .. 'schn', name, ARGV[tail + 2])
  end
  redis.call('HSET', qp .. 'scht', name, ARGV[tail + 3])
end
${ENQUEUE}`;

/** Most key entries (`<qp>kq`) one limited claim visits, and most waiting members it scans for jobs without a key. */
export const CLAIM_KEY_WALK = 1000;
export const CLAIM_SCAN = 1000;

const CLAIM = `
-- ARGV[4] = limit, [5] = workerId, [6] = leaseMs, [7] = most scheduled jobs to promote per call, [8] = how
-- many of the jobs taken start at once ('sa' set, an 'active' event); the rest are held ahead (no 'sa', in
-- <qp>h, no event until start() starts them).
-- Returns JSON: [[id, [flat hash fields], payload | false (when the payload is the hash field p)], ...]
-- Limits (docs/redis.md, "Limits"): <qp>m 'lim' = the queue's limits (JSON { c, r, rw, kc, kr, krw }), 'khu'
-- = the latest key hold's end. With neither (a plain queue) the claim is the head of <qp>w, as always; the
-- meta HMGET it already made tells it, no extra call.
local now = now_ms()
local m = redis.call('HMGET', KEYS[1], 'paused', 'until', 'lim', 'khu')
if m[1] == '1' or (m[2] and tonumber(m[2]) > now) then return '[]' end
local due = redis.call('ZRANGEBYSCORE', qp .. 's', '-inf', fmt(now), 'LIMIT', 0, tonumber(ARGV[7]))
if #due > 0 then
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', jkey(id), 'pr', 'ra', 'sq', 'lk')
    if f[1] then
      redis.call('HSET', jkey(id), 's', 'waiting')
      wadd(qp, id, f[1], f[2], f[3], f[4])
    end
  end
  redis.call('ZREM', qp .. 's', unpack(due))
end
local want = tonumber(ARGV[4])
local lim = nil
if m[3] then lim = cjson.decode(m[3]) end
local holds = m[4] and tonumber(m[4]) > now
local members
local rate_ws, rate_used = nil, 0
if not lim and not holds then
  members = redis.call('ZRANGE', qp .. 'w', 0, want - 1)
else
  lim = lim or {}
  -- Queue concurrency: active counts jobs claimed ahead (they hold a slot).
  if lim.c then want = math.min(want, lim.c - redis.call('ZCARD', qp .. 'a')) end
  -- Queue rate: a fixed window by this server's clock; a claim of n jobs consumes n.
  if lim.r then
    rate_ws = now - (now % lim.rw)
    local r = redis.call('HMGET', KEYS[1], 'rw', 'rc')
    if tonumber(r[1] or '-1') == rate_ws then rate_used = tonumber(r[2] or '0') end
    want = math.min(want, lim.r - rate_used)
  end
  if want <= 0 then return '[]' end
  if not lim.kc and not lim.kr and not holds then
    members = redis.call('ZRANGE', qp .. 'w', 0, want - 1)
  else
    -- How many more jobs of a key may be claimed now (0: skip the key: held, full or out of rate).
    local function room(key)
      if holds then
        local u = redis.call('ZSCORE', qp .. 'kh', key)
        if u and tonumber(u) > now then return 0 end
      end
      local n = want
      if lim.kc then
        local ka = qp .. 'ka:' .. key
        local busy = redis.call('SCARD', ka)
        -- At the limit: check the members (a safety net: every way out of active removes its job).
        if busy >= lim.kc and busy <= 64 then
          for _, id in ipairs(redis.call('SMEMBERS', ka)) do
            local f = redis.call('HMGET', jkey(id), 's', 'lk')
            if f[1] ~= 'active' or f[2] ~= key then
              redis.call('SREM', ka, id)
              busy = busy - 1
            end
          end
        end
        n = math.min(n, lim.kc - busy)
      end
      if lim.kr and n > 0 then
        local used = 0
        local v = redis.call('GET', qp .. 'kr:' .. key)
        if v then
          local sep = string.find(v, ':', 1, true)
          if tonumber(string.sub(v, 1, sep - 1)) == now - (now % lim.krw) then used = tonumber(string.sub(v, sep + 1)) end
        end
        n = math.min(n, lim.kr - used)
      end
      return n
    end
    -- Jobs with a key: walk the keys in the order of their first waiting job (<qp>kq), skipping a key
    -- that may not run in one step however long its backlog. The first n allowed jobs come from the first
    -- n allowed keys, the i-th (0-based) giving at most n - i.
    local cands = {}
    local keys_taken, visited, cursor, seen = 0, 0, '-', {}
    while keys_taken < want and visited < ${CLAIM_KEY_WALK} do
      local page = redis.call('ZRANGEBYLEX', qp .. 'kq', cursor, '+', 'LIMIT', 0, 100)
      if #page == 0 then break end
      for _, e in ipairs(page) do
        cursor = '(' .. e
        visited = visited + 1
        local key = string.sub(e, 38)
        if not seen[key] then
          local kw = qp .. 'kw:' .. key
          local head = redis.call('ZRANGE', kw, 0, 0)[1]
          if not head or string.sub(head, 1, 37) ~= string.sub(e, 1, 37) then
            -- A stale entry (kw_add / kw_rem keep <qp>kq exact; this repairs rather than trusts): move it
            -- to the key's head, later in this walk (an entry is never after its key's head).
            redis.call('ZREM', qp .. 'kq', e)
            if head then redis.call('ZADD', qp .. 'kq', 0, kq_entry(head, key)) end
          else
            seen[key] = true
            local n = math.min(room(key), want - keys_taken)
            if n == 1 then
              cands[#cands + 1] = head -- the key's first job, already read: no second ZRANGE
              keys_taken = keys_taken + 1
            elseif n > 1 then
              for _, member in ipairs(redis.call('ZRANGE', kw, 0, n - 1)) do cands[#cands + 1] = member end
              keys_taken = keys_taken + 1
            end
          end
        end
        if keys_taken >= want or visited >= ${CLAIM_KEY_WALK} then break end
      end
    end
    -- Jobs without a key: <qp>w minus the keyed ones, looked for only when there are some (kwn counts the
    -- keyed waiting jobs), scanning at most CLAIM_SCAN members.
    local keyed = tonumber(redis.call('HGET', KEYS[1], 'kwn') or '0')
    local nokey = redis.call('ZCARD', qp .. 'w') - keyed
    if nokey > 0 then
      if keyed <= 0 then
        for _, member in ipairs(redis.call('ZRANGE', qp .. 'w', 0, want - 1)) do cands[#cands + 1] = member end
      else
        local found, offset = 0, 0
        while found < want and found < nokey and offset < ${CLAIM_SCAN} do
          local page = redis.call('ZRANGE', qp .. 'w', offset, offset + 99)
          if #page == 0 then break end
          offset = offset + #page
          for _, member in ipairs(page) do
            if not redis.call('HGET', jkey(wid(member)), 'lk') then
              cands[#cands + 1] = member
              found = found + 1
              if found >= want then break end
            end
          end
        end
      end
    end
    -- Claim order among the allowed jobs: (priority, runAt, seq), compared as numbers (Lua's string '<'
    -- follows the server's locale).
    local function order(a, b)
      for _, r in ipairs({ { 1, 7 }, { 8, 21 }, { 22, 37 } }) do
        local x, y = tonumber(string.sub(a, r[1], r[2])), tonumber(string.sub(b, r[1], r[2]))
        if x ~= y then return x < y end
      end
      return false
    end
    table.sort(cands, order)
    members = {}
    for i = 1, math.min(want, #cands) do members[i] = cands[i] end
  end
end
if #members == 0 then return '[]' end
many('ZREM', qp .. 'w', members)
local exp = fmt(now + tonumber(ARGV[6]))
local started = fmt(now)
local worker = ARGV[5]
local wdata = '{"workerId":' .. cjson.encode(worker) .. '}'
local out, active, heldIds = {}, {}, {}
local per_key = {}
local starting = tonumber(ARGV[8])
for _, member in ipairs(members) do
  local id = wid(member)
  local h = jkey(id)
  -- One read per job: the hash as stored, which is also the reply, with the claim's writes appended (the
  -- codec takes a field's last value) and a deleted field left out. Empty: the job is gone.
  local fields = redis.call('HGETALL', h)
  local lt, a, rs, p, t, lk, sa
  for i = 1, #fields, 2 do
    local k = fields[i]
    if k == 'lt' then lt = fields[i + 1]
    elseif k == 'a' then a = fields[i + 1]
    elseif k == 't' then t = fields[i + 1]
    elseif k == 'p' then p = true
    elseif k == 'lk' then lk = fields[i + 1]
    elseif k == 'sa' then sa = true
    elseif k == 'rs' then rs = true
    end
  end
  if lk then kw_rem(qp, lk, member) end
  if #fields > 0 then
    local attempt = fmt(tonumber(a or '0') + 1)
    local token = fmt(tonumber(lt or '0') + 1)
    local start = #out < starting
    if start then
      redis.call('HSET', h, 's', 'active', 'sa', started, 'le', exp, 'w', worker, 'lt', token, 'a', attempt)
      emit('active', QUEUE, id, t, attempt, wdata)
    else
      redis.call('HSET', h, 's', 'active', 'le', exp, 'w', worker, 'lt', token, 'a', attempt)
      if sa then redis.call('HDEL', h, 'sa') end
      heldIds[#heldIds + 1] = 0; heldIds[#heldIds + 1] = id
    end
    if rs then redis.call('HDEL', h, 'rs') end
    if rs or (sa and not start) then
      local kept = {}
      for i = 1, #fields, 2 do
        local k = fields[i]
        if k ~= 'rs' and k ~= 'sa' then kept[#kept + 1] = k; kept[#kept + 1] = fields[i + 1] end
      end
      fields = kept
    end
    push(fields, 's', 'active', 'le', exp, 'w', worker, 'lt', token, 'a', attempt)
    if start then push(fields, 'sa', started) end
    if lk then
      redis.call('SADD', qp .. 'ka:' .. lk, id)
      per_key[lk] = (per_key[lk] or 0) + 1
    end
    local n = #active
    active[n + 1] = exp; active[n + 2] = id
    local payload = false
    if not p then payload = redis.call('GET', qp .. 'p:' .. id) or false end
    out[#out + 1] = { id, fields, payload }
  end
end
if #out == 0 then return '[]' end
many('ZADD', qp .. 'a', active)
many('ZADD', qp .. 'h', heldIds)
-- Rates count at claim: the queue's window counter, and each key's (a string that expires with its window).
if rate_ws then redis.call('HSET', KEYS[1], 'rw', fmt(rate_ws), 'rc', fmt(rate_used + #out)) end
if lim and lim.kr then
  local ws = now - (now % lim.krw)
  for key, n in pairs(per_key) do
    local kr = qp .. 'kr:' .. key
    local v = redis.call('GET', kr)
    local used = 0
    if v then
      local sep = string.find(v, ':', 1, true)
      if tonumber(string.sub(v, 1, sep - 1)) == ws then used = tonumber(string.sub(v, sep + 1)) end
    end
    redis.call('SET', kr, fmt(ws) .. ':' .. fmt(used + n), 'PXAT', fmt(ws + lim.krw))
  end
end
-- One JSON text instead of a nested multi-bulk reply: far cheaper for the client to decode.
return cjson.encode(out)
`;

/** Shared guard: the job is active under this token. */
const HELD = `
-- The job's fields named after tok (a table, nil where absent) when it is active under lease token tok,
-- else nil: the fence and the reads a transition needs in one HMGET.
local function held_fields(h, tok, ...)
  local f = redis.call('HMGET', h, 's', 'lt', ...)
  if f[1] ~= 'active' or (f[2] or '0') ~= tok then return nil end
  return { unpack(f, 3, 2 + select('#', ...)) }
end
local function held(h, tok) return held_fields(h, tok) ~= nil end
`;

/**
 * Enqueue of a call with flow fields (dependencies, batches): ONE script for the whole call, every queue,
 * jobs in input order, so a dependency on an earlier job of the call in another queue exists when its
 * dependent is written, and the call is all or nothing (a first pass validates, writing nothing). Plain
 * calls keep ENQUEUE (per queue, no flow work).
 */
const ENQUEUE_FLOW = `
-- ARGV[4] = the call's new batch ('' = none): JSON { id, ds (text | null), data (JSON text), cbs: { event:
-- template JSON text [queue, flat hash fields] } }; ARGV[5] = job count n, ARGV[6] = shape count k, then k
-- shapes of 15 fields (ENQUEUE's 14, then the queue); then n jobs of 5: id, payload, shape index,
-- dependencies ('' = none, else JSON [[id, policy char], ...]), batch id ('' = none).
-- Returns ENQUEUE's per-job texts, or { '!' .. error code, arguments... } having written nothing.
local now = now_ms()
local created_at = fmt(now)
local batch = nil
if ARGV[4] ~= '' then batch = cjson.decode(ARGV[4]) end
local n, k = tonumber(ARGV[5]), tonumber(ARGV[6])
local shapes = {}
for j = 0, k - 1 do
  local b = 7 + j * 15
  local idem, task, pr, ra, ma, bo, to, uk, us, uu, tg, rt, pi, lk, q = unpack(ARGV, b, b + 14)
  local f = { 't', task, 'pr', pr, 'ra', ra, 'ma', ma, 'rt', rt, 'ca', created_at }
  if bo ~= '' then push(f, 'bo', bo) end
  if to ~= '' then push(f, 'to', to) end
  if uu ~= '' then push(f, 'uu', uu) end
  if tg ~= '' then push(f, 'tg', tg) end
  if pi ~= '' then push(f, 'pi', pi) end
  if uk ~= '' then push(f, 'uk', uk) end
  if lk ~= '' then push(f, 'lk', lk) end
  shapes[j] = { idem = idem == '1', task = task, pr = pr, ra = ra, uk = uk, us = us, pi = pi, q = q, f = f,
    lk = lk ~= '' and lk or false }
end
local jb = 7 + k * 15
-- Pass 1: validate (no write): the call's batch is new, dependencies exist (in the store or earlier in the
-- call), batches joined exist and have not finished.
if batch and redis.call('EXISTS', FG .. 'bt:' .. batch.id) == 1 then return { '!BATCH_EXISTS', batch.id } end
local earlier = {}
for i = 0, n - 1 do
  local b = jb + i * 5
  local id, deps, bid = ARGV[b], ARGV[b + 3], ARGV[b + 4]
  local sh = shapes[tonumber(ARGV[b + 2])]
  -- An idempotent job that exists is returned as it is: nothing of it is checked or written.
  if not (sh.idem and qof(id)) then
    if deps ~= '' then
      for _, d in ipairs(cjson.decode(deps)) do
        if not earlier[d[1]] and not qof(d[1]) then return { '!DEPENDENCY_NOT_FOUND', id, d[1] } end
      end
    end
    if bid ~= '' and not (batch and batch.id == bid) then
      local v = redis.call('HMGET', FG .. 'bt:' .. bid, 'ca', 'fa')
      if not v[1] then return { '!BATCH_NOT_FOUND', bid } end
      if v[2] then return { '!BATCH_FINISHED', bid } end
    end
  end
  earlier[id] = true
end
-- Pass 2: write.
if batch then
  local bk = FG .. 'bt:' .. batch.id
  local f = { 'ca', created_at, 'tot', '0', 'c', '0', 'd', '0', 'x', '0', 'data', batch.data }
  if type(batch.ds) == 'string' then push(f, 'ds', batch.ds) end
  for ev, tpl in pairs(batch.cbs) do push(f, 'cb:' .. ev, tpl) end
  redis.call('HSET', bk, unpack(f))
  redis.call('ZADD', FG .. 'batches', created_at, batch.id)
  -- Listed even with no member created: a batch of deduplicated jobs only completes at once.
  fl_delta(batch.id, 'tot', 0)
end
local out = {}
local actual = {}
local seqs = {}
local callseq = 0
local registered = {}
for i = 0, n - 1 do
  local b = jb + i * 5
  local id, payload, deps, bid = ARGV[b], ARGV[b + 1], ARGV[b + 3], ARGV[b + 4]
  local sh = shapes[tonumber(ARGV[b + 2])]
  local q = sh.q
  local p = xqp(q)
  local existing = nil
  if sh.idem then
    local eq = qof(id)
    if eq then
      local ef = redis.call('HMGET', xqp(eq) .. 'j:' .. id, 's', 'sa')
      existing = seen_state(ef[1] or 'completed', ef[2])
    end
  end
  local holder = nil
  if not existing and sh.uk ~= '' and sh.us ~= '' then
    local hid = redis.call('HGET', p .. 'u', sh.uk)
    if hid then
      local hf = redis.call('HMGET', p .. 'j:' .. hid, 's', 'uu', 'sa')
      local hs = hf[1] and seen_state(hf[1], hf[3])
      if hs and string.find(sh.us, ',' .. hs .. ',', 1, true) and (not hf[2] or tonumber(hf[2]) > now) then
        holder = { hid, hs }
      end
    end
  end
  if existing then
    out[#out + 1] = '0' .. existing .. ':' .. id
    actual[id] = id
  elseif holder then
    out[#out + 1] = '0' .. holder[2] .. ':' .. holder[1]
    actual[id] = holder[1]
  else
    actual[id] = id
    local h = p .. 'j:' .. id
    if not seqs[q] then seqs[q] = tonumber(redis.call('HGET', p .. 'm', 'seq') or '0') end
    -- Also above every seq this call gave so far: its jobs follow input order across queues (a parent's
    -- children are listed by seq), though each queue has its own counter and TIME is fixed in a script.
    local seq = math.max(seqs[q] + 1, now_us(), callseq + 1)
    seqs[q] = seq
    callseq = seq
    local sq = fmt(seq)
    -- Edges: a dependency already final resolves at once (rule 2); one that failed under 'fail' kills.
    local pd, kill, seen = 0, nil, {}
    if deps ~= '' then
      for _, d in ipairs(cjson.decode(deps)) do
        local r, pol = actual[d[1]] or d[1], string.sub(d[2], 1, 1)
        if not seen[r] then
          seen[r] = true
          local res, k = fl_add_edge(id, r, pol)
          kill = kill or k
          if res == '0' then pd = pd + 1 end
        end
      end
    end
    local state = 'waiting'
    if kill then state = 'dead' elseif pd > 0 then state = 'blocked' elseif tonumber(sh.ra) > now then state = 'scheduled' end
    redis.call('HSET', h, 's', state, 'sq', sq, unpack(sh.f))
    if #payload <= 60 then redis.call('HSET', h, 'p', payload) else redis.call('SET', p .. 'p:' .. id, payload) end
    if deps ~= '' then redis.call('HSET', h, 'fu', '1', 'pd', tostring(pd)) end
    if bid ~= '' then
      redis.call('HSET', h, 'bi', bid)
      fl_delta(bid, 'tot', 1)
    end
    redis.call('ZADD', p .. 'all', sq, id)
    if state == 'waiting' then
      wadd(p, id, sh.pr, sh.ra, sq, sh.lk)
      fl_wake[q] = true
    elseif state == 'scheduled' then
      redis.call('ZADD', p .. 's', sh.ra, id)
    elseif state == 'blocked' then
      redis.call('ZADD', p .. 'b', sq, id)
    else
      redis.call('HSET', h, 'fa', created_at, 'rs', kill)
      push_error(h, cjson.encode({ attempt = 0, outcome = 'dependency-failed', name = 'DependencyFailedError',
        code = 'DEPENDENCY_FAILED', message = kill, at = now }))
      redis.call('ZADD', p .. 'd', created_at, id)
    end
    if sh.uk ~= '' then redis.call('HSET', p .. 'u', sh.uk, id) end
    if sh.pi ~= '' then redis.call('ZADD', FG .. 'fch:' .. sh.pi, sq, id) end
    if not CLUSTER then redis.call('HSET', IDS, id, q) end
    if not registered[q] then
      registered[q] = true
      if not CLUSTER then redis.call('SADD', G .. 'queues', q) end
    end
    out[#out + 1] = '1' .. state
    emit('enqueued', q, id, sh.task, nil, '{"state":"' .. state .. '"}')
    if state == 'dead' then fl_final(q, id, 'dead') end
  end
end
-- Each queue's seq counter before settling (a callback job may take the next seq of one of them).
for q, seq in pairs(seqs) do redis.call('HSET', xqp(q) .. 'm', 'seq', fmt(seq)) end
fl_settle(now)
return out
`;

const BLOCK = `${HELD}
-- ARGV[4..] = triples id, token, dependencies JSON [[id, policy char], ...]. Fenced like RELEASE; the attempt
-- is given back. Cancel requested meanwhile: cancelled. Else the edges are upserted (an edge of an earlier
-- round gets the policy given and is resolved again from its dependency's state now; a missing dependency
-- counts as deleted), then: dead when a 'fail' dependency already failed, blocked while some are pending,
-- else waiting at once. Events 'cancelled' / 'dead' / 'blocked' / 'unblocked'.
local now = now_ms()
local out = {}
for i = 4, #ARGV, 3 do
  local id = ARGV[i]
  local h = jkey(id)
  if held(h, ARGV[i + 1]) then
    local f = redis.call('HMGET', h, 'pr', 'ra', 'sq', 'a', 'cr', 't', 'lk')
    local attempt = fmt(math.max(tonumber(f[4] or '0') - 1, 0))
    arem(qp, id, f[7])
    redis.call('HDEL', h, 'le', 'w')
    redis.call('HSET', h, 'a', attempt)
    if f[5] == '1' then
      local reason = ${luaString(CANCELLED_WHILE_ACTIVE_REASON)}
      redis.call('HSET', h, 's', 'cancelled', 'fa', fmt(now), 'rs', reason)
      index(id, 'cancelled', fmt(now))
      emit('cancelled', QUEUE, id, f[6], f[4], '{"reason":' .. cjson.encode(reason) .. '}')
      fl_final(QUEUE, id, 'cancelled')
    else
      local up = FG .. 'fup:' .. id
      local kill = nil
      for _, d in ipairs(cjson.decode(ARGV[i + 2])) do
        local _, k = fl_add_edge(id, d[1], string.sub(d[2], 1, 1))
        kill = kill or k
      end
      -- Pending = unresolved edges over every round.
      local pd = 0
      local edges = redis.call('HVALS', up)
      for _, e in ipairs(edges) do if string.sub(e, 2, 2) == '0' then pd = pd + 1 end end
      redis.call('HSET', h, 'fu', '1', 'pd', tostring(pd))
      if kill then
        redis.call('HSET', h, 's', 'dead', 'fa', fmt(now), 'rs', kill)
        push_error(h, cjson.encode({ attempt = tonumber(attempt), outcome = 'dependency-failed',
          name = 'DependencyFailedError', code = 'DEPENDENCY_FAILED', message = kill, at = now }))
        index(id, 'dead', fmt(now))
        emit('dead', QUEUE, id, f[6], attempt, '{"error":' .. cjson.encode(kill) .. ',"reason":' .. cjson.encode(kill) .. '}')
        fl_final(QUEUE, id, 'dead')
      elseif pd > 0 then
        redis.call('HSET', h, 's', 'blocked')
        index(id, 'blocked', f[3])
        emit('blocked', QUEUE, id, f[6], attempt, '{"pending":' .. pd .. '}')
      else
        redis.call('HSET', h, 's', 'waiting')
        index(id, 'waiting', 0, f[1], f[2], f[3], f[7])
        fl_wake[QUEUE] = true
        emit('unblocked', QUEUE, id, f[6], attempt, '{"state":"waiting"}')
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
fl_settle(now)
return out
`;

const COMPLETE = `
-- ARGV[4..] = triples id, token, result ('' = null). Returns { applied flags, deleted ids }. Each completion
-- writes a 'completed' event (never the result).
local now = now_ms()
local at = fmt(now)
local out, deleted = {}, {}
local active, all, dels, done, byAge, byCount, flowdels = {}, {}, {}, {}, {}, {}, {}
for i = 4, #ARGV, 3 do
  local id, res = ARGV[i], ARGV[i + 2]
  local h = jkey(id)
  local f = redis.call('HMGET', h, 's', 'lt', 'rt', 'uk', 't', 'a', 'fd', 'bi', 'fu', 'pi', 'lk')
  if f[1] == 'active' and (f[2] or '0') == ARGV[i + 1] then
    active[#active + 1] = id
    ka_rem(qp, f[11], id)
    emit('completed', QUEUE, id, f[5], f[6], nil)
    -- Flows: only a job with dependents or a batch has anything to settle (plain jobs skip it).
    if f[7] or f[8] then fl_final(QUEUE, id, 'completed') end
    local rt = f[3] or 't'
    if rt == 'f' then
      -- Retention false: delete now. An active job is in no other index than 'a' and 'all'.
      all[#all + 1] = id
      push(dels, h, qp .. 'p:' .. id, qp .. 'l:' .. id)
      if f[4] and redis.call('HGET', qp .. 'u', f[4]) == id then redis.call('HDEL', qp .. 'u', f[4]) end
      if f[7] then flowdels[#flowdels + 1] = FG .. 'fdn:' .. id end
      if f[9] then flowdels[#flowdels + 1] = FG .. 'fup:' .. id end
      if f[10] then redis.call('ZREM', FG .. 'fch:' .. f[10], id) end
      deleted[#deleted + 1] = id
    else
      if res ~= '' then
        redis.call('HSET', h, 's', 'completed', 'fa', at, 'r', res)
      else
        redis.call('HSET', h, 's', 'completed', 'fa', at)
      end
      redis.call('HDEL', h, 'le')
      push(done, at, id)
      local kind, v = string.sub(rt, 1, 1), tonumber(string.sub(rt, 3))
      if kind == 'a' then push(byAge, fmt(now + v), id) elseif kind == 'c' then push(byCount, fmt(now_us()), id) end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
-- Before the deletions: settling reads the job's hash.
fl_settle(now)
many('DEL', nil, flowdels)
many('ZREM', qp .. 'a', active)
many('ZREM', qp .. 'h', active)
if #active > 0 then wake_if_limited() end
many('ZREM', qp .. 'all', all)
many('DEL', nil, dels)
many('ZADD', qp .. 'c', done)
many('ZADD', qp .. 'e', byAge)
many('ZADD', qp .. 'n', byCount)
return { out, deleted }
`;

const FAIL = `
-- ARGV[4..] = groups of 6: id, token, error JSON, next state, runAt (scheduled) or reason (dead/cancelled),
-- the error's message (for the event: 'retrying', 'dead' or 'cancelled').
local now = now_ms()
local out = {}
local wake = false
for i = 4, #ARGV, 6 do
  local id, nxt, arg = ARGV[i], ARGV[i + 3], ARGV[i + 4]
  local h = jkey(id)
  local g = redis.call('HMGET', h, 's', 'lt', 't', 'a', 'fd', 'bi', 'lk')
  if g[1] == 'active' and (g[2] or '0') == ARGV[i + 1] then
    arem(qp, id, g[7])
    redis.call('HDEL', h, 'le')
    push_error(h, ARGV[i + 2])
    if nxt == 'scheduled' or nxt == 'waiting' then
      local ra = arg
      if nxt == 'waiting' then ra = fmt(now); wake = true end
      redis.call('HSET', h, 's', nxt, 'ra', ra)
      redis.call('HDEL', h, 'rs', 'fa')
      local f = redis.call('HMGET', h, 'pr', 'sq')
      index(id, nxt, ra, f[1], ra, f[2], g[7])
      emit('retrying', QUEUE, id, g[3], g[4], '{"error":' .. cjson.encode(ARGV[i + 5]) .. ',"runAt":' .. ra .. '}')
    else
      redis.call('HSET', h, 's', nxt, 'fa', fmt(now), 'rs', arg)
      index(id, nxt, fmt(now))
      if nxt == 'dead' then
        emit('dead', QUEUE, id, g[3], g[4], '{"error":' .. cjson.encode(ARGV[i + 5]) .. ',"reason":' .. cjson.encode(arg) .. '}')
        if g[5] or g[6] then fl_final(QUEUE, id, 'dead') end
      else
        emit(nxt, QUEUE, id, g[3], g[4], '{"reason":' .. cjson.encode(arg) .. '}')
        -- Cancelled: its children are cancelled too (no flag tells whether it has any: a cancel is rare).
        fl_final(QUEUE, id, nxt)
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
fl_settle(now)
if wake then redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE) elseif #out > 0 then wake_if_limited() end
return out
`;

const RELEASE = `${HELD}
-- ARGV[4..] = groups of 4: id, token, runAt ('' = keep), reason. The attempt is given back. A job whose
-- cancel was requested while it ran is cancelled instead of going back (it must not run again). Events:
-- 'cancelled', or 'released' for a job that had started (a held job going back is invisible to users).
local now = now_ms()
local out = {}
local wake = false
for i = 4, #ARGV, 4 do
  local id, runAt = ARGV[i], ARGV[i + 2]
  local h = jkey(id)
  if held(h, ARGV[i + 1]) then
    local f = redis.call('HMGET', h, 'pr', 'ra', 'sq', 'a', 'cr', 'sa', 't', 'lk')
    local attempt = fmt(math.max(tonumber(f[4] or '0') - 1, 0))
    arem(qp, id, f[8])
    redis.call('HDEL', h, 'le')
    if f[5] == '1' then
      local reason = ${luaString(CANCELLED_WHILE_ACTIVE_REASON)}
      redis.call('HSET', h, 's', 'cancelled', 'fa', fmt(now), 'rs', reason, 'a', attempt)
      index(id, 'cancelled', fmt(now))
      emit('cancelled', QUEUE, id, f[7], f[4], '{"reason":' .. cjson.encode(reason) .. '}')
      fl_final(QUEUE, id, 'cancelled')
    else
      local ra = f[2]
      if runAt ~= '' then ra = runAt end
      local state = 'waiting'
      if runAt ~= '' and tonumber(runAt) > now then state = 'scheduled' else wake = true end
      redis.call('HSET', h, 's', state, 'ra', ra, 'rs', ARGV[i + 3], 'a', attempt)
      index(id, state, ra, f[1], ra, f[3], f[8])
      if f[6] then
        local at = 'null'
        if runAt ~= '' then at = runAt end
        emit('released', QUEUE, id, f[7], f[4], '{"reason":' .. cjson.encode(ARGV[i + 3]) .. ',"runAt":' .. at .. '}')
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
fl_settle(now)
if wake then redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE) end
return out
`;

const EXTEND = `${HELD}
-- ARGV[3] = leaseMs, ARGV[4..] = pairs id, token. Returns { lost, cancelRequested, paused }, each a flat
-- list of id, token pairs: a report names the lease, so one about an older claim never touches a newer
-- one. paused: leases held in a queue paused now (by an operator, or a rate limit not yet over).
local now = now_ms()
local exp = fmt(now + tonumber(ARGV[3]))
local pz = redis.call('HMGET', KEYS[1], 'paused', 'until')
local is_paused = pz[1] == '1' or tonumber(pz[2] or '0') > now
local lost, cancel, paused = {}, {}, {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local h = jkey(id)
  if held(h, ARGV[i + 1]) then
    redis.call('HSET', h, 'le', exp)
    redis.call('ZADD', qp .. 'a', exp, id)
    if redis.call('HGET', h, 'cr') == '1' then
      cancel[#cancel + 1] = id
      cancel[#cancel + 1] = ARGV[i + 1]
    end
    if is_paused then
      paused[#paused + 1] = id
      paused[#paused + 1] = ARGV[i + 1]
    end
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = ARGV[i + 1]
  end
end
return { lost, cancel, paused }
`;

const START = `${HELD}
-- ARGV[4..] = pairs id, token. Starts held jobs: 'sa' set (and their 'active' event), out of <qp>h, when the
-- lease is still held and the queue is not paused (a claim would skip it). Returns per item 1 (started) or 0
-- (refused). One read per job (the lease check and the event's fields together), one ZREM for the batch.
local now = now_ms()
local m = redis.call('HMGET', KEYS[1], 'paused', 'until')
local paused = m[1] == '1' or (m[2] and tonumber(m[2]) > now)
local out, started = {}, {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local h = jkey(id)
  local f = not paused and held_fields(h, ARGV[i + 1], 'sa', 't', 'a', 'w')
  if f then
    if not f[1] then
      redis.call('HSET', h, 'sa', fmt(now))
      emit('active', QUEUE, id, f[2], f[3], '{"workerId":' .. cjson.encode(f[4] or '') .. '}')
    end
    started[#started + 1] = id
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
many('ZREM', qp .. 'h', started)
return out
`;

const PROGRESS = `
-- ARGV[4..] = groups of 4: id, token, progress JSON, '1' = write a 'progress' event ('0': the task turned
-- them off).
local out = {}
for i = 4, #ARGV, 4 do
  local h = jkey(ARGV[i])
  local f = redis.call('HMGET', h, 's', 'lt', 't', 'a')
  if f[1] == 'active' and (f[2] or '0') == ARGV[i + 1] then
    redis.call('HSET', h, 'pg', ARGV[i + 2])
    if ARGV[i + 3] == '1' then emit('progress', QUEUE, ARGV[i], f[3], f[4], '{"progress":' .. ARGV[i + 2] .. '}') end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`;

const LOGS = `
-- ARGV[3] = lines kept per job, ARGV[4..] = pairs id, line JSON. Lines of deleted jobs are dropped.
local keep = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('EXISTS', jkey(id)) == 1 then
    local l = qp .. 'l:' .. id
    redis.call('RPUSH', l, ARGV[i + 1])
    redis.call('LTRIM', l, -keep, -1)
  end
end
return 0
`;

const RECOVER = `
-- ARGV[4] = 'expired' | 'before', [5] = cutoff (before), [6] = dry run '1', [7] = limit,
-- [8] reason prefix, [9] reason suffix, [10] reason when the worker is unknown. Each job recovered (not on a
-- dry run) writes a 'recovered' event.
local now = now_ms()
local limit = tonumber(ARGV[7])
local ids = {}
if ARGV[4] == 'expired' then
  ids = redis.call('ZRANGEBYSCORE', qp .. 'a', '-inf', '(' .. fmt(now), 'LIMIT', 0, limit)
else
  local cutoff = tonumber(ARGV[5])
  local cands = {}
  for _, id in ipairs(redis.call('ZRANGE', qp .. 'a', 0, -1)) do
    -- A held job (claimed ahead, no 'sa') has not started: only its lease expiry recovers it.
    local sa = redis.call('HGET', jkey(id), 'sa')
    if sa and tonumber(sa) < cutoff then cands[#cands + 1] = { id, tonumber(sa) } end
  end
  table.sort(cands, function(x, y) return x[2] < y[2] end)
  for i = 1, math.min(#cands, limit) do ids[i] = cands[i][1] end
end
local out = {}
local wake = false
for _, id in ipairs(ids) do
  local h = jkey(id)
  local f = redis.call('HMGET', h, 's', 't', 'w', 'a', 'ma', 'cr', 'pr', 'ra', 'sq', 'lk')
  if f[1] == 'active' then
    local reason = ARGV[10]
    if f[3] then reason = ARGV[8] .. f[3] .. ARGV[9] end
    local attempt, max = tonumber(f[4] or '0'), tonumber(f[5])
    -- recoveryTarget's decision (core/states.ts); test/redis/store.test.ts holds the two together.
    local to = 'waiting'
    if f[6] == '1' then to = 'cancelled' elseif attempt >= max then to = 'dead' end
    if ARGV[6] ~= '1' then
      emit('recovered', QUEUE, id, f[2], fmt(attempt), '{"to":"' .. to .. '","reason":' .. cjson.encode(reason) .. '}')
      local err = { attempt = attempt, outcome = 'lease-expired', name = 'LeaseExpiredError', message = reason, at = now }
      if f[3] then err.workerId = f[3] end
      push_error(h, cjson.encode(err))
      arem(qp, id, f[10])
      redis.call('HDEL', h, 'le')
      if to == 'waiting' then
        redis.call('HSET', h, 's', to, 'rs', reason)
        redis.call('HDEL', h, 'fa')
        index(id, to, 0, f[7], f[8], f[9], f[10])
        wake = true
      else
        redis.call('HSET', h, 's', to, 'rs', reason, 'fa', fmt(now))
        index(id, to, fmt(now))
        fl_final(QUEUE, id, to)
      end
    end
    out[#out + 1] = { id, f[2], f[3] or false, attempt, max, to, reason }
  end
end
fl_settle(now)
if wake then redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE) end
return out
`;

const BULK = `
-- ARGV[4] = 'retry' | 'cancel' | 'remove' | 'move' | 'reprioritize', [5] = limit, [6] = states csv (already
-- intersected with the states the action allows), [7] = task opt, [8] = tag opt, [9] = createdBefore opt,
-- [10] = idPrefix opt, [11] = payloadField opt ('=' .. JSON [path, equals]), [12] = action argument (move:
-- target queue name; reprioritize: priority; else ''), [13] = batchId opt, [14] = parentId opt, [15..] = ids
-- (when given, only these are considered). Returns { changed ids, cancel-requested ids }. Events: 'retried', 'deleted', 'moved' (under
-- the target queue), 'cancelled' for jobs cancelled at once (a flagged active job writes its event when it
-- ends); reprioritize writes none.
-- 'move' is the one script that touches two queue slots (and the global id index): KEYS[3] = the target
-- queue's meta hash, KEYS[4] = the id index. Fine on a single server; on Cluster it needs a copy protocol.
-- The states each action changes (core/states.ts); remove takes every state but active.
local RETRYABLE = ${luaStateSet(RETRYABLE_STATES)}
local CANCEL_AT_ONCE = ${luaStateSet(CANCEL_AT_ONCE_STATES)}
local MOVABLE = ${luaStateSet(MOVABLE_STATES)}
local REPRIORITIZABLE = ${luaStateSet(REPRIORITIZABLE_STATES)}
local now = now_ms()
local action, limit = ARGV[4], tonumber(ARGV[5])
local arg = ARGV[12]
local states = state_set(ARGV[6])
local task, tag, before = opt(ARGV[7]), opt(ARGV[8]), opt(ARGV[9])
if before then before = tonumber(before) end
local prefix, pf = opt(ARGV[10]), field_filter(ARGV[11])
local fl = flow_filter(ARGV[13], ARGV[14])
local from = '{"from":' .. cjson.encode(QUEUE) .. '}'
local picked = {}
local taken = {}
local function consider(id)
  if #picked >= limit or taken[id] then return end
  local f = matches(id, states, task, tag, before, prefix, pf, fl)
  -- Jobs already at the wanted priority are not picked, so batches that still match make progress.
  if f and action == 'reprioritize' and tonumber(redis.call('HGET', jkey(id), 'pr')) == tonumber(arg) then f = nil end
  -- Likewise active jobs whose cancel is already requested.
  if f and action == 'cancel' and f[1] == 'active' and redis.call('HGET', jkey(id), 'cr') == '1' then f = nil end
  if f then
    picked[#picked + 1] = id
    taken[id] = true
  end
end
if #ARGV >= 15 then
  for i = 15, #ARGV do consider(ARGV[i]) end
else
  -- Oldest first within each state; the whole set is scanned only when the filter rejects most of it.
  for _, s in ipairs({ 'scheduled', 'waiting', 'blocked', 'active', 'dead', 'cancelled', 'completed' }) do
    if states[s] then
      local key = qp .. SET[s]
      local total = redis.call('ZCARD', key)
      local offset = 0
      while #picked < limit and offset < total do
        local chunk = redis.call('ZRANGE', key, offset, offset + 499)
        for _, m in ipairs(chunk) do
          if s == 'waiting' then consider(wid(m)) else consider(m) end
        end
        offset = offset + 500
      end
      -- Held jobs (claimed ahead, not started) are waiting as users see them.
      if s == 'waiting' then
        for _, id in ipairs(redis.call('ZRANGE', qp .. 'h', 0, -1)) do consider(id) end
      end
    end
  end
end
local changed, requested = {}, {}
for _, id in ipairs(picked) do
  local h = jkey(id)
  local f = redis.call('HMGET', h, 's', 'pr', 'ra', 'sq', 'cr', 'sa', 't')
  local s = f[1]
  -- A held job was picked as the waiting job it is: undo its claim, then act on it (reprioritize leaves
  -- it to its holder, as it does a running job).
  if s == 'active' and not f[6] and action ~= 'reprioritize' then
    unhold(id, h, f[2], f[3], f[4])
    s = 'waiting'
  end
  if action == 'remove' then
    -- A job deleted before it was final settles as 'deleted' first (settling reads its hash).
    if CANCEL_AT_ONCE[s] then
      fl_final(QUEUE, id, 'deleted')
      fl_run(now)
    end
    if s ~= 'active' and delete_job(id) then
      changed[#changed + 1] = id
      emit('deleted', QUEUE, id, f[7], nil, nil)
    end
  elseif action == 'retry' then
    if RETRYABLE[s] then
      unindex(id, s, f[2], f[3], f[4])
      redis.call('ZREM', qp .. 'e', id)
      redis.call('ZREM', qp .. 'n', id)
      redis.call('HSET', h, 's', 'waiting', 'a', '0', 'ra', fmt(now), 'rs', ${luaString(RETRIED_REASON)})
      redis.call('HDEL', h, 'fa', 'cr')
      index(id, 'waiting', 0, f[2], now, f[4])
      changed[#changed + 1] = id
      emit('retried', QUEUE, id, f[7], nil, nil)
    end
  elseif action == 'move' then
    if MOVABLE[s] then
      local dqp = string.sub(KEYS[3], 1, -2)
      local score = nil
      if s ~= 'waiting' then score = redis.call('ZSCORE', qp .. SET[s], id) end
      unindex(id, s, f[2], f[3], f[4])
      redis.call('ZREM', qp .. 'all', id)
      redis.call('RENAME', h, dqp .. 'j:' .. id)
      for _, k in ipairs({ 'p:', 'l:' }) do
        if redis.call('EXISTS', qp .. k .. id) == 1 then redis.call('RENAME', qp .. k .. id, dqp .. k .. id) end
      end
      local uk = redis.call('HGET', dqp .. 'j:' .. id, 'uk')
      if uk and redis.call('HGET', qp .. 'u', uk) == id then
        redis.call('HDEL', qp .. 'u', uk)
        redis.call('HSETNX', dqp .. 'u', uk, id)
      end
      if s == 'waiting' then
        wadd(dqp, id, f[2], f[3], f[4], redis.call('HGET', dqp .. 'j:' .. id, 'lk'))
      else
        redis.call('ZADD', dqp .. SET[s], score or f[4], id)
      end
      redis.call('ZADD', dqp .. 'all', f[4], id)
      local dseq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
      if tonumber(f[4]) > dseq then redis.call('HSET', KEYS[3], 'seq', f[4]) end
      redis.call('HSET', KEYS[4], id, arg)
      changed[#changed + 1] = id
      emit('moved', arg, id, f[7], nil, from)
    end
  elseif action == 'reprioritize' then
    if REPRIORITIZABLE[s] and tonumber(f[2]) ~= tonumber(arg) then
      if s == 'waiting' then
        local lk = redis.call('HGET', h, 'lk')
        wrem(qp, id, f[2], f[3], f[4], lk)
        wadd(qp, id, arg, f[3], f[4], lk)
      end
      redis.call('HSET', h, 'pr', arg)
      changed[#changed + 1] = id
    end
  elseif action == 'cancel' then
    if CANCEL_AT_ONCE[s] then
      unindex(id, s, f[2], f[3], f[4])
      local reason = ${luaString(CANCELLED_REASON)}
      redis.call('HSET', h, 's', 'cancelled', 'fa', fmt(now), 'rs', reason)
      index(id, 'cancelled', fmt(now))
      changed[#changed + 1] = id
      emit('cancelled', QUEUE, id, f[7], nil, '{"reason":' .. cjson.encode(reason) .. '}')
      fl_final(QUEUE, id, 'cancelled')
    elseif s == 'active' and f[5] ~= '1' then
      redis.call('HSET', h, 'cr', '1')
      requested[#requested + 1] = id
    end
  end
end
fl_settle(now)
if (action == 'retry' or action == 'reprioritize') and #changed > 0 then redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE) end
if action == 'move' and #changed > 0 then redis.call('PUBLISH', CHANNEL, 'j' .. arg) end
if #requested > 0 then redis.call('PUBLISH', CHANNEL, 'c') end
return { changed, requested }
`;

const LIST = `
-- ARGV[3] = limit, [4] = 'asc' | 'desc', [5] = cursor seq ('' = start), [6] = cursor id, [7] = states csv
-- ('' = any), [8] = task opt, [9] = tag opt, [10] = createdBefore opt, [11] = most entries to scan,
-- [12] = idPrefix opt, [13] = payloadField opt ('=' .. JSON [path, equals]), [14] = batchId opt, [15] =
-- parentId opt.
-- Returns { flat id, seq pairs of matches in order, done '1'|'0', frontier seq, frontier id }: every match
-- up to the frontier is in the reply; done means nothing matches beyond it.
local limit = tonumber(ARGV[3])
local desc = ARGV[4] == 'desc'
local cs, cid = tonumber(ARGV[5]), ARGV[6]
local states = state_set(ARGV[7])
local task, tag, before = opt(ARGV[8]), opt(ARGV[9]), opt(ARGV[10])
if before then before = tonumber(before) end
local budget = tonumber(ARGV[11])
local prefix, pf = opt(ARGV[12]), field_filter(ARGV[13])
local fl = flow_filter(ARGV[14], ARGV[15])
local function after(s, id)
  if not cs then return true end
  if desc then return s < cs or (s == cs and id < cid) end
  return s > cs or (s == cs and id > cid)
end
local out = {}
local small = false
if states then
  local total = 0
  for s in pairs(states) do total = total + redis.call('ZCARD', qp .. SET[s]) end
  if states.waiting then total = total + redis.call('ZCARD', qp .. 'h') end
  small = total <= budget
end
if small then
  -- Few jobs in the wanted states: read them all, sort by seq.
  local cands = {}
  local seen = {}
  local function take(id)
    if seen[id] then return end
    seen[id] = true
    local f = matches(id, states, task, tag, before, prefix, pf, fl)
    if f and after(tonumber(f[5]), id) then cands[#cands + 1] = { id, tonumber(f[5]) } end
  end
  for s in pairs(states) do
    for _, m in ipairs(redis.call('ZRANGE', qp .. SET[s], 0, -1)) do
      if s == 'waiting' then take(wid(m)) else take(m) end
    end
    -- Held jobs (claimed ahead, not started) are waiting as users see them.
    if s == 'waiting' then
      for _, id in ipairs(redis.call('ZRANGE', qp .. 'h', 0, -1)) do take(id) end
    end
  end
  table.sort(cands, function(x, y)
    if x[2] ~= y[2] then
      if desc then return x[2] > y[2] end
      return x[2] < y[2]
    end
    if desc then return x[1] > y[1] end
    return x[1] < y[1]
  end)
  for i = 1, math.min(#cands, limit) do
    out[#out + 1] = cands[i][1]
    out[#out + 1] = fmt(cands[i][2])
  end
  if #cands <= limit then return { out, '1', '', '' } end
  return { out, '0', fmt(cands[limit][2]), cands[limit][1] }
end
-- Walk every job of the queue in seq order from the cursor, filtering, within the scan budget.
local key = qp .. 'all'
local found, scanned, offset = 0, 0, 0
local ls, li = nil, nil
while true do
  local chunk
  if desc then
    local top = '+inf'
    if cs then top = fmt(cs) end
    chunk = redis.call('ZREVRANGEBYSCORE', key, top, '-inf', 'WITHSCORES', 'LIMIT', offset, 200)
  else
    local bottom = '-inf'
    if cs then bottom = fmt(cs) end
    chunk = redis.call('ZRANGEBYSCORE', key, bottom, '+inf', 'WITHSCORES', 'LIMIT', offset, 200)
  end
  for j = 1, #chunk, 2 do
    local id, s = chunk[j], tonumber(chunk[j + 1])
    if after(s, id) then
      scanned = scanned + 1
      ls, li = s, id
      if matches(id, states, task, tag, before, prefix, pf, fl) then
        out[#out + 1] = id
        out[#out + 1] = fmt(s)
        found = found + 1
        if found >= limit then return { out, '0', fmt(s), id } end
      end
      if scanned >= budget then return { out, '0', fmt(s), id } end
    end
  end
  if #chunk < 400 then return { out, '1', '', '' } end
  offset = offset + 200
end
`;

const GET = `
-- ARGV[3..] = ids. Returns per id { id, fields, payload } or false.
local out = {}
for i = 3, #ARGV do out[#out + 1] = job_reply(ARGV[i]) end
return out
`;

const STATS = `
-- Returns { counts in JOB_STATES order..., paused, pausedUntil, oldest waiting runAt, due scheduled count,
-- oldest due runAt, limits JSON ('' = none), active jobs held-ahead included, keys held now }.
local now = now_ms()
local out = {}
for _, s in ipairs({ 'scheduled', 'waiting', 'active', 'completed', 'dead', 'cancelled', 'blocked' }) do
  out[#out + 1] = redis.call('ZCARD', qp .. SET[s])
end
-- Held jobs (claimed ahead, not started) count as waiting, not active.
local held_ids = redis.call('ZRANGE', qp .. 'h', 0, -1)
out[2] = out[2] + #held_ids
out[3] = out[3] - #held_ids
local m = redis.call('HMGET', KEYS[1], 'paused', 'until')
out[#out + 1] = m[1] or '0'
out[#out + 1] = m[2] or ''
-- The waiting ZSET is ordered by priority first: the oldest runAt is the minimum over the first member of
-- each priority band. Jump band to band with ZRANGEBYLEX (few distinct priorities in practice).
local oldest = nil
local first = redis.call('ZRANGE', qp .. 'w', 0, 0)
local bands = 0
while #first > 0 and bands < 1000 do
  local member = first[1]
  local ra = tonumber(string.sub(member, 8, 21))
  if not oldest or ra < oldest then oldest = ra end
  first = redis.call('ZRANGEBYLEX', qp .. 'w', '(' .. string.sub(member, 1, 7) .. '~', '+', 'LIMIT', 0, 1)
  bands = bands + 1
end
for _, id in ipairs(held_ids) do
  local ra = tonumber(redis.call('HGET', jkey(id), 'ra') or '0')
  if not oldest or ra < oldest then oldest = ra end
end
out[#out + 1] = oldest and fmt(oldest) or ''
out[#out + 1] = redis.call('ZCOUNT', qp .. 's', '-inf', fmt(now))
local first_due = redis.call('ZRANGEBYSCORE', qp .. 's', '-inf', fmt(now), 'WITHSCORES', 'LIMIT', 0, 1)
out[#out + 1] = first_due[2] or ''
out[#out + 1] = redis.call('HGET', KEYS[1], 'lim') or ''
out[#out + 1] = redis.call('ZCARD', qp .. 'a')
out[#out + 1] = redis.call('ZCOUNT', qp .. 'kh', '(' .. fmt(now), '+inf')
return out
`;

/**
 * Limits of a queue (docs/redis.md, "Limits"): ARGV[3] = JSON { c, r, rw, kc, kr, krw } (absent = no limit of
 * that kind), '' = none. The claim reads it in the meta HMGET it already makes.
 */
const SET_LIMITS = `
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'lim', 'rw', 'rc')
else
  redis.call('HSET', KEYS[1], 'lim', ARGV[3])
end
redis.call('PUBLISH', CHANNEL, 'j' .. QUEUE)
return 0
`;

/**
 * Holds a limit key until ARGV[4] (epoch ms; ARGV[3] = the key): only ever extends (ZADD GT). 'khu' on the
 * meta hash = the latest hold's end, so a claim knows from its meta HMGET whether any hold may be on. Holds
 * already over are dropped here.
 */
const HOLD_KEY = `
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', qp .. 'kh', '-inf', fmt(now))
-- GT: a new key is added; an existing one only moves later.
redis.call('ZADD', qp .. 'kh', 'GT', ARGV[4], ARGV[3])
local cur = tonumber(redis.call('HGET', KEYS[1], 'khu') or '0')
if tonumber(ARGV[4]) > cur then redis.call('HSET', KEYS[1], 'khu', ARGV[4]) end
return 0
`;

/**
 * Keys of this queue held now, with their backlog: ARGV[3] = most keys. Returns flat key, until, backlog
 * triples. Backlog = the key's waiting jobs (ZCARD <qp>kw:<key>) plus its due scheduled jobs (a claim promotes
 * them; the due ones are read, at most 1,000).
 */
const KEY_HOLDS = `
local now = now_ms()
local held = redis.call('ZRANGEBYSCORE', qp .. 'kh', '(' .. fmt(now), '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
if #held == 0 then return {} end
local due = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', qp .. 's', '-inf', fmt(now), 'LIMIT', 0, 1000)) do
  local lk = redis.call('HGET', jkey(id), 'lk')
  if lk then due[lk] = (due[lk] or 0) + 1 end
end
local out = {}
for i = 1, #held, 2 do
  local key = held[i]
  push(out, key, held[i + 1], redis.call('ZCARD', qp .. 'kw:' .. key) + (due[key] or 0))
end
return out
`;

const PAUSE = `
-- ARGV[4] = '' (pause until resumed) or epoch ms (a rate limit: paused until then). A rate limit never
-- lifts an operator's pause, and only ever extends an earlier rate limit. Every call writes a 'paused' event.
if ARGV[4] == '' then
  redis.call('HSET', KEYS[1], 'paused', '1')
  -- Workers holding jobs of the queue claimed ahead give them back (they learn which from the extend).
  redis.call('PUBLISH', ARGV[1], 'c')
else
  local cur = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
  if tonumber(ARGV[4]) > cur then redis.call('HSET', KEYS[1], 'until', ARGV[4]) end
end
local until_ms = 'null'
if ARGV[4] ~= '' then until_ms = ARGV[4] end
emit('paused', QUEUE, nil, nil, nil, '{"until":' .. until_ms .. '}')
return 0
`;

const PRUNE = `
-- ARGV[3] = most jobs to delete, ARGV[4] = stats retention ms. Drops roll-up hours older than the stats
-- retention, deletes completed jobs past their age retention, then completed jobs beyond their count
-- retention (newest N per queue kept). Returns deleted ids.
local now = now_ms()
local limit = tonumber(ARGV[3])
local old_hours = redis.call('ZRANGEBYSCORE', qp .. 'sth', '-inf', '(' .. fmt(now - tonumber(ARGV[4])))
for _, hour in ipairs(old_hours) do redis.call('DEL', qp .. 'st:' .. hour) end
if #old_hours > 0 then redis.call('ZREM', qp .. 'sth', unpack(old_hours)) end
local deleted = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', qp .. 'e', '-inf', '(' .. fmt(now), 'LIMIT', 0, limit)) do
  if delete_job(id) then deleted[#deleted + 1] = id end
  redis.call('ZREM', qp .. 'e', id)
end
local total = redis.call('ZCARD', qp .. 'n')
local i = 0
while #deleted < limit and i < total do
  local chunk = redis.call('ZRANGE', qp .. 'n', 0, 99)
  if #chunk == 0 then break end
  local stop = false
  for _, id in ipairs(chunk) do
    if #deleted >= limit then stop = true break end
    local rt = redis.call('HGET', jkey(id), 'rt') or 'c:0'
    local keep = tonumber(string.sub(rt, 3)) or 0
    -- rank from the newest = total - i (i = jobs already walked from the oldest end)
    if total - i > keep then
      if delete_job(id) then deleted[#deleted + 1] = id end
      redis.call('ZREM', qp .. 'n', id)
      i = i + 1
    else
      stop = true
      break
    end
  end
  if stop then break end
end
return deleted
`;

const ADD_STATS = `
-- ARGV[3] = histogram size, ARGV[4..] = rows of (hour, completed, failed, dead, last completion ms or '',
-- histogram slots...). Upsert-add into the hash <qp>st:<hour> (fields c, f, d, h0..; lc = latest
-- completion, kept as a maximum); the ZSET <qp>sth lists the hours.
local size = tonumber(ARGV[3])
local width = 5 + size
local NAMES = { 'c', 'f', 'd' }
for i = 4, #ARGV, width do
  local hour = ARGV[i]
  local h = qp .. 'st:' .. hour
  for k = 1, 3 do
    local v = tonumber(ARGV[i + k])
    if v ~= 0 then redis.call('HINCRBY', h, NAMES[k], v) end
  end
  local lc = tonumber(ARGV[i + 4])
  if lc and lc > tonumber(redis.call('HGET', h, 'lc') or '0') then redis.call('HSET', h, 'lc', fmt(lc)) end
  for k = 0, size - 1 do
    local v = tonumber(ARGV[i + 5 + k])
    if v ~= 0 then redis.call('HINCRBY', h, 'h' .. k, v) end
  end
  redis.call('ZADD', qp .. 'sth', hour, hour)
end
return 0
`;

const READ_STATS = `
-- ARGV[3] = since (hour ms). Returns { hour, flat hash fields } per stored hour >= since, by hour.
local out = {}
for _, hour in ipairs(redis.call('ZRANGEBYSCORE', qp .. 'sth', ARGV[3], '+inf')) do
  out[#out + 1] = { hour, redis.call('HGETALL', qp .. 'st:' .. hour) }
end
return out
`;

/** Stream ids are compared as numbers: both parts have at most 15 digits (the store checks `after`). */
const STREAM_IDS = `
local function sid(id)
  local ms, sq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(sq)
end
local function sid_less(a, b)
  local am, as = sid(a)
  local bm, bs = sid(b)
  return am < bm or (am == bm and as < bs)
end
`;

/**
 * Reads fleet events. KEYS[1] = the events stream; ARGV[1] = after ('' = from the oldest retained), [2] =
 * limit, [3] = queue ('' = any), [4] = job id ('' = any), [5] = most entries to scan when filtered.
 * Returns { entries matched ([id, fields] as XRANGE gives them), cursor ('' = null), reset 1|0 }. One
 * script, so the reset check and the read see the same stream.
 */
const READ_EVENTS = `${STREAM_IDS}
local key, after, limit = KEYS[1], ARGV[1], tonumber(ARGV[2])
local queue, job, budget = ARGV[3], ARGV[4], tonumber(ARGV[5])
local reset = false
local last = '0-0'
if after ~= '' then
  -- Lost events: the newest trimmed id (recorded by every trim, see EVENTS in lua.ts) is past 'after', or
  -- 'after' is past the newest id this stream ever assigned (wiped, or another store's id).
  local maxdel = '0-0'
  if redis.call('EXISTS', key) == 1 then
    local info = redis.call('XINFO', 'STREAM', key)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then last = info[i + 1]
      elseif info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
    end
  end
  reset = sid_less(after, maxdel) or sid_less(last, after)
end
local start = '-'
if after ~= '' and not reset then start = '(' .. after end
local filtered = queue ~= '' or job ~= ''
local out, cursor, scanned = {}, nil, 0
while true do
  local count = limit - #out
  if filtered then count = math.min(500, budget - scanned) end
  if count <= 0 then break end
  local chunk = redis.call('XRANGE', key, start, '+', 'COUNT', count)
  for _, e in ipairs(chunk) do
    scanned = scanned + 1
    cursor = e[1]
    local keep = true
    if filtered then
      local f = e[2]
      local q, j = nil, nil
      for i = 1, #f, 2 do
        if f[i] == 'q' then q = f[i + 1] elseif f[i] == 'j' then j = f[i + 1] end
      end
      keep = (queue == '' or q == queue) and (job == '' or j == job)
    end
    if keep then
      out[#out + 1] = e
      if #out >= limit then return { out, cursor, reset and 1 or 0 } end
    end
  end
  if #chunk < count or not filtered then break end
  start = '(' .. cursor
end
if not cursor then
  -- Nothing scanned: the cursor stays (caught up); after a reset, an empty stream's newest id (or null).
  cursor = after
  if reset then
    cursor = ''
    if last ~= '0-0' then cursor = last end
  end
end
return { out, cursor, reset and 1 or 0 }
`;

/**
 * Reads one queue's events stream on Redis Cluster (docs/redis.md, "Redis Cluster"): KEYS[1] = the stream;
 * ARGV[1] = start ('-', an id, or '(' .. id), [2] = most entries. Returns { entries as XRANGE gives them,
 * this node's TIME in ms, last-generated-id ('0-0' when no stream), max-deleted-entry-id ('0-0') }. Every
 * entry written to this stream after this call has an id at or above TIME (stream ids never go back), which
 * is what lets the store merge the queues' streams without missing an entry committed late (its horizon).
 */
const READ_QUEUE_EVENTS = `
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last, maxdel = '0-0', '0-0'
if redis.call('EXISTS', key) == 0 then return { {}, string.format('%.0f', now), last, maxdel } end
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1]
  elseif info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
end
local entries = {}
if tonumber(ARGV[2]) > 0 then entries = redis.call('XRANGE', key, ARGV[1], '+', 'COUNT', tonumber(ARGV[2])) end
return { entries, string.format('%.0f', now), last, maxdel }
`;

/**
 * Prunes fleet events exactly. KEYS[1] = the events stream; ARGV[1] = delete events older than this epoch ms
 * ('' = no age limit), [2] = keep at most this many ('' = no count limit), [3] = most to delete. Records the
 * newest id deleted (max-deleted-entry-id) for readers' reset. Returns how many were deleted.
 */
const PRUNE_EVENTS = `${TRIM_EVENTS}
local key, left = KEYS[1], tonumber(ARGV[3])
local len = redis.call('XLEN', key)
if len == 0 then return 0 end
local deleted = 0
local before = tonumber(ARGV[1])
if before and before > 0 and left > 0 then
  -- How many are older than the cutoff: counted up to 'left' (the ids only matter, this is maintenance).
  local old = redis.call('XRANGE', key, '-', '(' .. string.format('%.0f', before) .. '-0', 'COUNT', left)
  local n = trim_events(key, len, len - #old, left)
  deleted, left, len = deleted + n, left - n, len - n
end
local keep = tonumber(ARGV[2])
if keep and left > 0 then deleted = deleted + trim_events(key, len, keep, left) end
return deleted
`;

/** Global-slot scripts: leader lock. KEYS[1] = lock key. */
const LEAD = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

/**
 * Worker heartbeat. KEYS[1] = beats ZSET, KEYS[2] = busy HASH, KEYS[3] = stalls HASH, KEYS[4] = health HASH,
 * KEYS[5] = clock HASH; ARGV = id, now ms, busy, stalls JSON ('' = leave as stored), health JSON ('' = leave
 * as stored, '[]' = none), the worker's clock ('' = leave as stored). The clock's skew is measured against
 * the server's TIME, the clock leases and schedules are compared with. 1 = entry exists.
 */
const BEAT = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] and ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
if ARGV[5] == '[]' then redis.call('HDEL', KEYS[4], ARGV[1])
elseif ARGV[5] and ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[5]) end
if ARGV[6] and ARGV[6] ~= '' then
  local t = redis.call('TIME')
  local server = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[6] .. ' ' .. string.format('%.0f', tonumber(ARGV[6]) - server))
end
return 1
`;

const ANNOTATE = `
-- ARGV[3] = id, ARGV[4] = attempt, ARGV[5] = note. Sets the note on the (latest) error of that attempt,
-- whatever the job's state. 1 = set, 0 = no such job or no error for that attempt.
local h = jkey(ARGV[3])
local e = redis.call('HGET', h, 'e')
if not e then return 0 end
local ok, list = pcall(cjson.decode, e)
if not ok or type(list) ~= 'table' then return 0 end
local attempt = tonumber(ARGV[4])
for i = #list, 1, -1 do
  if type(list[i]) == 'table' and tonumber(list[i].attempt) == attempt then
    list[i].note = ARGV[5]
    redis.call('HSET', h, 'e', cjson.encode(list))
    return 1
  end
end
return 0
`;

/**
 * Pauses or resumes a schedule in its queue's slot. ARGV[3] = name, ARGV[4] = '1' pause / '0' resume,
 * ARGV[5] = next tick on resume ('' = none). A resume of a schedule that is not paused changes nothing (its
 * clock stays). Returns 1 when the pause flag changed.
 */
const SCHEDULE_PAUSE = `
local name = ARGV[3]
local paused = redis.call('HEXISTS', qp .. 'schp', name) == 1
if ARGV[4] == '1' then
  if paused then return 0 end
  redis.call('HSET', qp .. 'schp', name, '1')
  return 1
end
if not paused then return 0 end
redis.call('HDEL', qp .. 'schp', name)
if ARGV[5] == '' then
  redis.call('HDEL', qp .. 'schn', name)
else
  redis.call('HSET', qp .. 'schn', name, ARGV[5])
end
return 1
`;

const RESIGN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/** A named script: `queue` scripts get the prelude and take the queue convention (1 key). */
export interface ScriptSource {
  lua: string;
  keys: number;
}

/**
 * Every script of the engine, by name, for one server (`cluster` false) or for Redis Cluster (true). The two
 * sets differ in one line of the prelude (`CLUSTER`): on a cluster, flow keys live under the queue's tag and
 * the id index and queue registry (global slot) are written by the store around the script, never inside it
 * (docs/redis.md, "Redis Cluster").
 */
function buildScripts(cluster: boolean) {
  // Every script gets only the helpers its body uses (lua-helpers.ts); qp always, since it is what makes
  // a script a queue script (QUEUE_SCRIPTS).
  const helpers = splitDefinitions(`local CLUSTER = ${cluster}\n${PRELUDE}${EVENTS}${FLOW}`);
  const build = (body: string) => withHelpers(helpers, body, ["qp"]);
  const queueScript = (body: string): ScriptSource => ({ lua: build(body), keys: 1 });
  /** A queue script that writes fleet events: KEYS[2] = the events stream, ARGV[3] = its cap (EVENTS). */
  const eventScript = (body: string): ScriptSource => ({ lua: build(body), keys: 2 });
  /** An event script that can make jobs final: it settles them (FLOW) in the same script. */
  const flowScript = (body: string): ScriptSource => ({ lua: build(body), keys: 2 });
  return {
    enqueue: eventScript(ENQUEUE),
    enqueueFlow: flowScript(ENQUEUE_FLOW),
    block: flowScript(BLOCK),
    fire: eventScript(FIRE),
    claim: eventScript(CLAIM),
    start: eventScript(START),
    complete: flowScript(COMPLETE),
    fail: flowScript(FAIL),
    release: flowScript(RELEASE),
    extend: queueScript(EXTEND),
    progress: eventScript(PROGRESS),
    logs: queueScript(LOGS),
    annotate: queueScript(ANNOTATE),
    schedulePause: queueScript(SCHEDULE_PAUSE),
    recover: flowScript(RECOVER),
    bulk: flowScript(BULK),
    list: queueScript(LIST),
    get: queueScript(GET),
    stats: queueScript(STATS),
    setLimits: queueScript(SET_LIMITS),
    holdKey: queueScript(HOLD_KEY),
    keyHolds: queueScript(KEY_HOLDS),
    prune: queueScript(PRUNE),
    pause: eventScript(PAUSE),
    addHourlyStats: queueScript(ADD_STATS),
    readHourlyStats: queueScript(READ_STATS),
    readEvents: { lua: READ_EVENTS, keys: 1 },
    readQueueEvents: { lua: READ_QUEUE_EVENTS, keys: 1 },
    pruneEvents: { lua: PRUNE_EVENTS, keys: 1 },
    lead: { lua: LEAD, keys: 1 },
    beat: { lua: BEAT, keys: 5 },
    resign: { lua: RESIGN, keys: 1 },
  } satisfies Record<string, ScriptSource>;
}

/** Every script of the engine on one server, by name. */
export const SCRIPTS = buildScripts(false);
/** The same scripts for Redis Cluster (flow keys in the queue's slot; no global writes inside a script). */
export const CLUSTER_SCRIPTS: typeof SCRIPTS = buildScripts(true);

/** The script set of a single server (false) or of a cluster (true). */
export function scriptsFor(cluster: boolean): typeof SCRIPTS {
  return cluster ? CLUSTER_SCRIPTS : SCRIPTS;
}

export type ScriptName = keyof typeof SCRIPTS;

/** Scripts that write fleet events (called with the events stream and cap, see EVENTS). */
export const EVENT_SCRIPTS: ReadonlySet<ScriptName> = new Set(
  (Object.keys(SCRIPTS) as ScriptName[]).filter((name) => SCRIPTS[name].keys === 2),
);

/** Scripts that touch the queue's slot only (KEYS[1] is the queue's meta hash): on a cluster, every one of them. */
export const QUEUE_SCRIPTS: ReadonlySet<ScriptName> = new Set(
  (Object.keys(SCRIPTS) as ScriptName[]).filter((name) => SCRIPTS[name].lua.includes("local qp = ")),
);
