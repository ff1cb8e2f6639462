-- +goose Up
-- Live state several cloak nodes share (cluster.enabled, docs/SCALE.md).
-- Both engines carry the tables (one schema), but only PostgreSQL is
-- shared by nodes: cluster.enabled refuses SQLite.
-- Times are Unix milliseconds of the database's clock, so nodes with
-- skewed clocks still agree on whose heartbeat is old.

-- The node registry: one row per node, its heartbeat refreshed every
-- cluster.heartbeat. lost_at is set (once, by one survivor) when the
-- heartbeat grew older than cluster.node_timeout; a node that comes back
-- clears it.
CREATE TABLE cluster_nodes (
    id           TEXT PRIMARY KEY,
    sip_addr     TEXT NOT NULL DEFAULT '',
    admin_addr   TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT '',
    calls        INTEGER NOT NULL DEFAULT 0,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lost_at      BIGINT NOT NULL DEFAULT 0
);

-- Agents: the registration any node took (contact, Path as a JSON array,
-- expiry; static agents have a contact and expires_at 0) and the state
-- all nodes claim against. node is the node that claimed the agent
-- (ringing, busy, reserved), '' otherwise; ord is the agent's place in
-- the configuration (ties of idle time).
CREATE TABLE cluster_agents (
    name          TEXT PRIMARY KEY,
    ord           INTEGER NOT NULL DEFAULT 0,
    queues        TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL DEFAULT 'logged-out',
    contact       TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '[]',
    static        BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at    BIGINT NOT NULL DEFAULT 0,
    registered_by TEXT NOT NULL DEFAULT '',
    idle_since    BIGINT NOT NULL DEFAULT 0,
    node          TEXT NOT NULL DEFAULT '',
    call_id       TEXT NOT NULL DEFAULT '',
    changed_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX cluster_agents_node ON cluster_agents (node);

-- Live calls of every node (synced each heartbeat): what a survivor
-- archives as ended node-lost when their node is lost.
CREATE TABLE cluster_calls (
    id          TEXT PRIMARY KEY,
    node        TEXT NOT NULL,
    sip_call_id TEXT NOT NULL DEFAULT '',
    caller      TEXT NOT NULL DEFAULT '',
    called      TEXT NOT NULL DEFAULT '',
    offered_at  BIGINT NOT NULL
);
CREATE INDEX cluster_calls_node ON cluster_calls (node);

-- Callers waiting in a queue on any node: a node may claim an agent for
-- a caller only when no caller of the same queue joined earlier and is
-- still waiting (not being offered an agent), so the longest-waiting
-- caller across nodes is served first; the caller's node places the leg.
CREATE TABLE cluster_waiting (
    call_id   TEXT PRIMARY KEY,
    node      TEXT NOT NULL,
    queue     TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    offering  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX cluster_waiting_queue ON cluster_waiting (queue, joined_at);

-- +goose Down
DROP TABLE cluster_waiting;
DROP TABLE cluster_calls;
DROP TABLE cluster_agents;
DROP TABLE cluster_nodes;
