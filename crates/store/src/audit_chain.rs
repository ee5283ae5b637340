//! The audit log's tamper evidence: each row carries `hash = HMAC-SHA256(key, prev_hash "\n"
//! json[ts, operator, action, target, details])` and the `prev_hash` it was chained to, so an
//! edited, inserted, deleted or moved row breaks the chain at that row. A removed tail is
//! only visible against a head hash kept elsewhere (`verify`'s `expected_head`).

use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, params};
use color_eyre::eyre::Result;
use hmac::{KeyInit, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The chain's key and a short public id of it (which key chained a log).
#[derive(Clone)]
pub struct AuditKey {
    key: Vec<u8>,
    pub id: String,
}

impl AuditKey {
    pub fn new(key: &[u8]) -> Self {
        AuditKey {
            key: key.to_vec(),
            id: key_id(key),
        }
    }
}

/// First 8 bytes of sha256("ptui-key-id" || key), hex: names a key without revealing it.
pub fn key_id(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"ptui-key-id");
    h.update(key);
    hex(&h.finalize()[..8])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn chain_hash(
    k: &AuditKey,
    prev: &str,
    ts: i64,
    operator: &str,
    action: &str,
    target: &str,
    details: &str,
) -> String {
    // new_from_slice only fails for fixed-size keys; HMAC takes any length.
    let Ok(mut mac) = HmacSha256::new_from_slice(&k.key) else {
        return String::new();
    };
    mac.update(prev.as_bytes());
    mac.update(b"\n");
    let content = serde_json::json!([ts, operator, action, target, details]).to_string();
    mac.update(content.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The newest chained row's hash ("" before the first). An unchained row (inserted by hand)
/// is skipped, so the chain goes on past it and `verify` still names it.
pub(crate) fn last_hash_in(c: &Connection) -> Result<String> {
    let h: Option<String> = c
        .query_row(
            "SELECT hash FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .sql()?;
    Ok(h.unwrap_or_default())
}

/// One audit row with its chain fields, as `audit export` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub ts: i64,
    pub operator: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// What was done to the log, at the first row where the chain breaks.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Tamper {
    Edited,
    Inserted,
    Deleted,
    Moved,
    TailRemoved,
    WrongKey,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditProblem {
    pub kind: Tamper,
    /// The row where the chain breaks (none for a removed tail or a wrong key).
    pub row_id: Option<i64>,
    pub message: String,
}

/// The result of `audit verify`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditVerdict {
    pub rows: usize,
    /// The last row's hash: keep it elsewhere to detect a removed tail later.
    pub head: Option<String>,
    pub key_id: String,
    pub problem: Option<AuditProblem>,
}

impl AuditVerdict {
    pub fn intact(&self) -> bool {
        self.problem.is_none()
    }
}

fn rows_in(c: &Connection) -> crate::sql::Result<Vec<AuditRow>> {
    let mut st = c.prepare(
        "SELECT id, ts, operator, action, target, details, prev_hash, hash FROM audit_log ORDER BY id",
    )?;
    st.query_map([], |r| {
        Ok(AuditRow {
            id: r.get(0)?,
            ts: r.get(1)?,
            operator: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            details: r.get(5)?,
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        })
    })?
    .collect()
}

fn self_consistent(k: &AuditKey, r: &AuditRow) -> bool {
    let prev = r.prev_hash.as_deref().unwrap_or("");
    r.hash.as_deref()
        == Some(&chain_hash(k, prev, r.ts, &r.operator, &r.action, &r.target, &r.details)[..])
}

/// The first break in `rows` (in id order), if any.
pub fn first_break(k: &AuditKey, rows: &[AuditRow]) -> Option<AuditProblem> {
    let mut expected = String::new();
    let mut prev_id: Option<i64> = None;
    let problem = |kind, id: i64, message: String| {
        Some(AuditProblem {
            kind,
            row_id: Some(id),
            message,
        })
    };
    for (i, r) in rows.iter().enumerate() {
        let Some(hash) = r.hash.as_deref() else {
            return problem(
                Tamper::Inserted,
                r.id,
                format!("row #{} was inserted: it has no chain hash", r.id),
            );
        };
        let prev = r.prev_hash.as_deref().unwrap_or("");
        let after = prev_id.map_or("the start".to_string(), |p| format!("row #{p}"));
        if !self_consistent(k, r) {
            // An edited row keeps its place: the next row still links to it.
            let linked = match rows.get(i + 1) {
                Some(next) => next.prev_hash.as_deref() == Some(hash),
                None => prev == expected,
            };
            return if linked {
                problem(
                    Tamper::Edited,
                    r.id,
                    format!(
                        "row #{} was edited: its content does not match its hash",
                        r.id
                    ),
                )
            } else {
                problem(
                    Tamper::Inserted,
                    r.id,
                    format!(
                        "row #{} was inserted after {after}: its hash is not part of the chain",
                        r.id
                    ),
                )
            };
        }
        if prev != expected {
            if let Some(o) = rows.iter().find(|o| o.hash.as_deref() == Some(prev)) {
                return problem(
                    Tamper::Moved,
                    r.id,
                    format!(
                        "row #{} is out of place: it was chained right after row #{} (rows swapped, copied or reordered)",
                        r.id, o.id
                    ),
                );
            }
            return problem(
                Tamper::Deleted,
                r.id,
                format!(
                    "rows were deleted between {after} and row #{}: the row it was chained to is gone",
                    r.id
                ),
            );
        }
        expected = hash.to_string();
        prev_id = Some(r.id);
    }
    None
}

impl Store {
    /// Sets the key new audit rows are chained with. The first time a database gets a key,
    /// the rows it already holds (from before the chain) are chained, once, and counted.
    pub fn set_audit_key(&self, key: AuditKey) -> Result<()> {
        if let Ok(mut k) = self.inner.audit_key.write() {
            *k = Some(key.clone());
        }
        self.write(|tx| {
            let chained: Option<i64> = tx
                .query_row("SELECT 1 FROM audit_chain WHERE id=1", [], |r| r.get(0))
                .optional()
                .sql()?;
            if chained.is_some() {
                return Ok(());
            }
            let rows = rows_in(tx).sql()?;
            let mut prev = String::new();
            for r in &rows {
                let h = chain_hash(
                    &key,
                    &prev,
                    r.ts,
                    &r.operator,
                    &r.action,
                    &r.target,
                    &r.details,
                );
                tx.execute(
                    "UPDATE audit_log SET prev_hash=?1, hash=?2 WHERE id=?3",
                    params![prev, h, r.id],
                )
                .sql()?;
                prev = h;
            }
            tx.execute(
                "INSERT INTO audit_chain(id, key_id, legacy_rows, chained_at) VALUES(1,?1,?2,?3)",
                params![key.id, rows.len() as i64, now_ms()],
            )
            .sql()?;
            Ok(())
        })
    }

    pub(crate) fn audit_key(&self) -> Option<AuditKey> {
        self.inner.audit_key.read().ok().and_then(|k| k.clone())
    }

    /// Every audit row, oldest first, with its chain fields.
    pub fn audit_rows(&self) -> Result<Vec<AuditRow>> {
        self.read(|c| rows_in(c).sql())
    }

    /// Checks the whole chain with `key`; `expected_head` is a head hash kept elsewhere.
    pub fn verify_audit(
        &self,
        key: &AuditKey,
        expected_head: Option<&str>,
    ) -> Result<AuditVerdict> {
        let (rows, chained_by) = self.read(|c| {
            let by: Option<String> = c
                .query_row("SELECT key_id FROM audit_chain WHERE id=1", [], |r| {
                    r.get(0)
                })
                .optional()
                .sql()?;
            Ok((rows_in(c).sql()?, by))
        })?;
        let head = rows.iter().rev().find_map(|r| r.hash.clone());
        let mut problem = match chained_by {
            Some(by) if by != key.id => Some(AuditProblem {
                kind: Tamper::WrongKey,
                row_id: None,
                message: format!(
                    "the log was chained with key {by}, but the audit key file holds key {}: restore the key file that came with this database",
                    key.id
                ),
            }),
            _ => first_break(key, &rows),
        };
        if problem.is_none()
            && let Some(want) = expected_head
            && !rows.iter().any(|r| r.hash.as_deref() == Some(want))
        {
            problem = Some(AuditProblem {
                kind: Tamper::TailRemoved,
                row_id: None,
                message: format!(
                    "the head {want} is in no row: rows were removed from the end of the log (or the head is another database's)"
                ),
            });
        }
        Ok(AuditVerdict {
            rows: rows.len(),
            head,
            key_id: key.id.clone(),
            problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_rows(n: usize) -> (tempfile::TempDir, Store, AuditKey) {
        let (d, s) = crate::test_store();
        let key = AuditKey::new(b"0123456789abcdef0123456789abcdef");
        s.set_audit_key(key.clone()).unwrap();
        for i in 0..n {
            s.audit("op", "act", &format!("t{i}"), "d").unwrap();
        }
        (d, s, key)
    }

    fn exec(s: &Store, sql: &str) {
        s.write(|tx| Ok(tx.execute_batch(sql)?)).unwrap();
    }

    fn broken(s: &Store, k: &AuditKey) -> AuditProblem {
        s.verify_audit(k, None).unwrap().problem.expect("a break")
    }

    #[test]
    fn an_untouched_log_is_intact_and_each_tampering_is_named() {
        let (_d, s, k) = store_with_rows(5);
        let v = s.verify_audit(&k, None).unwrap();
        assert!(v.intact(), "{v:?}");
        assert_eq!(v.rows, 5);
        exec(&s, "UPDATE audit_log SET details='x' WHERE id=3");
        let p = broken(&s, &k);
        assert_eq!((p.kind, p.row_id), (Tamper::Edited, Some(3)));
        exec(
            &s,
            "UPDATE audit_log SET details='d' WHERE id=3; DELETE FROM audit_log WHERE id=2",
        );
        let p = broken(&s, &k);
        assert_eq!((p.kind, p.row_id), (Tamper::Deleted, Some(3)), "{p:?}");
    }

    #[test]
    fn swapped_rows_and_a_removed_tail_are_named() {
        let (_d, s, k) = store_with_rows(5);
        exec(
            &s,
            "UPDATE audit_log SET id=-1 WHERE id=3; UPDATE audit_log SET id=3 WHERE id=4; UPDATE audit_log SET id=4 WHERE id=-1",
        );
        let p = broken(&s, &k);
        assert_eq!((p.kind, p.row_id), (Tamper::Moved, Some(3)), "{p:?}");
        let (_d, s, k) = store_with_rows(5);
        let head = s.verify_audit(&k, None).unwrap().head.unwrap();
        exec(&s, "DELETE FROM audit_log WHERE id=5");
        assert!(
            s.verify_audit(&k, None).unwrap().intact(),
            "a removed tail needs the head"
        );
        let p = s.verify_audit(&k, Some(&head)).unwrap().problem.unwrap();
        assert_eq!(p.kind, Tamper::TailRemoved);
    }

    #[test]
    fn rows_from_before_the_chain_are_chained_once() {
        let (_d, s) = crate::test_store();
        s.audit("op", "old", "t", "d").unwrap();
        let k = AuditKey::new(b"k");
        s.set_audit_key(k.clone()).unwrap();
        s.audit("op", "new", "t", "d").unwrap();
        assert!(s.verify_audit(&k, None).unwrap().intact());
        // A row added later without a hash is not taken in by a second set_audit_key.
        exec(
            &s,
            "INSERT INTO audit_log(ts,operator,action) VALUES(1,'x','forged')",
        );
        s.set_audit_key(k.clone()).unwrap();
        let p = broken(&s, &k);
        assert_eq!((p.kind, p.row_id), (Tamper::Inserted, Some(3)));
        let p = s
            .verify_audit(&AuditKey::new(b"other"), None)
            .unwrap()
            .problem
            .unwrap();
        assert_eq!(p.kind, Tamper::WrongKey);
    }
}
