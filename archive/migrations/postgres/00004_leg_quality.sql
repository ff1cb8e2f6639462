-- +goose Up
-- Each leg's final call quality (call.LegQuality, issue 19): RTP receive
-- figures, the peer's RTCP report and the estimated MOS. No personal
-- data: agent is the configured agent's name on an agent leg. rtt_ms is
-- -1 when no round trip was measured.
CREATE TABLE leg_quality (
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    leg            TEXT NOT NULL,
    agent          TEXT NOT NULL DEFAULT '',
    received       BIGINT NOT NULL DEFAULT 0,
    lost           BIGINT NOT NULL DEFAULT 0,
    loss_pct       DOUBLE PRECISION NOT NULL DEFAULT 0,
    jitter_ms      DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_ms         DOUBLE PRECISION NOT NULL DEFAULT -1,
    mos            DOUBLE PRECISION NOT NULL DEFAULT 0,
    peer_loss_pct  DOUBLE PRECISION NOT NULL DEFAULT 0,
    peer_jitter_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
    dropped_stale  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (interaction_id, seq)
);

-- +goose Down
DROP TABLE leg_quality;
