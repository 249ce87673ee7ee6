//! The PostgreSQL schema and its versioned migrations.
//!
//! The same tables as the SQLite ledger's (schema v4 there), with PostgreSQL's types:
//! amounts, nonce keys and hashes are 32-byte big-endian `BYTEA`, ids `BIGSERIAL`. One table
//! more: `op_hashes`, every operation hash an intent ever signed (its own and those it
//! replaced), unique, so that one signed operation is one intent across connections.

use super::storage;
use crate::{Error, Result};
use postgres::Client;

/// The migrations in order: version `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: [&str; 2] = [
    "
CREATE TABLE intents (
    id                    BIGSERIAL PRIMARY KEY,
    chain_id              BIGINT  NOT NULL,
    account               BYTEA   NOT NULL,
    session_id            BYTEA   NOT NULL,
    nonce_key             BYTEA   NOT NULL,
    nonce_seq             BIGINT,
    gas_cost_cap          BYTEA   NOT NULL,
    created_at            BIGINT  NOT NULL,
    state                 TEXT    NOT NULL CHECK (state IN
                              ('reserved', 'signed', 'submitted', 'included', 'failed', 'released')),
    user_op_hash          BYTEA,
    signed_nonce_key      BYTEA,
    signed_nonce_seq      BIGINT,
    op_bytes              BYTEA,
    submitted_via         TEXT,
    submit_tx_hash        BYTEA,
    submit_count          BIGINT  NOT NULL DEFAULT 0,
    included_success      BOOLEAN,
    actual_gas_cost       BYTEA,
    included_tx_hash      BYTEA,
    included_block        BIGINT,
    outcome_reason        TEXT,
    included_user_op_hash BYTEA
);
CREATE INDEX intents_scope ON intents (chain_id, account, session_id, state);
CREATE INDEX intents_pending ON intents (state) WHERE state IN ('reserved', 'signed', 'submitted');
CREATE TABLE spends (
    intent_id    BIGINT NOT NULL REFERENCES intents (id),
    position     BIGINT NOT NULL,
    token        BYTEA  NOT NULL,
    window_index BIGINT NOT NULL,
    amount       BYTEA  NOT NULL,
    PRIMARY KEY (intent_id, position)
);
CREATE TABLE replaced_ops (
    intent_id    BIGINT NOT NULL REFERENCES intents (id),
    position     BIGINT NOT NULL,
    user_op_hash BYTEA  NOT NULL,
    op_bytes     BYTEA  NOT NULL,
    PRIMARY KEY (intent_id, position)
);
CREATE TABLE op_hashes (
    user_op_hash BYTEA  PRIMARY KEY,
    intent_id    BIGINT NOT NULL REFERENCES intents (id)
);
CREATE TABLE decisions (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT  NOT NULL,
    chain_id     BIGINT  NOT NULL,
    account      BYTEA   NOT NULL,
    session_id   BYTEA   NOT NULL,
    key_address  BYTEA   NOT NULL,
    allowed      BOOLEAN NOT NULL,
    reason       TEXT    NOT NULL,
    spends       TEXT    NOT NULL,
    user_op_hash BYTEA,
    tx_hash      BYTEA
);
CREATE INDEX decisions_at ON decisions (at);
CREATE TABLE pending_totals (
    chain_id     BIGINT NOT NULL,
    account      BYTEA  NOT NULL,
    session_id   BYTEA  NOT NULL,
    token        BYTEA  NOT NULL,
    window_index BIGINT NOT NULL,
    amount       BYTEA  NOT NULL,
    PRIMARY KEY (chain_id, account, session_id, token, window_index)
);
CREATE TABLE chains (
    chain_id BIGINT PRIMARY KEY,
    genesis  BYTEA  NOT NULL
);
CREATE FUNCTION sak_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
CREATE TRIGGER intents_keep BEFORE DELETE ON intents
    FOR EACH ROW EXECUTE FUNCTION sak_refuse('the ledger never deletes intents');
CREATE TRIGGER spends_keep BEFORE DELETE OR UPDATE ON spends
    FOR EACH ROW EXECUTE FUNCTION sak_refuse('spends are immutable and never deleted');
CREATE TRIGGER replaced_ops_keep BEFORE DELETE OR UPDATE ON replaced_ops
    FOR EACH ROW EXECUTE FUNCTION sak_refuse('replaced operations are immutable and never deleted');
CREATE TRIGGER op_hashes_keep BEFORE DELETE OR UPDATE ON op_hashes
    FOR EACH ROW EXECUTE FUNCTION sak_refuse('operation hashes are immutable and never deleted');
CREATE TRIGGER decisions_keep BEFORE DELETE OR UPDATE ON decisions
    FOR EACH ROW EXECUTE FUNCTION sak_refuse('the decision log is append-only');
",
    // v2: intents included after a block, found fast (what a ceiling read at that block has not
    // counted yet; see `AsOf`).
    "
CREATE INDEX intents_landed ON intents (chain_id, account, session_id, included_block) WHERE state = 'included';
",
];

/// The schema version this code writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`]: each missing migration in one transaction,
/// under a transaction-level advisory lock so that workers opening the ledger at once migrate
/// it once. A database newer than this build is refused.
pub(super) fn migrate(c: &mut Client) -> Result<()> {
    let mut tx = c.transaction().map_err(storage("starting migration"))?;
    // An arbitrary constant of sak's: the migration lock.
    tx.execute("SELECT pg_advisory_xact_lock(7358201449)", &[]).map_err(storage("locking for migration"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sak_ledger_schema (version BIGINT NOT NULL)")
        .map_err(storage("reading the schema version"))?;
    let version: i64 = match tx
        .query_opt("SELECT version FROM sak_ledger_schema", &[])
        .map_err(storage("reading the schema version"))?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO sak_ledger_schema (version) VALUES (0)", &[])
                .map_err(storage("recording the schema version"))?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(Error::Corrupt {
            reason: format!(
                "schema version {version} is newer than this build supports ({SCHEMA_VERSION}); upgrade sak"
            ),
        });
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(usize::MAX)) {
        tx.batch_execute(sql).map_err(storage(format!("migrating to schema v{}", n + 1)))?;
    }
    tx.execute("UPDATE sak_ledger_schema SET version = $1", &[&SCHEMA_VERSION])
        .map_err(storage("recording the schema version"))?;
    tx.commit().map_err(storage("committing migration"))
}
